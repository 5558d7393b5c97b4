//! # weir
//!
//! A stream transform worker: Kafka batches are decoded into Arrow record batches, routed by
//! message type through sandboxed WebAssembly transforms, and written to sinks; offsets are
//! committed only behind the sinks.
//!
//! The modules follow the data: [`source`] -> [`decode`] -> [`route`] -> [`runtime`] (wasm
//! transforms) -> [`sink`], with [`offsets`] committing what the sinks made durable, and
//! [`pipeline`] driving it all. [`eval`] is `weir eval`, for trying expressions; [`authoring`]
//! holds the plugin authors' tools (`weir new`, `weir test`). [`registry`] is the schema registry
//! client (Confluent's REST API).
#![deny(missing_docs)]

pub mod authoring;
pub mod config;
pub mod decode;
pub mod eval;
pub mod metrics;
pub mod offsets;
pub mod pipeline;
pub mod registry;
pub mod route;
pub mod runtime;
pub mod sink;
pub mod source;
