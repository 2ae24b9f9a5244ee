//! How a component type is declared, once: its name in configuration (`type:`), its
//! config type, the events it takes and emits, how its options are decoded and how it
//! is built ([`ComponentType`]); and the one context every build receives
//! ([`BuildContext`]).
//!
//! Each kind (sources, stages, sinks) lists its types in a `declare!`, a line each;
//! the macro makes the configuration enum of that kind, its list of names, its decode
//! dispatch (an unknown `type` is an error with a "did you mean", never a silent
//! drop), its event kinds and its build. Adding a component is its own file plus one
//! line in its kind's registry (docs/architecture.md, "Adding a component").

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use serde_norway::Value;

use super::diagnostics::{Diagnostics, closest};
use super::event::EventKind;
use super::key_path::KeyPath;
use super::stats::StatsHandle;

/// A type of component, as configuration names it.
pub trait ComponentType: Sized + Serialize {
    /// Its `type:` in configuration.
    const NAME: &'static str;
    /// The kinds of events it takes (none for a source).
    const ACCEPTS: &'static [EventKind];
    /// The kinds of events it emits (none for a sink).
    const EMITS: &'static [EventKind];
    /// What it builds: `dyn Source`, `dyn Stage` or `dyn Sink`.
    type Built: ?Sized;

    /// Decodes its options (the node without `type` and `inputs`) found at `path`;
    /// `None` if they are bad, with every problem reported to `diag`. Most types
    /// decode with serde alone: `diag.decode(options, path)`.
    fn decode(options: &Value, path: &KeyPath, diag: &mut Diagnostics) -> Option<Self>;

    /// Builds the running component; `None` if it cannot be built (reported to
    /// `cx.diag`, at the place of what is wrong).
    fn build(&self, cx: &mut BuildContext) -> Option<Box<Self::Built>>;

    /// The service and name of the health check it runs, if it runs one.
    fn check(&self) -> Option<(&str, &str)> {
        None
    }

    /// The service whose events it makes, if it is a source of one (what a reload
    /// compares to tell the services that are gone).
    fn service(&self) -> Option<&str> {
        None
    }
}

/// What a component's build may use from its surroundings. One per node; the parts
/// that belong to the pipeline are the same for all of its nodes.
pub struct BuildContext<'a, 'd> {
    /// The node's id.
    pub id: &'a str,
    /// The configuration file's folder: relative paths start there.
    pub base: &'a Path,
    /// `run --once`: one pass over the input (one tick of a check) instead of following.
    pub once: bool,
    /// Built to be checked (`validate`, `config expand`), never run: a build touches
    /// no state (reads no state file, starts no thread, makes no folder).
    pub checking: bool,
    /// Where problems found while building are reported.
    pub diag: &'a mut Diagnostics<'d>,
    /// The counts of this pipeline's nodes, filled in when it starts to run.
    pub stats: &'a StatsHandle,
    /// The health checks that feed the node directly (service, check), so that a sink
    /// knows the series to expect before their first result.
    pub checks: &'a [(&'a str, &'a str)],
    /// State the components of this pipeline share.
    pub shared: &'a Shared,
}

/// State shared by the components of one pipeline (the log tails' record of the files
/// they read, say), made by the first that asks for it. Owned by the pipeline, not the
/// process: two pipelines in one process never see each other's.
#[derive(Default)]
pub struct Shared(Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>);

impl Shared {
    /// The pipeline's `T`, made on first use.
    pub fn get<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let any = map
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()));
        Arc::clone(any)
            .downcast::<T>()
            .expect("stored under the TypeId of T")
    }
}

/// Reports an unknown `type` at `path`, with the types there are and the closest.
pub(crate) fn unknown_type(kind: &str, types: &[&str], path: &KeyPath, diag: &mut Diagnostics) {
    let mut message = format!(
        "unknown type `{kind}`; expected one of {}",
        super::text::list(types)
    );
    if let Some(close) = closest(kind, types.iter().copied()) {
        message.push_str(&format!(" (did you mean `{close}`?)"));
    }
    diag.error(&path.key("type"), message);
}

/// A component's options as YAML, with its `type` first: what `config expand` prints.
/// Options are a map (a config struct), as serde's tagged enums require too.
pub(crate) fn tagged<C: Serialize>(name: &str, config: &C) -> Result<Value, serde_norway::Error> {
    let mut fields = serde_norway::Mapping::new();
    fields.insert("type".into(), name.into());
    match serde_norway::to_value(config)? {
        Value::Mapping(options) => fields.extend(options),
        _ => {
            return Err(serde::ser::Error::custom(format!(
                "the options of `{name}` are not a map"
            )));
        }
    }
    Ok(Value::Mapping(fields))
}

/// Declares the component types of one kind: the configuration enum `$config`, one
/// variant per type, each variant's type implementing [`ComponentType`] with
/// `Built = dyn $built`. A variant may carry a `#[cfg(...)]` (a type only tests know).
macro_rules! declare {
    (
        $(#[$meta:meta])*
        pub enum $config:ident builds $built:path {
            $( $(#[cfg($cfg:meta)])? $variant:ident($type:ty), )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug)]
        pub enum $config {
            $( $(#[cfg($cfg)])? $variant($type), )+
        }

        impl $config {
            /// The `type:` names of this kind, in the order they are declared.
            // Pushed one by one: a `cfg` can leave out a statement, not an array item.
            #[allow(clippy::vec_init_then_push)]
            pub fn types() -> Vec<&'static str> {
                use $crate::base::registry::ComponentType;
                let mut types = Vec::new();
                $( $(#[cfg($cfg)])? types.push(<$type>::NAME); )+
                types
            }

            /// Decodes the options of a node of type `kind`; `None` if the type is
            /// unknown or the options are bad (reported either way).
            pub fn decode(
                kind: &str,
                options: &serde_norway::Value,
                path: &$crate::base::key_path::KeyPath,
                diag: &mut $crate::base::diagnostics::Diagnostics,
            ) -> Option<$config> {
                use $crate::base::registry::ComponentType;
                $(
                    $(#[cfg($cfg)])?
                    if kind == <$type>::NAME {
                        return <$type>::decode(options, path, diag).map($config::$variant);
                    }
                )+
                $crate::base::registry::unknown_type(kind, &Self::types(), path, diag);
                None
            }

            /// Its `type:` name.
            pub fn name(&self) -> &'static str {
                use $crate::base::registry::ComponentType;
                match self {
                    $( $(#[cfg($cfg)])? $config::$variant(_) => <$type>::NAME, )+
                }
            }

            /// The kinds of events it takes.
            pub fn accepts(&self) -> &'static [$crate::base::event::EventKind] {
                use $crate::base::registry::ComponentType;
                match self {
                    $( $(#[cfg($cfg)])? $config::$variant(_) => <$type>::ACCEPTS, )+
                }
            }

            /// The kinds of events it emits.
            pub fn emits(&self) -> &'static [$crate::base::event::EventKind] {
                use $crate::base::registry::ComponentType;
                match self {
                    $( $(#[cfg($cfg)])? $config::$variant(_) => <$type>::EMITS, )+
                }
            }

            /// The health check it runs, if it runs one: (service, check).
            pub fn check(&self) -> Option<(&str, &str)> {
                use $crate::base::registry::ComponentType;
                match self {
                    $( $(#[cfg($cfg)])? $config::$variant(config) => config.check(), )+
                }
            }

            /// The service whose events it makes, if it is a source of one.
            pub fn service(&self) -> Option<&str> {
                use $crate::base::registry::ComponentType;
                match self {
                    $( $(#[cfg($cfg)])? $config::$variant(config) => config.service(), )+
                }
            }

            /// Builds it (see `ComponentType::build`).
            pub fn build(
                &self,
                cx: &mut $crate::base::registry::BuildContext,
            ) -> Option<Box<dyn $built>> {
                use $crate::base::registry::ComponentType;
                match self {
                    $( $(#[cfg($cfg)])? $config::$variant(config) => config.build(cx), )+
                }
            }
        }

        impl serde::Serialize for $config {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use $crate::base::registry::ComponentType;
                let tagged = match self {
                    $( $(#[cfg($cfg)])? $config::$variant(config) => {
                        $crate::base::registry::tagged(<$type>::NAME, config)
                    } )+
                };
                tagged
                    .map_err(serde::ser::Error::custom)?
                    .serialize(serializer)
            }
        }
    };
}

pub(crate) use declare;
