//! The TLS strategies against a TLS-terminating gRPC server on loopback: `tls` with a custom
//! CA and server name, `mtls` with a client certificate, and the bearer token on each call.
//! (The local engine runs plaintext gRPC, so the transport's TLS paths are proven here.)

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use hatchet_proto::events_service_server::{EventsService, EventsServiceServer};
use hatchet_proto::{
    BulkPushEventRequest, Event, Events, PushEventRequest, PutLogRequest, PutLogResponse, PutStreamEventRequest,
    PutStreamEventResponse, ReplayEventRequest,
};
use hatchet_worker::{Client, ClientConfig, TlsStrategy};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

const TOKEN_PAYLOAD: &str = "eyJzdWIiOiJ0ZW5hbnQtdGxzIiwic2VydmVyX3VybCI6Imh0dHA6Ly8xMjcuMC4wLjE6OSJ9";

fn token() -> String {
    format!("eyJhbGciOiJFUzI1NiJ9.{TOKEN_PAYLOAD}.c2ln")
}

/// Answers `Push` only, and only with the expected bearer token.
struct Events_;

#[tonic::async_trait]
impl EventsService for Events_ {
    async fn push(&self, req: Request<PushEventRequest>) -> Result<Response<Event>, Status> {
        let auth = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if auth != format!("Bearer {}", token()) {
            return Err(Status::unauthenticated("wrong token"));
        }
        let r = req.into_inner();
        Ok(Response::new(Event {
            tenant_id: "tenant-tls".into(),
            event_id: format!("evt-{}", r.key),
            key: r.key,
            payload: r.payload,
            ..Default::default()
        }))
    }
    async fn bulk_push(&self, _: Request<BulkPushEventRequest>) -> Result<Response<Events>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
    async fn replay_single_event(&self, _: Request<ReplayEventRequest>) -> Result<Response<Event>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
    async fn put_log(&self, _: Request<PutLogRequest>) -> Result<Response<PutLogResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
    async fn put_stream_event(
        &self,
        _: Request<PutStreamEventRequest>,
    ) -> Result<Response<PutStreamEventResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for `hatchet.test`, and a client certificate, all from the CA, in
/// a directory removed when the returned guard drops.
fn make_pki() -> hatchet_e2e::Scratch {
    let scratch = hatchet_e2e::Scratch::new("hatchet-tls");
    let dir = scratch.path.clone();
    std::fs::create_dir_all(&dir).unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    );
    for (name, ext) in [
        (
            "server",
            "subjectAltName=DNS:hatchet.test\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        openssl(
            &dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
                "-out",
                &format!("{name}.crt"),
            ],
        );
    }
    scratch
}

async fn serve(dir: &Path, require_client_cert: bool) -> SocketAddr {
    // The test server, unlike the client, has no library to choose its TLS backend.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(read("server.crt"), read("server.key")));
    if require_client_cert {
        tls = tls.client_ca_root(Certificate::from_pem(read("ca.crt")));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(
        Server::builder()
            .tls_config(tls)
            .unwrap()
            .add_service(EventsServiceServer::new(Events_))
            .serve_with_incoming(incoming),
    );
    addr
}

fn client(addr: SocketAddr, dir: &Path, strategy: TlsStrategy, server_name: &str, with_cert: bool) -> Client {
    let mut b = ClientConfig::builder(token())
        .host_port(addr.to_string())
        .tls_strategy(strategy)
        .tls_root_ca_file(dir.join("ca.crt"))
        .tls_server_name(server_name)
        .healthcheck_enabled(false);
    if with_cert {
        b = b
            .tls_cert_file(dir.join("client.crt"))
            .tls_key_file(dir.join("client.key"));
    }
    Client::new(b.build().unwrap()).unwrap()
}

#[tokio::test]
async fn tls_and_mtls_connect_with_the_right_material_only() {
    let pki = make_pki();
    let dir = pki.path.clone();
    let json = serde_json::json!({"k": 1});

    let tls = serve(&dir, false).await;
    let ok = client(tls, &dir, TlsStrategy::Tls, "hatchet.test", false)
        .push_event("tls:ok", &json, None)
        .await;
    assert_eq!(ok.unwrap(), "evt-tls:ok", "tls with the custom CA and server name");
    let wrong_name = client(tls, &dir, TlsStrategy::Tls, "other.test", false)
        .push_event("x", &json, None)
        .await;
    assert!(wrong_name.is_err(), "a certificate for another name must be refused");
    let plain = client(tls, &dir, TlsStrategy::None, "hatchet.test", false)
        .push_event("x", &json, None)
        .await;
    assert!(plain.is_err(), "plaintext cannot talk to a TLS server");

    let mtls = serve(&dir, true).await;
    let ok = client(mtls, &dir, TlsStrategy::Mtls, "hatchet.test", true)
        .push_event("mtls:ok", &json, None)
        .await;
    assert_eq!(ok.unwrap(), "evt-mtls:ok", "mtls with a client certificate");
    let no_cert = client(mtls, &dir, TlsStrategy::Tls, "hatchet.test", false)
        .push_event("x", &json, None)
        .await;
    assert!(no_cert.is_err(), "the server requires a client certificate");
}

#[test]
fn mtls_without_a_certificate_is_a_config_error() {
    let err = ClientConfig::builder(token())
        .tls_strategy(TlsStrategy::Mtls)
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("HATCHET_CLIENT_TLS_CERT_FILE"), "{err}");
}
