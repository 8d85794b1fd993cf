//! The Hatchet engine's gRPC contracts (dispatcher, events, workflows and their `v1`
//! successors), kept wire-identical to the engine so workers written with this crate
//! interoperate with the official SDKs on the same tenant.
