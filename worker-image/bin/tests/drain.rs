//! Termination never kills a running task: the `hatchet-worker` binary drains on SIGTERM or
//! `/drain`, and past its deadline hands the remaining runs back for another worker.

#[allow(dead_code)] // shared with readiness_engine_outage.rs; this test uses only part of it
mod support;

use std::time::Duration;

use hatchet_e2e::hatchet::{client_in, start, unique};
use hatchet_e2e::{Scratch, World};
use hatchet_worker::{Client, Context, RunRef, Task, TaskError, TriggerOptions, Worker, Workflow};
use serde::Deserialize;
use serde_json::{Value, json};
use support::{spawn_worker, spawn_worker_logging};
use tokio::time::timeout;

#[derive(Deserialize)]
struct Millis {
    ms: u64,
}

/// A stand-in for another pod of the fleet: serves `fleet-sleep` and names itself `who`.
fn other_worker(client: &Client, who: &'static str) -> Worker {
    Worker::builder(client.clone(), unique("other"))
        .handle_signals(false)
        .workflow(
            Workflow::new("fleet-sleep").task(
                Task::new("sleep", move |i: Millis, _c: Context| async move {
                    tokio::time::sleep(Duration::from_millis(i.ms)).await;
                    Ok::<_, TaskError>(json!({"worker": who, "slept_ms": i.ms}))
                })
                .timeout(Duration::from_secs(3600))
                .retries(3),
            ),
        )
        .build()
        .unwrap()
}

async fn trigger_sleeps(client: &Client, n: usize, ms: u64) -> Vec<RunRef> {
    let mut runs = Vec::new();
    for _ in 0..n {
        runs.push(
            client
                .trigger("fleet-sleep", &json!({"ms": ms}), TriggerOptions::default())
                .await
                .unwrap(),
        );
    }
    runs
}

async fn worker_of(client: &Client, run: &RunRef) -> String {
    let out = timeout(Duration::from_secs(120), client.wait_for_run(&run.id))
        .await
        .expect("run finished within 120s")
        .expect("run completed");
    out["sleep"]["worker"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_finishes_running_tasks_and_takes_no_new_ones() {
    let world = World::load().unwrap();
    let ns = unique("drain");
    let client = client_in(&world, &ns);
    // A spare slot: only the drain, not a full worker, can keep the later runs away from it.
    let a = spawn_worker(&world, &ns, 4, &[]).await;
    let first = trigger_sleeps(&client, 3, 10_000).await;
    a.wait_running(3).await;

    a.signal("TERM");
    let took = a.wait_status(503, Duration::from_secs(2)).await;
    let (_, body) = a.get("/readyz").await;
    assert_eq!(
        body["reason"], "draining",
        "unready {took:?} after the signal, because it drains"
    );
    let later = trigger_sleeps(&client, 3, 100).await;
    let b = start(other_worker(&client, "other")).await;

    for run in &first {
        assert_eq!(
            worker_of(&client, run).await,
            a.name,
            "a running task finished where it started"
        );
    }
    for run in &later {
        assert_eq!(
            worker_of(&client, run).await,
            "other",
            "nothing new went to the draining worker"
        );
    }
    let status = a.wait_exit(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(0), "a clean drain exits 0");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drain_endpoint_blocks_until_drained() {
    let world = World::load().unwrap();
    let ns = unique("drainhttp");
    let client = client_in(&world, &ns);
    let a = spawn_worker(&world, &ns, 2, &[]).await;
    let runs = trigger_sleeps(&client, 2, 5_000).await;
    a.wait_running(2).await;

    let started = std::time::Instant::now();
    let http = reqwest::Client::new();
    let (r1, r2) = tokio::join!(http.post(a.url("/drain")).send(), http.get(a.url("/drain")).send());
    for (which, r) in [("POST", r1), ("a second, GET", r2)] {
        let r = r.unwrap_or_else(|e| panic!("{which} /drain answered: {e}"));
        assert_eq!(r.status().as_u16(), 200, "{which} /drain");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body, json!({"drained": true}), "{which} /drain");
    }
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "/drain returned before the tasks finished"
    );
    for run in &runs {
        assert_eq!(worker_of(&client, run).await, a.name);
    }
    assert_eq!(a.wait_exit(Duration::from_secs(30)).await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_the_deadline_runs_are_retried_elsewhere() {
    let world = World::load().unwrap();
    let ns = unique("deadline");
    let client = client_in(&world, &ns);
    let log = Scratch::new(&format!("{ns}.log"));
    let a = spawn_worker_logging(
        &world,
        &ns,
        2,
        &[("HATCHET_WORKER_DRAIN_TIMEOUT_SECONDS", "2")],
        Some(&log.path),
    )
    .await;
    let runs = trigger_sleeps(&client, 2, 8_000).await;
    a.wait_running(2).await;
    let b = start(other_worker(&client, "rescuer")).await;

    a.signal("TERM");
    // A second signal must not skip reporting the abandoned tasks.
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.signal("TERM");
    let status = a.wait_exit(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(3), "abandoning tasks exits 3");
    // Each abandoned task's FAILED event went through before the process left.
    let text = std::fs::read_to_string(&log.path).unwrap();
    let reported = text
        .lines()
        .filter(|l| l.contains("task finished") && l.contains("failed"))
        .count();
    assert_eq!(reported, 2, "both abandoned tasks reported FAILED:\n{text}");
    // Every line of an attempt is inside its span: run id, action and attempt.
    for line in text.lines().filter(|l| l.contains("task finished")) {
        assert!(
            line.contains("task{task_run=") && line.contains("attempt=1"),
            "not in the attempt's span: {line}"
        );
    }
    assert!(
        !text.contains("could not report task event"),
        "a report was lost:\n{text}"
    );
    for run in &runs {
        assert_eq!(
            worker_of(&client, run).await,
            "rescuer",
            "the abandoned run was retried on another worker"
        );
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_match_the_engine_and_parse_as_openmetrics() {
    let world = World::load().unwrap();
    let ns = unique("metrics");
    let client = client_in(&world, &ns);
    let a = spawn_worker(&world, &ns, 4, &[]).await;
    let runs = trigger_sleeps(&client, 12, 200).await;
    let mut completed = 0;
    for run in &runs {
        let out = timeout(Duration::from_secs(120), client.wait_for_run(&run.id))
            .await
            .unwrap();
        completed += usize::from(out.is_ok());
    }
    let details = client.run_details(&runs[0].id).await.unwrap();
    assert_eq!(details.status, hatchet_worker::RunStatus::Completed);

    let text = reqwest::get(a.url("/metrics")).await.unwrap().text().await.unwrap();
    let action = format!("{ns}_fleet-sleep:sleep");
    let sample = |name: &str, labels: &str| -> f64 {
        let prefix = format!("{name}{{{labels}}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .parse()
            .unwrap()
    };
    assert_eq!(completed, 12, "the engine reports every run completed");
    assert_eq!(
        sample(
            "hatchet_worker_tasks_finished_total",
            &format!("action=\"{action}\",outcome=\"succeeded\"")
        ),
        completed as f64
    );
    assert_eq!(
        sample("hatchet_worker_tasks_started_total", &format!("action=\"{action}\"")),
        12.0
    );
    assert_eq!(sample("hatchet_worker_slots", "slot_type=\"default\""), 4.0);
    assert_eq!(sample("hatchet_worker_connection_state", "state=\"streaming\""), 1.0);

    // The strict OpenMetrics parser of the official Python client (in the Python SDK's venv).
    let python = world
        .var("HATCHET_PYTHON_SDK")
        .expect("HATCHET_PYTHON_SDK in the env file");
    let parse = "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as parse\n\
                 names = [f.name for f in parse(sys.stdin.read())]\nprint(len(names))";
    let mut check = std::process::Command::new(python)
        .args(["-c", parse])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    check.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused /metrics: {}{}",
        String::from_utf8_lossy(&out.stderr),
        text
    );
    let families: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(families >= 12, "{families} metric families parsed from\n{text}");
    a.signal("TERM");
    assert_eq!(a.wait_exit(Duration::from_secs(30)).await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logs_never_contain_the_token() {
    let world = World::load().unwrap();
    let ns = unique("logs");
    let client = client_in(&world, &ns);
    let log = Scratch::new(&format!("{ns}.log"));
    let a = spawn_worker_logging(
        &world,
        &ns,
        2,
        &[
            ("HATCHET_CLIENT_LOG_LEVEL", "trace"),
            ("HATCHET_CLIENT_LOG_FORMAT", "json"),
        ],
        Some(&log.path),
    )
    .await;
    let runs = trigger_sleeps(&client, 2, 100).await;
    for run in &runs {
        assert_eq!(worker_of(&client, run).await, a.name);
    }
    a.signal("TERM");
    assert_eq!(a.wait_exit(Duration::from_secs(30)).await.code(), Some(0));
    let text = std::fs::read_to_string(&log.path).unwrap();
    let token = world.token().unwrap();
    assert!(
        text.lines().count() > 20,
        "trace logging produced too little to judge:\n{text}"
    );
    assert!(text.lines().all(|l| l.starts_with('{')), "json format requested");
    assert!(!text.contains(token), "the token leaked into the logs");
    // Nor its signature part alone, in case a header was printed in pieces.
    let signature = token.rsplit('.').next().unwrap();
    assert!(!text.contains(signature), "part of the token leaked into the logs");
}
