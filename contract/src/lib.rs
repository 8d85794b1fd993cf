//! The contract between `hatchet-operator` and the `hatchet-worker` runtime it runs: the
//! environment the operator injects and the worker reads, the health server's port and paths
//! the probes hit, the defaults both assume, and the two rules both apply to what they are
//! given (reading a token's claims, normalising a Hatchet namespace). Both sides import it, so
//! a rename on one side cannot silently break the other; it links no runtime of either.

pub mod env;
pub mod http;
pub mod namespace;
pub mod token;

/// Task slots of a worker when nothing sets them (the official SDKs' default).
pub const DEFAULT_SLOTS: u32 = 100;

/// Durable task slots of a worker with durable tasks when nothing sets them (the official
/// SDKs' default: durable runs mostly wait, so a worker holds many).
pub const DEFAULT_DURABLE_SLOTS: u32 = 1000;

/// How long a worker drains its running tasks after SIGTERM when nothing sets it.
pub const DEFAULT_DRAIN_TIMEOUT_SECONDS: u32 = 3600;
