//! Client configuration: the `HATCHET_CLIENT_*` environment (same names and defaults as the
//! official SDKs) or a builder, validated once into a [`ClientConfig`].

mod token;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub use hatchet_contract::token::TokenClaims;
use hatchet_contract::token::TokenError;
use hatchet_contract::{env, namespace};
pub use token::read_claims;

use crate::Error;

/// Default gRPC address when neither the env nor the token names one (the Python SDK's).
const DEFAULT_HOST_PORT: &str = "localhost:7070";
/// Default port of the worker's health/metrics server.
pub const DEFAULT_HEALTHCHECK_PORT: u16 = hatchet_contract::http::HEALTH_PORT;
/// Default largest gRPC message received or sent: the official SDKs' default, and the
/// engine's own (`SERVER_GRPC_MAX_MSG_SIZE`), which bounds what it accepts and delivers.
pub const DEFAULT_GRPC_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// An API token; its `Debug` never shows the value, so it cannot leak into logs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// The raw token, for the `authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// How the gRPC connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsStrategy {
    /// Server-authenticated TLS (the default).
    Tls,
    /// Mutual TLS: the worker also presents a client certificate.
    Mtls,
    /// Plaintext (local engines with `SERVER_GRPC_INSECURE`).
    None,
}

impl std::str::FromStr for TlsStrategy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tls" | "" => Ok(Self::Tls),
            "mtls" => Ok(Self::Mtls),
            "none" => Ok(Self::None),
            other => Err(Error::Config(format!(
                "HATCHET_CLIENT_TLS_STRATEGY must be tls, mtls or none, not {other:?}"
            ))),
        }
    }
}

/// TLS material and options.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsConfig {
    /// How the connection is secured (`HATCHET_CLIENT_TLS_STRATEGY`, default `tls`).
    pub strategy: TlsStrategy,
    /// PEM client certificate (mTLS).
    pub cert_file: Option<PathBuf>,
    /// PEM client key (mTLS).
    pub key_file: Option<PathBuf>,
    /// PEM CA bundle to trust instead of the system roots.
    pub root_ca_file: Option<PathBuf>,
    /// Name to verify on the server certificate (default: the host of `host_port`).
    pub server_name: Option<String>,
}

/// The worker's health/metrics HTTP server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthcheckConfig {
    /// Whether the worker serves it at all (default true).
    pub enabled: bool,
    /// TCP port to listen on (default [`DEFAULT_HEALTHCHECK_PORT`]).
    pub port: u16,
    /// Address to bind (default `0.0.0.0`).
    pub bind_address: String,
}

/// Validated client configuration shared by the worker and the client.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// API token sent as the bearer credential on gRPC and REST calls.
    pub token: Token,
    /// Tenant the worker and client act for (default: the token's `sub` claim).
    pub tenant_id: String,
    /// gRPC `host:port`.
    pub host_port: String,
    /// REST base URL, without a trailing slash.
    pub server_url: String,
    /// Normalised namespace prefix (lowercase, ends in `_`), or empty.
    pub namespace: String,
    /// How the gRPC connection is secured.
    pub tls: TlsConfig,
    /// The worker's health/metrics server settings.
    pub healthcheck: HealthcheckConfig,
    /// Labels every worker built from this config carries (e.g. the fleet label).
    pub preset_labels: BTreeMap<String, String>,
    /// Largest gRPC message taken from the engine (`HATCHET_CLIENT_GRPC_MAX_RECV_MESSAGE_LENGTH`):
    /// an assignment carries the run's input, so this bounds the inputs this worker can run.
    pub grpc_max_recv_message_bytes: usize,
    /// Largest gRPC message sent (`HATCHET_CLIENT_GRPC_MAX_SEND_MESSAGE_LENGTH`); also the size
    /// the engine is assumed to deliver, which bounds the inputs `trigger` accepts.
    pub grpc_max_send_message_bytes: usize,
}

impl ClientConfig {
    /// Starts a builder for the given token.
    pub fn builder(token: impl Into<String>) -> ClientConfigBuilder {
        ClientConfigBuilder {
            token: Token(token.into()),
            ..ClientConfigBuilder::default()
        }
    }

    /// Reads the `HATCHET_CLIENT_*` variables of this process.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let token = get(env::TOKEN).ok_or_else(|| Error::Config("HATCHET_CLIENT_TOKEN is not set".into()))?;
        let mut b = Self::builder(token);
        b.tenant_id = get(env::TENANT_ID);
        b.host_port = get(env::HOST_PORT);
        b.server_url = get(env::SERVER_URL);
        b.namespace = get(env::NAMESPACE);
        if let Some(s) = get(env::TLS_STRATEGY) {
            b.tls_strategy = Some(s.parse()?);
        }
        b.tls_cert_file = get(env::TLS_CERT_FILE).map(PathBuf::from);
        b.tls_key_file = get(env::TLS_KEY_FILE).map(PathBuf::from);
        b.tls_root_ca_file = get(env::TLS_ROOT_CA_FILE).map(PathBuf::from);
        b.tls_server_name = get(env::TLS_SERVER_NAME);
        if let Some(v) = get(env::HEALTHCHECK_ENABLED) {
            b.healthcheck_enabled = Some(parse_bool(env::HEALTHCHECK_ENABLED, &v)?);
        }
        if let Some(v) = get(env::HEALTHCHECK_PORT) {
            b.healthcheck_port = Some(v.trim().parse().map_err(|_| {
                Error::Config(format!(
                    "HATCHET_CLIENT_WORKER_HEALTHCHECK_PORT must be a port number, not {v:?}"
                ))
            })?);
        }
        b.healthcheck_bind_address = get(env::HEALTHCHECK_BIND_ADDRESS);
        if let Some(v) = get(env::WORKER_PRESET_LABELS) {
            b.preset_labels = parse_labels(&v)?;
        }
        b.grpc_max_recv_message_bytes = get(env::GRPC_MAX_RECV_MESSAGE_LENGTH)
            .map(|v| parse_message_size(env::GRPC_MAX_RECV_MESSAGE_LENGTH, &v))
            .transpose()?;
        b.grpc_max_send_message_bytes = get(env::GRPC_MAX_SEND_MESSAGE_LENGTH)
            .map(|v| parse_message_size(env::GRPC_MAX_SEND_MESSAGE_LENGTH, &v))
            .transpose()?;
        b.build()
    }

    /// Applies the namespace prefix to a workflow name, event key or worker name.
    pub fn namespaced(&self, name: &str) -> String {
        namespace::apply(&self.namespace, name)
    }
}

/// Builder for [`ClientConfig`]; unset fields fall back to the token's claims and SDK defaults.
#[derive(Debug, Default, Clone)]
pub struct ClientConfigBuilder {
    token: Token,
    tenant_id: Option<String>,
    host_port: Option<String>,
    server_url: Option<String>,
    namespace: Option<String>,
    tls_strategy: Option<TlsStrategy>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    tls_root_ca_file: Option<PathBuf>,
    tls_server_name: Option<String>,
    healthcheck_enabled: Option<bool>,
    healthcheck_port: Option<u16>,
    healthcheck_bind_address: Option<String>,
    preset_labels: BTreeMap<String, String>,
    grpc_max_recv_message_bytes: Option<usize>,
    grpc_max_send_message_bytes: Option<usize>,
}

macro_rules! setter {
    ($(#[$doc:meta] $name:ident: $ty:ty => $field:ident),* $(,)?) => {
        $(#[$doc] pub fn $name(mut self, v: impl Into<$ty>) -> Self { self.$field = Some(v.into()); self })*
    };
}

impl ClientConfigBuilder {
    setter! {
        /// Tenant id (default: the token's `sub`).
        tenant_id: String => tenant_id,
        /// gRPC `host:port` (default: the token's `grpc_broadcast_address`).
        host_port: String => host_port,
        /// REST base URL (default: the token's `server_url`).
        server_url: String => server_url,
        /// Namespace prefix for workflow names, event keys and the worker name.
        namespace: String => namespace,
        /// TLS strategy (default `tls`).
        tls_strategy: TlsStrategy => tls_strategy,
        /// mTLS client certificate.
        tls_cert_file: PathBuf => tls_cert_file,
        /// mTLS client key.
        tls_key_file: PathBuf => tls_key_file,
        /// CA bundle to trust.
        tls_root_ca_file: PathBuf => tls_root_ca_file,
        /// Server name to verify.
        tls_server_name: String => tls_server_name,
        /// Health server port (default 8001).
        healthcheck_port: u16 => healthcheck_port,
        /// Health server bind address (default `0.0.0.0`).
        healthcheck_bind_address: String => healthcheck_bind_address,
        /// Largest gRPC message taken from the engine (default 4 MiB).
        grpc_max_recv_message_bytes: usize => grpc_max_recv_message_bytes,
        /// Largest gRPC message sent, and assumed delivered by the engine (default 4 MiB).
        grpc_max_send_message_bytes: usize => grpc_max_send_message_bytes,
    }

    /// Turns the health server on or off (default on).
    pub fn healthcheck_enabled(mut self, on: bool) -> Self {
        self.healthcheck_enabled = Some(on);
        self
    }

    /// Adds a preset worker label.
    pub fn preset_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.preset_labels.insert(key.into(), value.into());
        self
    }

    /// Validates and resolves defaults from the token's claims.
    pub fn build(self) -> Result<ClientConfig, Error> {
        let claims = read_claims(&self.token.0)?;
        let host_port = self
            .host_port
            .or_else(|| claims.grpc_broadcast_address.clone())
            .unwrap_or_else(|| DEFAULT_HOST_PORT.to_owned());
        validate_host_port(&host_port)?;
        let server_url = claims.rest_url(self.server_url.as_deref()).map_err(|e| match e {
            TokenError::NoServerUrl => {
                Error::Config("HATCHET_CLIENT_SERVER_URL is not set and the token has no server_url claim".into())
            }
            e if self.server_url.is_some() => Error::Config(format!("HATCHET_CLIENT_SERVER_URL: {e}")),
            e => Error::Config(format!("HATCHET_CLIENT_TOKEN's server_url claim: {e}")),
        })?;
        let tls = TlsConfig {
            strategy: self.tls_strategy.unwrap_or(TlsStrategy::Tls),
            cert_file: self.tls_cert_file,
            key_file: self.tls_key_file,
            root_ca_file: self.tls_root_ca_file,
            server_name: self.tls_server_name,
        };
        if tls.strategy == TlsStrategy::Mtls && (tls.cert_file.is_none() || tls.key_file.is_none()) {
            return Err(Error::Config(
                "HATCHET_CLIENT_TLS_STRATEGY=mtls needs HATCHET_CLIENT_TLS_CERT_FILE and HATCHET_CLIENT_TLS_KEY_FILE"
                    .into(),
            ));
        }
        for (var, v) in [
            (env::GRPC_MAX_RECV_MESSAGE_LENGTH, self.grpc_max_recv_message_bytes),
            (env::GRPC_MAX_SEND_MESSAGE_LENGTH, self.grpc_max_send_message_bytes),
        ] {
            if let Some(v) = v {
                check_message_size(var, v)?;
            }
        }
        for (k, v) in &self.preset_labels {
            crate::names::validate_label_key(k)
                .map_err(|e| Error::Config(format!("HATCHET_CLIENT_WORKER_PRESET_LABELS: {e}")))?;
            if v.is_empty() {
                return Err(Error::Config(format!(
                    "HATCHET_CLIENT_WORKER_PRESET_LABELS: label {k:?} has an empty value"
                )));
            }
        }
        Ok(ClientConfig {
            token: Token(self.token.0.trim().to_owned()),
            tenant_id: self.tenant_id.unwrap_or(claims.sub),
            host_port,
            server_url,
            namespace: normalize_namespace(self.namespace.as_deref().unwrap_or("")),
            tls,
            healthcheck: HealthcheckConfig {
                enabled: self.healthcheck_enabled.unwrap_or(true),
                port: self.healthcheck_port.unwrap_or(DEFAULT_HEALTHCHECK_PORT),
                bind_address: self.healthcheck_bind_address.unwrap_or_else(|| "0.0.0.0".to_owned()),
            },
            preset_labels: self.preset_labels,
            grpc_max_recv_message_bytes: self
                .grpc_max_recv_message_bytes
                .unwrap_or(DEFAULT_GRPC_MAX_MESSAGE_BYTES),
            grpc_max_send_message_bytes: self
                .grpc_max_send_message_bytes
                .unwrap_or(DEFAULT_GRPC_MAX_MESSAGE_BYTES),
        })
    }
}

/// The official SDKs lowercase the namespace and make it end in `_`.
pub fn normalize_namespace(ns: &str) -> String {
    namespace::normalize(ns)
}

fn validate_host_port(hp: &str) -> Result<(), Error> {
    let bad = || Error::Config(format!("HATCHET_CLIENT_HOST_PORT must be host:port, not {hp:?}"));
    let (host, port) = hp.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || host.contains('/') || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(bad());
    }
    Ok(())
}

/// The smallest message limit that still carries an assignment's envelope, and the largest
/// gRPC can frame (its length prefix is 32 bits).
const MESSAGE_SIZE_RANGE: std::ops::RangeInclusive<usize> = 64 * 1024..=(u32::MAX as usize);

fn check_message_size(var: &str, v: usize) -> Result<usize, Error> {
    if MESSAGE_SIZE_RANGE.contains(&v) {
        Ok(v)
    } else {
        Err(Error::Config(format!(
            "{var} must be between {} and {} bytes, not {v}",
            MESSAGE_SIZE_RANGE.start(),
            MESSAGE_SIZE_RANGE.end()
        )))
    }
}

fn parse_message_size(var: &str, v: &str) -> Result<usize, Error> {
    let n = v
        .trim()
        .parse()
        .map_err(|_| Error::Config(format!("{var} must be a size in bytes, not {v:?}")))?;
    check_message_size(var, n)
}

fn parse_bool(var: &str, v: &str) -> Result<bool, Error> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "yes" | "on" => Ok(true),
        "0" | "false" | "f" | "no" | "off" => Ok(false),
        _ => Err(Error::Config(format!("{var} must be true or false, not {v:?}"))),
    }
}

/// Preset labels as a JSON object (the Python SDK's form) or `key=value,key=value`.
fn parse_labels(v: &str) -> Result<BTreeMap<String, String>, Error> {
    let err = |why: String| Error::Config(format!("HATCHET_CLIENT_WORKER_PRESET_LABELS: {why}"));
    if v.trim_start().starts_with('{') {
        let map: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(v).map_err(|e| err(format!("not a JSON object of labels ({e})")))?;
        return Ok(map
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
            .collect());
    }
    v.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, val) = pair
                .split_once('=')
                .or_else(|| pair.split_once(':'))
                .ok_or_else(|| err(format!("{pair:?} is not key=value")))?;
            Ok((k.trim().to_owned(), val.trim().to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn token() -> String {
        let p = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"sub":"tenant-1","server_url":"http://engine:8080/","grpc_broadcast_address":"engine:7077"}"#);
        format!("eyJhbGciOiJFUzI1NiJ9.{p}.c2ln")
    }

    fn env(pairs: &[(&str, &str)]) -> Result<ClientConfig, Error> {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ClientConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn a_bad_server_url_names_where_it_came_from() {
        let e = env(&[
            ("HATCHET_CLIENT_TOKEN", &token()),
            ("HATCHET_CLIENT_SERVER_URL", "engine:8080"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("HATCHET_CLIENT_SERVER_URL: the server URL must start with http")
                && e.contains("\"engine:8080\""),
            "{e}"
        );
        let claimed =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"sub":"t","server_url":"engine:8080"}"#);
        let e = env(&[("HATCHET_CLIENT_TOKEN", &format!("eyJhbGciOiJFUzI1NiJ9.{claimed}.c2ln"))])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("HATCHET_CLIENT_TOKEN's server_url claim: the server URL must"),
            "{e}"
        );
    }

    #[test]
    fn message_limits_are_read_and_checked() {
        let t = token();
        let c = env(&[
            ("HATCHET_CLIENT_TOKEN", &t),
            ("HATCHET_CLIENT_GRPC_MAX_RECV_MESSAGE_LENGTH", "8388608"),
            ("HATCHET_CLIENT_GRPC_MAX_SEND_MESSAGE_LENGTH", "6000000"),
        ])
        .unwrap();
        assert_eq!(
            (c.grpc_max_recv_message_bytes, c.grpc_max_send_message_bytes),
            (8_388_608, 6_000_000)
        );
        for bad in ["4MiB", "-1", "1000"] {
            let e = env(&[
                ("HATCHET_CLIENT_TOKEN", &t),
                ("HATCHET_CLIENT_GRPC_MAX_RECV_MESSAGE_LENGTH", bad),
            ])
            .unwrap_err()
            .to_string();
            assert!(e.contains("HATCHET_CLIENT_GRPC_MAX_RECV_MESSAGE_LENGTH"), "{bad}: {e}");
        }
    }

    #[test]
    fn defaults_come_from_the_token() {
        let t = token();
        let c = env(&[("HATCHET_CLIENT_TOKEN", &t)]).unwrap();
        assert_eq!(c.tenant_id, "tenant-1");
        assert_eq!(c.host_port, "engine:7077");
        assert_eq!(c.server_url, "http://engine:8080");
        assert_eq!(c.tls.strategy, TlsStrategy::Tls);
        assert_eq!(c.healthcheck.port, 8001);
        assert!(c.healthcheck.enabled);
        assert_eq!(c.namespace, "");
        assert_eq!(c.grpc_max_recv_message_bytes, 4 * 1024 * 1024);
        assert_eq!(c.grpc_max_send_message_bytes, 4 * 1024 * 1024);
        assert!(!format!("{c:?}").contains(&t), "Debug must not print the token");
        let b = ClientConfig::builder(t.clone()).namespace("team");
        assert!(!format!("{b:?}").contains(&t), "nor the builder's");
    }

    #[test]
    fn env_overrides_claims_and_namespace_is_normalised() {
        let t = token();
        let c = env(&[
            ("HATCHET_CLIENT_TOKEN", &t),
            ("HATCHET_CLIENT_HOST_PORT", "127.0.0.1:17077"),
            ("HATCHET_CLIENT_TENANT_ID", "other"),
            ("HATCHET_CLIENT_NAMESPACE", "Team-A"),
            ("HATCHET_CLIENT_TLS_STRATEGY", "none"),
            (
                "HATCHET_CLIENT_WORKER_PRESET_LABELS",
                "hatchet.run/fleet=ns.fleet, zone=a",
            ),
            ("HATCHET_CLIENT_WORKER_HEALTHCHECK_PORT", "9001"),
        ])
        .unwrap();
        assert_eq!(c.host_port, "127.0.0.1:17077");
        assert_eq!(c.tenant_id, "other");
        assert_eq!(c.namespace, "team-a_");
        assert_eq!(c.namespaced("Flow"), "team-a_Flow");
        assert_eq!(c.namespaced("team-a_Flow"), "team-a_Flow");
        assert_eq!(c.tls.strategy, TlsStrategy::None);
        assert_eq!(c.preset_labels["hatchet.run/fleet"], "ns.fleet");
        assert_eq!(c.preset_labels["zone"], "a");
        assert_eq!(c.healthcheck.port, 9001);
    }

    #[test]
    fn json_preset_labels_are_accepted() {
        assert_eq!(parse_labels(r#"{"a":"1","b":2}"#).unwrap()["b"], "2");
    }

    #[test]
    fn bad_settings_name_their_variable() {
        let t = token();
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "HATCHET_CLIENT_TOKEN is not set"),
            (&[("HATCHET_CLIENT_TOKEN", "garbage")], "HATCHET_CLIENT_TOKEN"),
            (
                &[("HATCHET_CLIENT_TOKEN", &t), ("HATCHET_CLIENT_TLS_STRATEGY", "ssl")],
                "HATCHET_CLIENT_TLS_STRATEGY",
            ),
            (
                &[("HATCHET_CLIENT_TOKEN", &t), ("HATCHET_CLIENT_TLS_STRATEGY", "mtls")],
                "HATCHET_CLIENT_TLS_CERT_FILE",
            ),
            (
                &[("HATCHET_CLIENT_TOKEN", &t), ("HATCHET_CLIENT_HOST_PORT", "engine")],
                "HATCHET_CLIENT_HOST_PORT",
            ),
            (
                &[("HATCHET_CLIENT_TOKEN", &t), ("HATCHET_CLIENT_HOST_PORT", "engine:0")],
                "HATCHET_CLIENT_HOST_PORT",
            ),
            (
                &[("HATCHET_CLIENT_TOKEN", &t), ("HATCHET_CLIENT_SERVER_URL", "engine")],
                "HATCHET_CLIENT_SERVER_URL",
            ),
            (
                &[
                    ("HATCHET_CLIENT_TOKEN", &t),
                    ("HATCHET_CLIENT_WORKER_HEALTHCHECK_PORT", "x"),
                ],
                "HATCHET_CLIENT_WORKER_HEALTHCHECK_PORT",
            ),
            (
                &[
                    ("HATCHET_CLIENT_TOKEN", &t),
                    ("HATCHET_CLIENT_WORKER_PRESET_LABELS", "novalue"),
                ],
                "HATCHET_CLIENT_WORKER_PRESET_LABELS",
            ),
        ];
        for (vars, want) in cases {
            let msg = env(vars).unwrap_err().to_string();
            assert!(msg.contains(want), "{vars:?}: {msg}");
        }
    }
}
