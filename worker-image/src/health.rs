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
use hatchet_contract::http;
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::metrics::StateSample;
use crate::runtime::listener::{HEARTBEAT_FRESHNESS, Phase};
use crate::runtime::{Connection, Shared};

/// The loop turns over at least every 500 ms; this long without a turn means it is wedged.
const STALL_AFTER: Duration = Duration::from_secs(15);

#[derive(Clone)]
struct AppState {
    shared: Arc<Shared>,
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

/// Binds the server and serves it until the worker has finished, with the limits above.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    addr: SocketAddr,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Config(format!("health server cannot listen on {addr}: {e}")))?;
    tracing::info!(%addr, "health server listening");
    let finished = shared.finished.clone();
    let app = Router::new()
        .route(http::LIVEZ, get(livez))
        .route(http::READYZ, get(readyz))
        .route(http::HEALTH, get(health))
        .route(http::STATUS, get(status))
        .route(http::METRICS, get(metrics))
        .route(http::DRAIN, get(drain).post(drain))
        .with_state(AppState { shared, registry });
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

/// Why the worker is not ready, or `None` when it is.
pub(crate) fn unready_reason(c: &Connection, draining: bool, now: Instant) -> Option<String> {
    if draining {
        return Some("draining".into());
    }
    if c.worker_id.is_none() {
        return Some(match &c.startup_error {
            Some(e) => format!("waiting for the engine: {e}"),
            None => "not registered with the engine yet".into(),
        });
    }
    if !c.phase.is_up() {
        return Some(format!("assignment stream is not up ({:?})", c.phase));
    }
    match c.last_heartbeat_ok {
        None => Some("no heartbeat acknowledged yet".into()),
        Some(_) if !c.stream_confirmed => Some("no heartbeat acknowledged on the new assignment stream yet".into()),
        Some(t) if now.saturating_duration_since(t) >= HEARTBEAT_FRESHNESS => Some(format!(
            "last heartbeat acknowledged {:.1}s ago",
            now.saturating_duration_since(t).as_secs_f64()
        )),
        Some(_) => None,
    }
}

/// Whether the worker's loop has stopped turning over.
pub(crate) fn stalled_for(c: &Connection, now: Instant) -> Option<Duration> {
    let idle = now.saturating_duration_since(c.loop_tick);
    (idle >= STALL_AFTER && c.phase != Phase::Stopped).then_some(idle)
}

fn json_response(code: StatusCode, body: serde_json::Value) -> Response {
    (code, axum::Json(body)).into_response()
}

async fn livez(State(s): State<AppState>) -> Response {
    let c = s.shared.connection.lock().expect("connection lock").clone();
    match stalled_for(&c, Instant::now()) {
        None => json_response(StatusCode::OK, json!({"status": "alive"})),
        Some(d) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "stalled", "reason": format!("worker loop has not run for {:.1}s", d.as_secs_f64())}),
        ),
    }
}

async fn readyz(State(s): State<AppState>) -> Response {
    let c = s.shared.connection.lock().expect("connection lock").clone();
    match unready_reason(&c, s.shared.is_draining(), Instant::now()) {
        None => json_response(StatusCode::OK, json!({"ready": true})),
        Some(reason) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"ready": false, "reason": reason}),
        ),
    }
}

async fn health(State(s): State<AppState>) -> Response {
    let c = s.shared.connection.lock().expect("connection lock").clone();
    let now = Instant::now();
    let (code, status) = if unready_reason(&c, s.shared.is_draining(), now).is_none() {
        (StatusCode::OK, "HEALTHY")
    } else if c.last_heartbeat_ok.is_none() && !s.shared.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "STARTING")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "UNHEALTHY")
    };
    json_response(code, json!({"status": status}))
}

async fn status(State(s): State<AppState>) -> Response {
    let sh = &s.shared;
    let c = sh.connection.lock().expect("connection lock").clone();
    let now = Instant::now();
    let running: Vec<_> = sh
        .running
        .lock()
        .expect("running lock")
        .iter()
        .map(|(id, t)| {
            json!({
                "task_run_id": id,
                "action": t.action_id,
                "age_seconds": now.saturating_duration_since(t.started_at).as_secs_f64(),
            })
        })
        .collect();
    let mut actions: Vec<_> = sh.actions.keys().cloned().collect();
    actions.sort();
    let labels: serde_json::Map<_, _> = sh
        .labels
        .iter()
        .map(|(k, v)| {
            let v = match v {
                crate::LabelValue::Str(s) => json!(s),
                crate::LabelValue::Int(i) => json!(i),
            };
            (k.clone(), v)
        })
        .collect();
    json_response(
        StatusCode::OK,
        json!({
            "worker_id": c.worker_id,
            "name": sh.name,
            "slots": {"total": sh.slots.total(), "used": sh.slots.used()},
            "running": running,
            "labels": labels,
            "actions": actions,
            "connection": {
                "state": format!("{:?}", c.phase),
                "last_heartbeat_age_seconds": c.last_heartbeat_ok.map(|t| now.saturating_duration_since(t).as_secs_f64()),
                "reconnects": c.reconnects,
            },
            "ready": unready_reason(&c, sh.is_draining(), now).is_none(),
            "draining": sh.is_draining(),
        }),
    )
}

async fn metrics(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let sh = &s.shared;
    let c = sh.connection.lock().expect("connection lock").clone();
    sh.metrics.observe(&StateSample {
        slots_total: sh.slots.total(),
        slots_used: sh.slots.used(),
        heartbeat_age: c.last_heartbeat_ok.map(|t| Instant::now().saturating_duration_since(t)),
        phase: c.phase,
        draining: sh.is_draining(),
        reconnects: c.reconnects,
    });
    let mut body = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut body, &s.registry) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding metrics failed: {e}"),
        )
            .into_response();
    }
    let wants_openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    if wants_openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            crate::metrics::openmetrics_to_prometheus(&body),
        )
            .into_response()
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
    s.shared.shutdown.cancel();
    s.shared.finished.cancelled().await;
    let exit = s.shared.exit.lock().expect("exit lock").clone();
    match exit {
        Some(crate::Exit::Drained) => json_response(StatusCode::OK, json!({"drained": true})),
        Some(crate::Exit::DeadlineExceeded { abandoned }) => {
            json_response(StatusCode::OK, json!({"drained": false, "abandoned": abandoned}))
        }
        None => json_response(
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

    fn mk_conn(phase: Phase, hb_ago: Option<u64>, now: Instant) -> Connection {
        Connection {
            worker_id: Some("w".into()),
            phase,
            last_heartbeat_ok: hb_ago.map(|s| now - Duration::from_secs(s)),
            stream_confirmed: hb_ago.is_some(),
            reconnects: 0,
            loop_tick: now,
            startup_error: None,
        }
    }

    #[test]
    fn readiness_needs_stream_fresh_heartbeat_and_no_drain() {
        let now = Instant::now() + Duration::from_secs(100);
        assert_eq!(
            unready_reason(&mk_conn(Phase::Streaming, Some(1), now), false, now),
            None
        );
        let cases = [
            (mk_conn(Phase::Streaming, Some(1), now), true, "draining"),
            (mk_conn(Phase::BackingOff, Some(1), now), false, "stream is not up"),
            (mk_conn(Phase::Streaming, None, now), false, "no heartbeat"),
            (
                Connection {
                    stream_confirmed: false,
                    ..mk_conn(Phase::Streaming, Some(1), now)
                },
                false,
                "on the new assignment stream",
            ),
            (
                mk_conn(Phase::Streaming, Some(6), now),
                false,
                "last heartbeat acknowledged 6.0s ago",
            ),
            (
                Connection {
                    worker_id: None,
                    ..mk_conn(Phase::Registering, None, now)
                },
                false,
                "not registered",
            ),
            (
                Connection {
                    worker_id: None,
                    startup_error: Some("engine call GetVersion failed (Unavailable): refused".into()),
                    ..mk_conn(Phase::Idle, None, now)
                },
                false,
                "waiting for the engine: engine call GetVersion failed (Unavailable)",
            ),
        ];
        for (c, draining, want) in cases {
            let got = unready_reason(&c, draining, now).expect("unready");
            assert!(got.contains(want), "{got} should mention {want}");
        }
    }

    #[test]
    fn a_loop_that_stops_turning_is_stalled() {
        let now = Instant::now() + Duration::from_secs(100);
        let mut c = mk_conn(Phase::Streaming, Some(1), now);
        assert_eq!(stalled_for(&c, now), None);
        c.loop_tick = now - Duration::from_secs(20);
        assert_eq!(stalled_for(&c, now), Some(Duration::from_secs(20)));
        c.phase = Phase::Stopped;
        assert_eq!(stalled_for(&c, now), None, "a stopped worker is not wedged");
    }
}
