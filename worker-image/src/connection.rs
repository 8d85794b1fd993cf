//! The gRPC channel to the engine: TLS per strategy, keepalive the engine accepts, and the
//! bearer token on every call.

use std::time::Duration;

use hatchet_proto::dispatcher_client::DispatcherClient;
use hatchet_proto::events_service_client::EventsServiceClient;
use hatchet_proto::v1::admin_service_client::AdminServiceClient;
use hatchet_proto::v1::v1_dispatcher_client::V1DispatcherClient;
use hatchet_proto::workflow_service_client::WorkflowServiceClient;
use tonic::codec::CompressionEncoding;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::Error;
use crate::config::{ClientConfig, TlsStrategy};

/// Keepalive ping interval. The engine rejects pings more often than every 5 s.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Adds `authorization: Bearer <token>` to every request.
#[derive(Clone)]
pub(crate) struct BearerAuth {
    header: AsciiMetadataValue,
}

impl Interceptor for BearerAuth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.header.clone());
        Ok(req)
    }
}

/// A channel that authenticates every call.
pub(crate) type AuthChannel = InterceptedService<Channel, BearerAuth>;

/// Typed clients for every engine service, sharing one HTTP/2 connection.
#[derive(Clone)]
pub(crate) struct Engine {
    pub(crate) dispatcher: DispatcherClient<AuthChannel>,
    pub(crate) events: EventsServiceClient<AuthChannel>,
    pub(crate) admin: AdminServiceClient<AuthChannel>,
    pub(crate) workflows: WorkflowServiceClient<AuthChannel>,
    /// The durable-task stream's service.
    pub(crate) durable: V1DispatcherClient<AuthChannel>,
    /// The connection and the token header itself, for the OTLP exporter that sends spans
    /// to the engine.
    #[cfg(feature = "otel")]
    pub(crate) channel: Channel,
    #[cfg(feature = "otel")]
    pub(crate) auth: BearerAuth,
}

impl Engine {
    /// Builds the channel lazily: it connects on first use and reconnects by itself after
    /// the engine restarts, so callers only ever see per-call statuses.
    pub(crate) fn connect(config: &ClientConfig) -> Result<Self, Error> {
        let channel = endpoint(config)?.connect_lazy();
        let header: AsciiMetadataValue = format!("Bearer {}", config.token.expose())
            .parse()
            .map_err(|_| Error::Config("HATCHET_CLIENT_TOKEN contains characters not allowed in a header".into()))?;
        let auth = BearerAuth { header };
        let svc = || InterceptedService::new(channel.clone(), auth.clone());
        let (recv, send) = (config.grpc_max_recv_message_bytes, config.grpc_max_send_message_bytes);
        Ok(Self {
            dispatcher: DispatcherClient::new(svc())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(recv)
                .max_encoding_message_size(send),
            events: EventsServiceClient::new(svc())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(recv)
                .max_encoding_message_size(send),
            admin: AdminServiceClient::new(svc())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(recv)
                .max_encoding_message_size(send),
            workflows: WorkflowServiceClient::new(svc())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(recv)
                .max_encoding_message_size(send),
            durable: V1DispatcherClient::new(svc())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(recv)
                .max_encoding_message_size(send),
            #[cfg(feature = "otel")]
            channel,
            #[cfg(feature = "otel")]
            auth,
        })
    }
}

fn endpoint(config: &ClientConfig) -> Result<Endpoint, Error> {
    let scheme = if config.tls.strategy == TlsStrategy::None {
        "http"
    } else {
        "https"
    };
    let uri = format!("{scheme}://{}", config.host_port);
    let mut ep = Endpoint::from_shared(uri.clone())
        .map_err(|e| {
            Error::Config(format!(
                "HATCHET_CLIENT_HOST_PORT {:?} is not usable: {e}",
                config.host_port
            ))
        })?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .tcp_nodelay(true);
    if config.tls.strategy != TlsStrategy::None {
        ep = ep
            .tls_config(tls_config(config)?)
            .map_err(|e| Error::Transport(e.to_string()))?;
    }
    Ok(ep)
}

fn tls_config(config: &ClientConfig) -> Result<ClientTlsConfig, Error> {
    let tls = &config.tls;
    let read = |var: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| Error::Config(format!("{var} {}: {e}", path.display())))
    };
    let host = config
        .host_port
        .rsplit_once(':')
        .map_or(config.host_port.as_str(), |(h, _)| h);
    let mut c = ClientTlsConfig::new().domain_name(tls.server_name.clone().unwrap_or_else(|| host.to_owned()));
    c = match &tls.root_ca_file {
        Some(ca) => c.ca_certificate(Certificate::from_pem(read("HATCHET_CLIENT_TLS_ROOT_CA_FILE", ca)?)),
        None => c.with_native_roots(),
    };
    if tls.strategy == TlsStrategy::Mtls {
        let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) else {
            return Err(Error::Config(
                "mtls needs HATCHET_CLIENT_TLS_CERT_FILE and HATCHET_CLIENT_TLS_KEY_FILE".into(),
            ));
        };
        c = c.identity(Identity::from_pem(
            read("HATCHET_CLIENT_TLS_CERT_FILE", cert)?,
            read("HATCHET_CLIENT_TLS_KEY_FILE", key)?,
        ));
    }
    Ok(c)
}
