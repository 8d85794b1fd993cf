//! The built-in autoscaler: [`decision`] (the pure rule), [`signals`] (the engine's answers
//! turned into an observation) and [`deletion_cost`] (which pods a scale-in should remove).

pub mod decision;
pub mod deletion_cost;
pub mod signals;
