//! Environment variables: the `HATCHET_CLIENT_*` ones are the official SDKs' (same names and
//! meaning), `HATCHET_WORKER_*` are this project's, read by the worker binary.

/// The API token (a JWT whose claims name the tenant and the engine).
pub const TOKEN: &str = "HATCHET_CLIENT_TOKEN";
/// The tenant id, when it must differ from the token's `sub`.
pub const TENANT_ID: &str = "HATCHET_CLIENT_TENANT_ID";
/// The engine's gRPC `host:port`.
pub const HOST_PORT: &str = "HATCHET_CLIENT_HOST_PORT";
/// The engine's REST base URL.
pub const SERVER_URL: &str = "HATCHET_CLIENT_SERVER_URL";
/// The Hatchet namespace prefixed to workflow, event and worker names.
pub const NAMESPACE: &str = "HATCHET_CLIENT_NAMESPACE";
/// `tls`, `mtls` or `none`.
pub const TLS_STRATEGY: &str = "HATCHET_CLIENT_TLS_STRATEGY";
/// CA bundle that verifies the engine.
pub const TLS_ROOT_CA_FILE: &str = "HATCHET_CLIENT_TLS_ROOT_CA_FILE";
/// Client certificate for mTLS.
pub const TLS_CERT_FILE: &str = "HATCHET_CLIENT_TLS_CERT_FILE";
/// Client key for mTLS.
pub const TLS_KEY_FILE: &str = "HATCHET_CLIENT_TLS_KEY_FILE";
/// Server name checked against the engine's certificate.
pub const TLS_SERVER_NAME: &str = "HATCHET_CLIENT_TLS_SERVER_NAME";
/// Labels the worker registers with, `key=value,key=value`.
pub const WORKER_PRESET_LABELS: &str = "HATCHET_CLIENT_WORKER_PRESET_LABELS";
/// Port of the worker's health/metrics server.
pub const HEALTHCHECK_PORT: &str = "HATCHET_CLIENT_WORKER_HEALTHCHECK_PORT";
/// Address the health server binds.
pub const HEALTHCHECK_BIND_ADDRESS: &str = "HATCHET_CLIENT_WORKER_HEALTHCHECK_BIND_ADDRESS";
/// `false` turns the health server off.
pub const HEALTHCHECK_ENABLED: &str = "HATCHET_CLIENT_WORKER_HEALTHCHECK_ENABLED";
/// Largest gRPC message taken from the engine, in bytes.
pub const GRPC_MAX_RECV_MESSAGE_LENGTH: &str = "HATCHET_CLIENT_GRPC_MAX_RECV_MESSAGE_LENGTH";
/// Largest gRPC message sent to the engine, in bytes.
pub const GRPC_MAX_SEND_MESSAGE_LENGTH: &str = "HATCHET_CLIENT_GRPC_MAX_SEND_MESSAGE_LENGTH";

/// The worker's name as the engine lists it (the operator sets the pod's name).
pub const WORKER_NAME: &str = "HATCHET_WORKER_NAME";
/// The worker's task slots.
pub const WORKER_SLOTS: &str = "HATCHET_WORKER_SLOTS";
/// The worker's durable task slots.
pub const WORKER_DURABLE_SLOTS: &str = "HATCHET_WORKER_DURABLE_SLOTS";
/// Seconds a worker drains after SIGTERM before it abandons what still runs.
pub const WORKER_DRAIN_TIMEOUT_SECONDS: &str = "HATCHET_WORKER_DRAIN_TIMEOUT_SECONDS";
