//! Typed clients for the Hatchet engine's REST API, generated at build time from the engine's
//! OpenAPI contract (`contracts/openapi.json`, checked against the engine's own document by
//! `tests/contract.rs`).

/// The client and models progenitor generates from the contract.
#[allow(
    missing_docs,
    unreachable_pub,
    unused,
    unused_comparisons,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    rustdoc::all
)]
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/hatchet_rest.rs"));
}
