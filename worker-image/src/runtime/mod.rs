//! The worker runtime: connection state machine, slots, task execution and the loop that
//! ties them together.

mod driver;
mod engine;
#[cfg(test)]
mod engine_tests;
mod executor;
#[cfg(test)]
mod fake_engine;
pub mod listener;
mod report;
mod resend;
mod shared;
pub mod slots;
mod worker;

pub(crate) use engine::WorkerEngine;
pub(crate) use shared::{Connection, Shared};
pub use worker::{DEFAULT_DRAIN_TIMEOUT, DEFAULT_SLOTS, Exit, RunningWorker, Worker, WorkerBuilder, WorkerHandle};
