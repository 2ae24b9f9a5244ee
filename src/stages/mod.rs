//! Stages: synchronous transformations from events to events.
//!
//! Each stage type is a module with its configuration, which implements
//! [`ComponentType`](crate::base::registry::ComponentType), and its [`Stage`]; the
//! registry below is the list of them, as configuration names them (`type:`).

pub mod alert;
pub mod anomaly;
pub mod log_fields;
pub mod log_patterns;
#[cfg(test)]
pub mod pass_results;

use self::alert::AlertConfig;
use self::anomaly::AnomalyConfig;
use self::log_fields::LogFieldsConfig;
use self::log_patterns::LogPatternsConfig;
use crate::base::component::Stage;

crate::base::registry::declare! {
    /// The configuration of any stage, by `type`.
    pub enum StageConfig builds Stage {
        LogPatterns(LogPatternsConfig),
        LogFields(LogFieldsConfig),
        Anomaly(AnomalyConfig),
        Alert(AlertConfig),
        #[cfg(test)] PassResults(pass_results::PassResultsConfig),
    }
}
