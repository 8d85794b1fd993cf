//! `hatchet-operator`: runs the HatchetWorker controller (`hatchet-operator run`, the default)
//! or prints the CRD (`hatchet-operator crd`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use hatchet_operator::controller::{self, ControllerConfig};
use hatchet_operator::http::{self, HttpState};
use hatchet_operator::leader::{Election, LeaseConfig};
use hatchet_operator::metrics::Metrics;
use hatchet_operator::rbac;
use hatchet_operator::watch_health::Health;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

/// A Kubernetes operator for fleets of Hatchet workers.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the HatchetWorker CustomResourceDefinition as YAML.
    Crd,
    /// Print the operator's RBAC as YAML: cluster-wide, or with `--namespaces` a Role in each
    /// of those namespaces and nothing at cluster scope.
    Rbac {
        /// Comma-separated namespaces the operator will watch (run it with the same list).
        #[arg(long, value_delimiter = ',')]
        namespaces: Vec<String>,
        /// Namespace of the operator's ServiceAccount and leader-election Lease.
        #[arg(long, default_value = "hatchet-system")]
        operator_namespace: String,
        /// Print only the rule lists the Helm chart's templates read.
        #[arg(long, conflicts_with = "namespaces")]
        chart_rules: bool,
    },
    /// Run the controller (the default).
    Run,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Address of the HTTP server (/healthz, /readyz, /metrics).
    #[arg(long, env = "HATCHET_OPERATOR_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Log format.
    #[arg(long, env = "HATCHET_OPERATOR_LOG_FORMAT", value_enum, default_value = "json")]
    log_format: LogFormat,
    /// Log filter (tracing-subscriber EnvFilter syntax, e.g. `info,hatchet_operator=debug`).
    #[arg(long, env = "HATCHET_OPERATOR_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Comma-separated namespaces to watch; empty = all namespaces.
    #[arg(long, env = "HATCHET_OPERATOR_NAMESPACES", value_delimiter = ',', default_value = "")]
    namespaces: Vec<String>,
    /// Elect a leader on a Lease (only the leader writes). Disable for a single replica.
    #[arg(long, env = "HATCHET_OPERATOR_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Name of the leader election Lease.
    #[arg(long, env = "HATCHET_OPERATOR_LEASE_NAME", default_value = "hatchet-operator")]
    lease_name: String,
    /// Namespace of the leader election Lease.
    #[arg(long, env = "HATCHET_OPERATOR_LEASE_NAMESPACE", default_value = "hatchet-system")]
    lease_namespace: String,
    /// Lease duration in seconds: a dead leader is replaced within this.
    #[arg(long, env = "HATCHET_OPERATOR_LEASE_DURATION_SECONDS", default_value_t = 15)]
    lease_duration_seconds: u64,
    /// The leader renews this many seconds before the lease expires.
    #[arg(long, env = "HATCHET_OPERATOR_LEASE_RENEW_GRACE_SECONDS", default_value_t = 5)]
    lease_renew_grace_seconds: u64,
    /// This replica's identity (defaults to the pod name, else the host name and pid).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Seconds between resyncs of a healthy HatchetWorker.
    #[arg(long, env = "HATCHET_OPERATOR_RESYNC_SECONDS", default_value_t = 600)]
    resync_seconds: u64,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crd) => {
            print!("{}", hatchet_operator::crd::crd_yaml().context("serialize the CRD")?);
            Ok(())
        }
        Some(Command::Rbac { chart_rules: true, .. }) => {
            print!("{}", rbac::chart_rules().context("serialize the RBAC rules")?);
            Ok(())
        }
        Some(Command::Rbac {
            namespaces,
            operator_namespace,
            ..
        }) => {
            let namespaces: Vec<String> = namespaces.into_iter().filter(|n| !n.trim().is_empty()).collect();
            let scope = if namespaces.is_empty() {
                rbac::Scope::Cluster
            } else {
                rbac::Scope::Namespaces(namespaces)
            };
            print!(
                "{}",
                rbac::manifests(&scope, &operator_namespace).context("serialize the RBAC")?
            );
            Ok(())
        }
        Some(Command::Run) | None => {
            // The workspace's one TLS provider, chosen by the program (not by a library).
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(cli.run.run())
        }
    }
}

impl RunArgs {
    async fn run(self) -> anyhow::Result<()> {
        let Self {
            metrics_addr,
            log_format,
            log_level,
            namespaces,
            leader_elect,
            lease_name,
            lease_namespace,
            lease_duration_seconds,
            lease_renew_grace_seconds,
            identity,
            resync_seconds,
        } = self;
        init_logging(log_format, &log_level)?;
        let identity = identity.unwrap_or_else(default_identity);
        let namespaces: Vec<String> = namespaces.into_iter().filter(|n| !n.trim().is_empty()).collect();
        tracing::info!(%identity, ?namespaces, %metrics_addr, leader_elect, "starting hatchet-operator");

        let client = kube::Client::try_default()
            .await
            .context("kubernetes client configuration")?;
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let health = Health::default();
        let shutdown = CancellationToken::new();

        // Bound before anything else starts: a port in use is a start-up error, not an
        // operator silently running without probes and metrics.
        let listener = tokio::net::TcpListener::bind(metrics_addr)
            .await
            .with_context(|| format!("HTTP server cannot listen on {metrics_addr}"))?;
        let http_shutdown = shutdown.clone();
        let http = tokio::spawn(http::serve(
            listener,
            HttpState {
                registry: Arc::new(registry),
                health: health.clone(),
            },
            async move { http_shutdown.cancelled().await },
        ));

        let election = if leader_elect {
            let cfg = LeaseConfig {
                name: lease_name,
                namespace: lease_namespace,
                identity: identity.clone(),
                duration: Duration::from_secs(lease_duration_seconds),
                grace: Duration::from_secs(lease_renew_grace_seconds),
            };
            Election::start(client.clone(), &cfg).await.context("leader election")?
        } else {
            Election::always_leader()
        };
        let leader_log = tokio::spawn(log_leadership(election.subscribe(), metrics.clone()));

        let signals = tokio::spawn(cancel_on_signal(shutdown.clone()));
        controller::run(
            client,
            ControllerConfig {
                namespaces,
                resync: Duration::from_secs(resync_seconds),
                identity,
            },
            metrics,
            election.subscribe(),
            health,
            shutdown.clone(),
        )
        .await;
        shutdown.cancel();
        leader_log.abort();
        let _ = leader_log.await;
        election.stop(Duration::from_secs(5)).await;
        signals.abort();
        match http.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e).context(format!("HTTP server on {metrics_addr}")),
            Err(e) => return Err(e).context("HTTP server task"),
        }
        tracing::info!("stopped");
        Ok(())
    }
}

async fn log_leadership(mut rx: tokio::sync::watch::Receiver<bool>, metrics: Metrics) {
    loop {
        let leader = *rx.borrow_and_update();
        metrics.set_leader(leader);
        tracing::info!(leader, "leadership");
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::warn!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "unknown".into());
    format!("{}-{}", host.trim(), std::process::id())
}

fn init_logging(format: LogFormat, level: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(level).context("--log-level")?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    }
    .map_err(|e| anyhow::anyhow!("logging: {e}"))
}
