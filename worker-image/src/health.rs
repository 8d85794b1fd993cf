//! The worker's HTTP server for Kubernetes and Prometheus: `/livez`, `/readyz`, `/health`
//! (Python-SDK compatible), `/status`, `/metrics`, and `/drain`, which answers only on loopback
//! (anything that reaches the port, another pod say, must not be able to stop the worker; in
//! Kubernetes the kubelet's SIGTERM drains it).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use hatchet_contract::http;
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::Error;

/// What the probes answer about readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Readiness {
    Ready,
    /// Not ready yet, and never was: the engine has not acknowledged a heartbeat.
    Starting(String),
    /// Not ready, with the reason.
    Unready(String),
}

/// How the worker stopped, as `/drain` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    Drained,
    /// The drain deadline passed with this many tasks still running.
    Abandoned(usize),
    /// The worker stopped on an error (its log says which).
    Failed,
}

/// What the server asks of the worker it serves: it knows nothing else of the runtime.
pub(crate) trait Probe: Send + Sync + 'static {
    /// How long the worker's loop has not turned over, when that means it is wedged.
    fn stalled_for(&self) -> Option<Duration>;
    fn readiness(&self) -> Readiness;
    /// The `/status` document.
    fn status(&self) -> serde_json::Value;
    /// Starts draining; idempotent.
    fn drain(&self);
    /// Resolves once the worker has stopped.
    fn stopped(&self) -> BoxFuture<'static, Stopped>;
}

#[derive(Clone)]
struct AppState {
    probe: Arc<dyn Probe>,
    registry: Arc<Registry>,
}

/// Connections served at once. A new one past the cap closes the oldest, so a flood of idle
/// or slow clients cannot lock a probe out: a probe's connection lives for milliseconds, a
/// flood's for seconds.
const MAX_CONNECTIONS: usize = 256;
/// How long a connection may take to send a request's headers (and may sit idle between
/// requests): slow or idle connections do not pile up.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a connection lives, whatever it does (a client that never reads its answer).
const MAX_CONNECTION_LIFETIME: Duration = Duration::from_secs(30);
/// The most a connection may buffer for a request's headers (the endpoints take no body).
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Binds the server and serves it until the worker has stopped, with the limits above.
pub(crate) async fn serve(
    probe: Arc<dyn Probe>,
    registry: Arc<Registry>,
    addr: SocketAddr,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Config(format!("health server cannot listen on {addr}: {e}")))?;
    tracing::info!(%addr, "health server listening");
    let finished = CancellationToken::new();
    let stopped = probe.stopped();
    let on_stop = finished.clone();
    tokio::spawn(async move {
        stopped.await;
        on_stop.cancel();
    });
    let app = Router::new()
        .route(http::LIVEZ, get(livez))
        .route(http::READYZ, get(readyz))
        .route(http::HEALTH, get(health))
        .route(http::STATUS, get(status))
        .route(http::METRICS, get(metrics))
        .route(http::DRAIN, get(drain).post(drain))
        .with_state(AppState { probe, registry });
    Ok(tokio::spawn(accept_loop(listener, app, finished)))
}

/// The open connections by age, each with the switch that closes it.
#[derive(Default)]
struct OpenConnections {
    next_id: u64,
    by_age: BTreeMap<u64, CancellationToken>,
}

impl OpenConnections {
    /// Registers a new connection, closing the oldest when at the cap.
    fn admit(&mut self) -> (u64, CancellationToken) {
        if self.by_age.len() >= MAX_CONNECTIONS
            && let Some((_, oldest)) = self.by_age.pop_first()
        {
            oldest.cancel();
        }
        let id = self.next_id;
        self.next_id += 1;
        let close = CancellationToken::new();
        self.by_age.insert(id, close.clone());
        (id, close)
    }
}

/// Takes a connection off [`OpenConnections`] when its task ends, however it ends.
struct Admitted {
    open: Arc<Mutex<OpenConnections>>,
    id: u64,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.open.lock().expect("connections lock").by_age.remove(&self.id);
    }
}

/// Accepts connections until `finished`, each served by its own task; then lets the open ones
/// finish their request (a `/drain` answers) and waits for them.
async fn accept_loop(listener: tokio::net::TcpListener, app: Router, finished: CancellationToken) {
    let open = Arc::new(Mutex::new(OpenConnections::default()));
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = finished.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors, say: back off a little instead of spinning.
                    tracing::warn!(error = %e, "health server accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (id, close) = open.lock().expect("connections lock").admit();
        let admitted = Admitted {
            open: Arc::clone(&open),
            id,
        };
        let (app, finished) = (app.clone(), finished.clone());
        connections.spawn(async move {
            let _admitted = admitted;
            tokio::select! {
                () = close.cancelled() => {}
                r = tokio::time::timeout(MAX_CONNECTION_LIFETIME, serve_connection(stream, peer, app, finished)) => {
                    if r.is_err() {
                        tracing::debug!(%peer, "health connection closed at its lifetime limit");
                    }
                }
            }
        });
    }
    connections.close();
    connections.wait().await;
}

async fn serve_connection(stream: tokio::net::TcpStream, peer: SocketAddr, app: Router, finished: CancellationToken) {
    use tower::ServiceExt as _;
    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = finished.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "health connection ended");
    }
}

fn json_response(code: StatusCode, body: serde_json::Value) -> Response {
    (code, axum::Json(body)).into_response()
}

async fn livez(State(s): State<AppState>) -> Response {
    match s.probe.stalled_for() {
        None => json_response(StatusCode::OK, json!({"status": "alive"})),
        Some(d) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "stalled", "reason": format!("worker loop has not run for {:.1}s", d.as_secs_f64())}),
        ),
    }
}

async fn readyz(State(s): State<AppState>) -> Response {
    match s.probe.readiness() {
        Readiness::Ready => json_response(StatusCode::OK, json!({"ready": true})),
        Readiness::Starting(reason) | Readiness::Unready(reason) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"ready": false, "reason": reason}),
        ),
    }
}

/// The Python SDK's health document.
async fn health(State(s): State<AppState>) -> Response {
    let (code, status) = match s.probe.readiness() {
        Readiness::Ready => (StatusCode::OK, "HEALTHY"),
        Readiness::Starting(_) => (StatusCode::SERVICE_UNAVAILABLE, "STARTING"),
        Readiness::Unready(_) => (StatusCode::SERVICE_UNAVAILABLE, "UNHEALTHY"),
    };
    json_response(code, json!({"status": status}))
}

async fn status(State(s): State<AppState>) -> Response {
    json_response(StatusCode::OK, s.probe.status())
}

/// OpenMetrics text, the format the registry encodes and Prometheus negotiates; the operator
/// serves its own the same way.
async fn metrics(State(s): State<AppState>) -> Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &s.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding metrics failed: {e}"),
        )
            .into_response(),
    }
}

/// Starts the drain (idempotent) and answers once the worker has stopped; only for a caller on
/// this host's loopback (an operator's shell in the container, a local supervisor).
async fn drain(State(s): State<AppState>, ConnectInfo(peer): ConnectInfo<SocketAddr>) -> Response {
    if !drain_allowed(peer) {
        tracing::warn!(%peer, "refused /drain from a non-loopback address");
        return json_response(
            StatusCode::FORBIDDEN,
            json!({"drained": false, "error": "/drain answers only on loopback; send SIGTERM to drain the worker"}),
        );
    }
    s.probe.drain();
    match s.probe.stopped().await {
        Stopped::Drained => json_response(StatusCode::OK, json!({"drained": true})),
        Stopped::Abandoned(abandoned) => {
            json_response(StatusCode::OK, json!({"drained": false, "abandoned": abandoned}))
        }
        Stopped::Failed => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"drained": false, "error": "the worker stopped with an error; see its log"}),
        ),
    }
}

/// Whether `peer` may start a drain: only from loopback.
fn drain_allowed(peer: SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V4(ip) => ip.is_loopback(),
        std::net::IpAddr::V6(ip) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_past_the_cap_closes_the_oldest() {
        let mut open = OpenConnections::default();
        let first: Vec<_> = (0..MAX_CONNECTIONS).map(|_| open.admit()).collect();
        assert!(first.iter().all(|(_, c)| !c.is_cancelled()));
        let (newest, newest_close) = open.admit();
        assert!(first[0].1.is_cancelled(), "the oldest is closed");
        assert!(first[1..].iter().all(|(_, c)| !c.is_cancelled()));
        assert!(!newest_close.is_cancelled());
        assert_eq!(open.by_age.len(), MAX_CONNECTIONS);
        assert_eq!(open.by_age.keys().next_back(), Some(&newest));
    }

    #[test]
    fn only_loopback_may_drain() {
        for ok in ["127.0.0.1:1", "127.9.9.9:1", "[::1]:1", "[::ffff:127.0.0.1]:1"] {
            assert!(drain_allowed(ok.parse().unwrap()), "{ok}");
        }
        for no in [
            "10.77.0.1:1",
            "192.0.2.2:1",
            "0.0.0.0:1",
            "[fd00::2]:1",
            "[::ffff:10.0.0.1]:1",
        ] {
            assert!(!drain_allowed(no.parse().unwrap()), "{no}");
        }
    }
}
