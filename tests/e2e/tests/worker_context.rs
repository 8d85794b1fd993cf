//! What a running task can ask of the engine: logs, stream chunks, releasing its slot,
//! extending its timeout, relabelling its worker.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hatchet_e2e::World;
use hatchet_e2e::hatchet::{client, rest_json, serve, start, unique};
use hatchet_worker::{Context, LabelValue, Task, TriggerOptions, Worker, Workflow};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn log_stream_labels_and_refresh_timeout() {
    let client = client(&World::load().expect("local world"));
    let wf = unique("ctx");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let flow = Workflow::new(&wf).task(
        Task::new("chatty", move |_: Value, c: Context| {
            let tx = tx.clone();
            async move {
                c.log("hello from the task").await?;
                c.upsert_labels(BTreeMap::from([("phase".to_owned(), LabelValue::from("upserted"))]))
                    .await?;
                // Outlive the 2 s timeout only because it was extended; stream meanwhile (a
                // subscriber only sees chunks sent after it subscribed).
                c.refresh_timeout(Duration::from_secs(15)).await?;
                for i in 0..20 {
                    c.stream(format!("chunk-{i}").into_bytes()).await?;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                tx.send(c.task_run_id().to_owned()).unwrap();
                Ok(json!({"done": true}))
            }
        })
        .timeout(Duration::from_secs(2)),
    );
    let w = serve(&client, flow).await;
    let run = client
        .trigger(&wf, &json!({}), TriggerOptions::default())
        .await
        .unwrap();
    let chunks: Vec<String> = timeout(
        WAIT,
        client
            .subscribe_stream(&run.id)
            .map(|c| String::from_utf8(c.expect("stream chunk")).expect("utf-8 chunk"))
            .collect(),
    )
    .await
    .expect("the stream ends with the run");
    let out = timeout(WAIT, client.wait_for_run(&run.id)).await.unwrap().unwrap();
    assert_eq!(out["chatty"], json!({"done": true}));
    let task_run = rx.recv().await.unwrap();
    assert!(!chunks.is_empty(), "no streamed chunk arrived");
    let numbers: Vec<u32> = chunks
        .iter()
        .map(|c| {
            c.strip_prefix("chunk-")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{c}"))
        })
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "chunks in order: {chunks:?}");
    assert_eq!(
        numbers.last(),
        Some(&19),
        "the stream lasts to the end of the run: {chunks:?}"
    );

    let logs = timeout(WAIT, async {
        loop {
            let v = rest_json(&client, &format!("/api/v1/stable/tasks/{task_run}/logs"))
                .await
                .unwrap();
            let rows = v["rows"].as_array().cloned().unwrap_or_default();
            if !rows.is_empty() {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await
    .expect("task logs visible");
    assert!(logs.iter().any(|r| r["message"] == "hello from the task"), "{logs:?}");

    let worker_id = w.handle.worker_id().unwrap();
    let worker = rest_json(&client, &format!("/api/v1/workers/{worker_id}"))
        .await
        .unwrap();
    let labels = worker["labels"].as_array().cloned().unwrap_or_default();
    assert!(
        labels.iter().any(|l| l["key"] == "phase" && l["value"] == "upserted"),
        "{worker}"
    );
    w.stop().await;
}

/// The engine accepts the release and the run still completes normally. (Engine v0.104.7's
/// scheduler does not hand the released slot to queued runs until the holder ends, so this
/// checks the call and the holder's completion, not the reuse.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn released_slot_keeps_the_task_running_to_completion() {
    let client = client(&World::load().expect("local world"));
    let holder = unique("holder");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let go = Arc::new(Notify::new());
    let g = Arc::clone(&go);
    let w = start(
        Worker::builder(client.clone(), unique("w"))
            .slots(1)
            .workflow(
                Workflow::new(&holder).task(Task::new("hold", move |_: Value, c: Context| {
                    let (tx, g) = (tx.clone(), Arc::clone(&g));
                    async move {
                        c.release_slot().await?;
                        tx.send(()).unwrap();
                        g.notified().await;
                        Ok(json!("released and finished"))
                    }
                })),
            )
            .build()
            .unwrap(),
    )
    .await;
    let h = client
        .trigger(&holder, &json!({}), TriggerOptions::default())
        .await
        .unwrap();
    timeout(WAIT, rx.recv())
        .await
        .expect("holder released its slot")
        .unwrap();
    go.notify_one();
    let out = timeout(WAIT, client.wait_for_run(&h.id)).await.unwrap().unwrap();
    assert_eq!(out["hold"], "released and finished");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_that_returns_nothing_sends_an_empty_payload_the_engine_accepts() {
    let client = client(&World::load().expect("local world"));
    let wf = unique("nothing");
    let flow = Workflow::new(&wf)
        .task(Task::new("quiet", |_: Value, _c: Context| async move { Ok(()) }))
        .task(
            Task::new("after", |_: Value, c: Context| async move {
                Ok(json!({"parent": c.parent_output::<Value>("quiet").ok()}))
            })
            .parents(["quiet"]),
        );
    let w = serve(&client, flow).await;
    let out = timeout(WAIT, client.run(&wf, &json!({}), TriggerOptions::default()))
        .await
        .expect("run finished in time")
        .expect("run completed");
    assert!(out.get("quiet").is_none_or(|v| v.is_null() || v == ""), "{out:?}");
    assert!(out.contains_key("after"), "{out:?}");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_that_cancels_itself_stops_at_once_and_its_run_is_cancelled() {
    let client = client(&World::load().expect("local world"));
    let wf = unique("self-cancel");
    let went_on = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&went_on);
    let flow = Workflow::new(&wf).task(Task::new("quits", move |_: Value, c: Context| {
        let flag = Arc::clone(&flag);
        async move {
            c.cancel().await?;
            tokio::time::sleep(Duration::from_secs(30)).await;
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(json!({"went on": true}))
        }
    }));
    let w = serve(&client, flow).await;
    let run = client
        .trigger(&wf, &json!({}), TriggerOptions::default())
        .await
        .unwrap();
    let status = timeout(WAIT, async {
        loop {
            let d = client.run_details(&run.id).await.unwrap();
            if d.status != hatchet_worker::RunStatus::Queued && d.status != hatchet_worker::RunStatus::Running {
                return d.status;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the run ends");
    assert_eq!(status, hatchet_worker::RunStatus::Cancelled);
    let exit = w.stop().await;
    assert_eq!(exit, hatchet_worker::Exit::Drained, "nothing was left running");
    assert!(
        !went_on.load(std::sync::atomic::Ordering::SeqCst),
        "the handler stopped at the cancel"
    );
}
