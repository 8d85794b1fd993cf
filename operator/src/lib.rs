#![warn(missing_docs)]
//! The `HatchetWorker` operator: turns custom resources into fleets of Hatchet worker pods,
//! wired to the engine, probed, and drained on termination so no running task is killed.
//!
//! Layout: [`crd`] (the resource types), [`autoscale`] (the built-in autoscaler: pure decision, engine signals, per-fleet pollers), [`desired`] (pure desired state of the children),
//! [`status`] (pure status and conditions), [`pods`] (why pods are not ready), `reconcile` and `controller` (the kube-runtime
//! wiring), `leader` (Lease-based leader election), [`watch_health`] (readiness from the watches and their backoff), [`metrics`] and `http` (the operator's
//! own endpoints), [`rbac`] (the RBAC it needs, cluster-wide or namespaced).

pub mod autoscale;
pub mod controller;
pub mod crd;
pub mod desired;
mod drift;
pub mod error;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod pods;
pub mod rbac;
mod reconcile;
pub mod status;
pub mod watch_health;
pub mod yaml;

pub use error::Error;
