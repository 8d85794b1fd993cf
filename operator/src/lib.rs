//! The `HatchetWorker` operator: turns custom resources into fleets of Hatchet worker pods
//! and scales them on slot utilization and queue depth without killing running tasks.

pub mod crd;
