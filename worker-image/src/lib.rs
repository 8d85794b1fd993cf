#![warn(missing_docs)]
//! A Rust worker runtime for Hatchet: it registers workflows with the engine, receives task
//! assignments over gRPC and runs them in bounded slots, and is built to live in a
//! Kubernetes fleet (probes, metrics, drain on termination).
//!
//! ```no_run
//! use hatchet_worker::{Client, Context, Task, TaskError, Worker, Workflow};
//!
//! # async fn demo() -> Result<(), hatchet_worker::Error> {
//! async fn greet(name: String, _ctx: Context) -> Result<String, TaskError> {
//!     Ok(format!("hello {name}"))
//! }
//! let client = Client::from_env()?;
//! let worker = Worker::builder(client, "greeter")
//!     .slots(10)
//!     .workflow(Workflow::new("greet").task(Task::new("greet", greet)))
//!     .build()?;
//! worker.run().await?;
//! # Ok(()) }
//! ```
//!
//! # TLS
//!
//! Connections use rustls with the aws-lc-rs provider. The library never installs a
//! process-wide provider: with aws-lc-rs the only one compiled in, rustls uses it by itself. A
//! program whose other dependencies also enable rustls's `ring` feature must choose one at
//! start-up, before the first connection, e.g.
//! `rustls::crypto::aws_lc_rs::default_provider().install_default()` (the `hatchet-worker`
//! binary does so).

pub mod client;
pub mod config;
mod connection;
mod context;
pub mod durable;
mod error;
mod health;
mod middleware;
pub mod names;
pub mod payload;
pub mod retry;
pub mod runtime;
pub mod telemetry;
pub mod testing;
pub mod workflow;

pub use client::{BulkEvent, Client, EventOptions, RunDetails, RunRef, RunStatus, TriggerOptions};
pub use config::{ClientConfig, TlsStrategy};
pub use context::Context;
pub use durable::{DurableContext, EvictionPolicy, WaitResult};
pub use error::{Error, Result};
/// The typed REST feature clients [`Client::rest`] gives (crate `hatchet-rest`).
#[cfg(feature = "rest")]
pub use hatchet_rest as rest;
pub use middleware::{Middleware, Next};
pub use runtime::{Exit, RunningWorker, Worker, WorkerBuilder, WorkerHandle};
pub use workflow::{
    AnyOf, Comparator, Concurrency, ConcurrencyStrategy, Condition, DesiredLabel, EventFilter, Idempotency, LabelValue,
    RateLimit, RateLimitWindow, Sticky, Task, TaskDefaults, TaskError, Workflow,
};
