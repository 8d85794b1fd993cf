//! What our worker reports when a task fails, read back by the official Python SDK's own
//! parser (`hatchet_sdk.exceptions.TaskRunError.deserialize`, PyPI `hatchet-sdk` in the
//! world's venv): a user who mixes SDKs on one tenant sees the error type, the message and
//! the task run id, not a generic error with our metadata left inside the message.

use std::process::Command;
use std::time::Duration;

use hatchet_e2e::hatchet::{client, rest_json, start, unique};
use hatchet_e2e::{World, run_with_stdin};
use hatchet_worker::{Context, Error, Task, TaskError, TriggerOptions, Worker, Workflow};
use serde_json::{Value, json};
use tokio::time::timeout;

/// Feeds each stored error to the SDK's parser; one JSON object per error.
const PARSE: &str = r#"
import json, sys
from hatchet_sdk.exceptions import TaskRunError
out = []
for s in json.load(sys.stdin):
    e = TaskRunError.deserialize(s)
    out.append({"exc_type": e.exc_type, "exc": e.exc, "trace": e.trace, "id": e.task_run_external_id})
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_parses_our_failures() {
    let world = World::load().expect("local world (run tests/env/up)");
    let python = world
        .var("HATCHET_PYTHON_SDK")
        .expect("HATCHET_PYTHON_SDK in the env file")
        .to_owned();
    let client = client(&world);
    let wf = unique("interop-fail");
    let w = start(
        Worker::builder(client.clone(), unique("w"))
            .workflow(
                Workflow::new(&wf)
                    .task(Task::new("typed", |_: Value, _c: Context| async move {
                        Err::<Value, _>(
                            TaskError::non_retryable("bad input: field x\nsee the second line")
                                .with_type("Validation: Error"),
                        )
                    }))
                    .task(Task::new("plain", |_: Value, _c: Context| async move {
                        Err::<Value, _>(TaskError::non_retryable("disk on fire"))
                    }))
                    .task(Task::new("panics", |_: Value, _c: Context| async move {
                        if true {
                            panic!("kaboom: in handler");
                        }
                        Ok(json!({}))
                    })),
            )
            .build()
            .unwrap(),
    )
    .await;

    let run = client
        .trigger(&wf, &json!({}), TriggerOptions::default())
        .await
        .unwrap();
    match timeout(Duration::from_secs(90), client.wait_for_run(&run.id))
        .await
        .unwrap()
    {
        Err(Error::RunFailed { status, .. }) => assert_eq!(status, "FAILED"),
        other => panic!("the run must fail: {other:?}"),
    }
    // The run is FAILED once one task has failed; the others' errors land a moment later.
    let details = timeout(Duration::from_secs(30), async {
        loop {
            let d = rest_json(&client, &format!("/api/v1/stable/workflow-runs/{}", run.id))
                .await
                .unwrap();
            let errors = d["tasks"].as_array().map_or(0, |t| {
                t.iter()
                    .filter(|t| t["errorMessage"].as_str().is_some_and(|e| !e.is_empty()))
                    .count()
            });
            if errors == 3 {
                break d;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await
    .expect("all three task errors recorded");
    let tasks = details["tasks"].as_array().expect("tasks in the run details");
    let mut stored = Vec::new();
    let mut expected = Vec::new();
    for (name, exc_type, exc_start) in [
        ("typed", "Validation: Error", "bad input: field x"),
        ("plain", "NonRetryableException", "disk on fire"),
        ("panics", "Panic", "task handler panicked: kaboom: in handler"),
    ] {
        let t = tasks
            .iter()
            .find(|t| t["actionId"].as_str().is_some_and(|a| a.ends_with(&format!(":{name}"))))
            .unwrap_or_else(|| panic!("task {name} in {details}"));
        stored.push(t["errorMessage"].as_str().expect("errorMessage").to_owned());
        expected.push((
            name,
            exc_type,
            exc_start,
            t["metadata"]["id"].as_str().unwrap().to_owned(),
        ));
    }
    let out = run_with_stdin(
        Command::new(&python).args(["-c", PARSE]),
        &serde_json::to_vec(&stored).unwrap(),
    )
    .expect("the Python SDK parses");
    let parsed: Vec<Value> = serde_json::from_str(out.trim()).unwrap();
    for ((name, exc_type, exc_start, id), (p, raw)) in expected.iter().zip(parsed.iter().zip(&stored)) {
        let ctx = format!("{name}: stored {raw:?}, parsed {p}");
        assert_eq!(p["exc_type"], *exc_type, "{ctx}");
        assert!(p["exc"].as_str().unwrap().starts_with(exc_start), "{ctx}");
        assert_eq!(p["id"].as_str(), Some(id.as_str()), "{ctx}");
        let trace = p["trace"].as_str().unwrap();
        assert!(trace.contains("in action") && trace.contains("attempt 1"), "{ctx}");
        for part in [p["exc"].as_str().unwrap(), trace] {
            assert!(
                !part.contains("__hatchet_error_metadata__"),
                "the trailer is not left in: {ctx}"
            );
        }
    }
    // Our own client reads the multi-line message whole (the Python parser keeps its first line).
    let ours = client.run_details(&run.id).await.unwrap();
    let typed = ours
        .tasks
        .iter()
        .find_map(|t| t.error.as_deref().filter(|e| e.starts_with("Validation")));
    assert_eq!(
        typed,
        Some("Validation: Error: bad input: field x\nsee the second line")
    );
    w.stop().await;
}
