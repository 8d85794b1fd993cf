//! The worker's health server: the port the operator's probes, Service and scrape annotations
//! target by default, and the paths it serves.

/// Default port of the health/metrics server.
pub const HEALTH_PORT: u16 = 8001;
/// Ready: registered with the engine and streaming assignments (readiness probe).
pub const READYZ: &str = "/readyz";
/// Alive: the process serves (liveness and startup probes).
pub const LIVEZ: &str = "/livez";
/// The official SDKs' health document.
pub const HEALTH: &str = "/health";
/// Prometheus metrics.
pub const METRICS: &str = "/metrics";
/// Starts a graceful drain; answers on loopback only.
pub const DRAIN: &str = "/drain";
/// The worker's state as JSON.
pub const STATUS: &str = "/status";
