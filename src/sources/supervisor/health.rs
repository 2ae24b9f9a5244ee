//! How `restart_on_unhealthy` learns of its service's health: each health check of a
//! supervised service reports its results to the service's supervisor here, beside
//! the pipeline, since the checks are sources too and no edge runs between sources.
//!
//! Supervisors register when they start to run, and checks look their service up with
//! each result, so neither the order of the configuration nor a reload that replaces
//! one and not the other matters (and a reload that is refused, whose nodes are built
//! but never run, changes nothing). A report that finds the supervisor's queue full is
//! dropped: the supervisor is busy stopping or starting the process, and the results
//! that follow tell it the same.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

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

/// A supervisor's end of its service's reports: [`Health::register`] it when it runs.
pub struct Health {
    registry: Arc<Supervised>,
    sender: mpsc::Sender<HealthReport>,
    pub reports: mpsc::Receiver<HealthReport>,
}

impl Health {
    /// From now on the reports of the checks of `service` come here.
    pub fn register(&self, service: &ServiceName) {
        let mut map = (self.registry.0.lock()).unwrap_or_else(PoisonError::into_inner);
        map.insert(service.clone(), self.sender.clone());
    }
}

impl Supervised {
    /// A channel for the reports of a service's checks, not yet registered.
    pub fn channel(self: &Arc<Supervised>) -> Health {
        let (sender, reports) = mpsc::channel(QUEUE);
        Health {
            registry: Arc::clone(self),
            sender,
            reports,
        }
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
