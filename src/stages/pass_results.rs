//! A stage only tests know (`type: pass_results`): it passes probe results on. It is
//! what adding a stage takes, this file and one line in the registry, and gives the
//! tests of the registry and of the graph (in `pipeline::graph`) a second stage type,
//! one that takes other events than `log_patterns` does.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_norway::Value;

use crate::base::component::Stage;
use crate::base::diagnostics::Diagnostics;
use crate::base::event::{Event, EventKind};
use crate::base::key_path::KeyPath;
use crate::base::registry::{BuildContext, ComponentType};

/// Configuration of a `pass_results` stage: it has no options.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PassResultsConfig {}

impl ComponentType for PassResultsConfig {
    const NAME: &'static str = "pass_results";
    const ACCEPTS: &'static [EventKind] = &[EventKind::ProbeResult];
    const EMITS: &'static [EventKind] = &[EventKind::ProbeResult];
    type Built = dyn Stage;

    fn decode(options: &Value, path: &KeyPath, diag: &mut Diagnostics) -> Option<Self> {
        diag.decode(options, path)
    }

    fn build(&self, _: &mut BuildContext) -> Option<Box<dyn Stage>> {
        Some(Box::new(PassResults))
    }
}

struct PassResults;

impl Stage for PassResults {
    fn on_event(&mut self, event: &Event, _: SystemTime, out: &mut Vec<Event>) {
        out.push(event.clone());
    }
}
