#![warn(missing_docs)]
//! The `HatchetWorker` operator: turns custom resources into fleets of Hatchet worker pods,
//! wired to the engine, probed, and drained on termination so no running task is killed.
//!
//! Layout: [`crd`] (the resource types), [`desired`] (pure desired state of the children),
//! [`status`] (pure status and conditions), [`pods`] (why pods are not ready), `reconcile` and `controller` (the kube-runtime
//! wiring), `leader` (Lease-based leader election), [`metrics`] and `http` (the operator's
//! own endpoints).

pub mod controller;
pub mod crd;
pub mod desired;
mod drift;
pub mod error;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod pods;
mod reconcile;
pub mod status;

pub use error::Error;
