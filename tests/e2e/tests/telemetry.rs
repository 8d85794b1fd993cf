//! Telemetry on the real engine: a task's own `tracing` lines reach the engine's log of the
//! run with their levels (the runtime's own lines do not); the attempt's span is exported over
//! OTLP to the engine, filed under the task run and continuing the trace the run's
//! `traceparent` carries; and a run triggered inside a traced span carries that span's trace.

use std::time::Duration;

use hatchet_e2e::World;
use hatchet_e2e::hatchet::{client, rest_json, serve, unique};
use hatchet_worker::telemetry::{engine_logs, otel};
use hatchet_worker::{Context, Task, TriggerOptions, Workflow};
use opentelemetry::trace::TraceContextExt as _;
use serde_json::{Value, json};
use tokio::time::timeout;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

const WAIT: Duration = Duration::from_secs(60);

/// A trace of "the caller" no earlier run used, and its W3C `traceparent`.
fn caller_trace() -> (String, String) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let trace_id = format!("{:032x}", nanos ^ (u128::from(std::process::id()) << 64));
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    (trace_id, traceparent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn task_logs_and_spans_reach_the_engine_and_runs_carry_the_trace() {
    let world = World::load().expect("local world");
    // This process's subscriber: the OTLP layer and the log forwarder, before anything logs.
    let client = {
        let setup = hatchet_worker::Client::new(hatchet_e2e::hatchet::config(&world)).unwrap();
        let (spans, flush) = otel::layer(&setup, "e2e-telemetry", otel::Destination::Engine).unwrap();
        tracing_subscriber::registry()
            .with(spans)
            .with(engine_logs::layer(&setup))
            .init();
        FLUSH.set(flush).unwrap();
        client(&world)
    };
    let tenant = world.tenant_id().unwrap().to_owned();
    let wf = unique("telemetry");
    let flow = Workflow::new(&wf).task(Task::new("traced", |i: Value, ctx: Context| async move {
        tracing::info!(target: "shop", order = 7, "charging {}", i["amount"]);
        tracing::warn!(target: "shop", "card nearly expired");
        Ok(json!({ "traceparent": ctx.additional_metadata().get("traceparent") }))
    }));
    let w = serve(&client, flow).await;

    let (trace_id, traceparent) = caller_trace();
    let run = client
        .trigger(
            &wf,
            &json!({"amount": 12}),
            TriggerOptions::default().metadata("traceparent", traceparent),
        )
        .await
        .unwrap();
    client.wait_for_run(&run.id).await.expect("the run completes");
    let task_run = client.run_details(&run.id).await.unwrap().tasks[0].external_id.clone();

    // The task's lines, at their levels; none of the runtime's own.
    let logs = poll("the task's log lines", || async {
        let v = rest_json(&client, &format!("/api/v1/stable/tasks/{task_run}/logs"))
            .await
            .ok()?;
        let rows = v["rows"].as_array().cloned().unwrap_or_default();
        (rows.len() >= 2).then_some(rows)
    })
    .await;
    let line = |text: &str| {
        logs.iter()
            .find(|r| r["message"].as_str().unwrap_or("").contains(text))
            .cloned()
    };
    let charging = line("charging 12").unwrap_or_else(|| panic!("{logs:?}"));
    assert_eq!(charging["level"], "INFO");
    assert!(
        charging["message"].as_str().unwrap().contains("order=7"),
        "fields travel: {charging}"
    );
    assert_eq!(line("nearly expired").unwrap()["level"], "WARN");
    assert!(
        line("task finished").is_none(),
        "the runtime's lines stay local: {logs:?}"
    );

    // The attempt's span, filed under the task run, in the caller's trace.
    FLUSH.get().unwrap().flush().unwrap();
    let spans = poll("the attempt's span", || async {
        let v = rest_json(
            &client,
            &format!("/api/v1/stable/tenants/{tenant}/traces?run_external_id={}", run.id),
        )
        .await
        .ok()?;
        let rows = v["rows"].as_array().cloned().unwrap_or_default();
        rows.into_iter().find(|s| {
            s["spanName"] == "hatchet.start_step_run" && s["spanAttributes"]["hatchet.step_run_id"] == task_run.as_str()
        })
    })
    .await;
    assert_eq!(
        spans["traceId"],
        trace_id.as_str(),
        "continues the caller's trace: {spans}"
    );
    assert_eq!(spans["spanKind"], "CONSUMER");
    assert_eq!(spans["serviceName"], "e2e-telemetry");

    // A run triggered inside a traced span carries that span's trace to its task.
    let parent = tracing::info_span!("checkout");
    let checkout_trace = parent.context().span().span_context().trace_id().to_string();
    let traced = client
        .trigger(&wf, &json!({"amount": 1}), TriggerOptions::default())
        .instrument(parent)
        .await
        .unwrap();
    let out = client.wait_for_run(&traced.id).await.unwrap();
    let carried = out["traced"]["traceparent"].as_str().unwrap_or_default();
    assert!(
        carried.contains(&checkout_trace),
        "traceparent {carried:?} carries trace {checkout_trace}"
    );
    w.stop().await;
}

static FLUSH: std::sync::OnceLock<otel::FlushOnDrop> = std::sync::OnceLock::new();

/// Polls `probe` every half second until it yields, failing after [`WAIT`].
async fn poll<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    timeout(WAIT, async {
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} never showed"))
}
