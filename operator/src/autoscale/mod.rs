//! The built-in autoscaler: [`decision`] (the pure rule), [`signals`] (the engine's answers
//! turned into an observation), [`deletion_cost`] (which pods a scale-in should remove),
//! `engine` (the REST reads with the fleet's token) and `fleets` (one poller per fleet, and
//! the plan the reconciler asks for).

pub mod decision;
pub mod deletion_cost;
mod engine;
pub(crate) mod fleets;
pub mod signals;
