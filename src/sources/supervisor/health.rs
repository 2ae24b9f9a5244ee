//! How `restart_on_unhealthy` learns of its service's health: each health check of a
//! supervised service reports its results to the service's supervisor here, beside
//! the pipeline, since the checks are sources too and no edge runs between sources.
//!
//! Supervisors register at build time; checks look their service up when they start
//! to run (every node is built by then), so the order of the configuration does not
//! matter. A report that finds the supervisor's queue full is dropped: the supervisor
//! is busy stopping or starting the process, and the results that follow tell it the
//! same.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::sync::mpsc;

use crate::base::event::ServiceName;

/// Reports a supervisor's queue holds before more are dropped.
const QUEUE: usize = 64;

/// One check's result, as far as a restart is concerned.
#[derive(Debug)]
pub struct HealthReport {
    pub check: ServiceName,
    pub down: bool,
}

/// The supervisors of a pipeline that restart on unhealthy results, by service.
#[derive(Default)]
pub struct Supervised(Mutex<HashMap<ServiceName, mpsc::Sender<HealthReport>>>);

impl Supervised {
    /// Registers the supervisor of `service`: the reports of its checks come here.
    pub fn watch(&self, service: &ServiceName) -> mpsc::Receiver<HealthReport> {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert(service.clone(), sender);
        receiver
    }

    /// Where a check of `service` reports, if its supervisor wants the results.
    pub fn reporter(&self, service: &str) -> Option<HealthReporter> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(service).cloned().map(HealthReporter)
    }
}

/// A check's way to its service's supervisor.
pub struct HealthReporter(mpsc::Sender<HealthReport>);

impl HealthReporter {
    pub fn report(&self, check: &ServiceName, down: bool) {
        let report = HealthReport {
            check: check.clone(),
            down,
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = self.0.try_send(report) {
            tracing::debug!(%check, "The supervisor is busy; a health result is not passed on.");
        }
    }
}
