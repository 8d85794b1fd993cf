//! The worker runtime: connection state machine, slots, task execution and the loop that
//! ties them together.

mod driver;
mod engine;
#[cfg(test)]
mod engine_tests;
mod executor;
#[cfg(test)]
mod fake_engine;
mod in_flight;
pub mod listener;
mod metrics;
mod probe;
mod report;
mod resend;
mod shared;
pub mod slots;
mod state;
mod worker;

pub(crate) use engine::{DurableResponses, WorkerEngine};
pub(crate) use state::Connection;
pub use worker::{
    DEFAULT_DRAIN_TIMEOUT, DEFAULT_DURABLE_SLOTS, DEFAULT_SLOTS, Exit, RunningWorker, Worker, WorkerBuilder,
    WorkerHandle,
};
