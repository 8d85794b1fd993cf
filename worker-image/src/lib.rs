//! A Rust worker runtime for Hatchet: it registers workflows with the engine, receives task
//! assignments over gRPC and runs them in bounded slots, and is built to live in a
//! Kubernetes fleet (probes, metrics, drain on termination).
