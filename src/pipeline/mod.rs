//! The pipeline: from configured nodes to a checked graph of built components
//! ([`graph`]), and running it ([`runtime`]): one task per node, with bounded channels
//! between them. It sits above the configuration loader (`config`), which it builds
//! from, and the components it connects; the contracts those components implement are
//! in `base::component`.

pub mod graph;
pub mod load;
pub mod runtime;
