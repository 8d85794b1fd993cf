//! Events against the real engine: one push with priority and scope, and a bulk push, each
//! starting runs of a workflow listening for the key, with the payload, metadata and priority.

use std::collections::BTreeSet;
use std::time::Duration;

use hatchet_e2e::World;
use hatchet_e2e::hatchet::{client, serve, unique};
use hatchet_worker::{BulkEvent, Context, EventOptions, Task, Workflow};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pushed_and_bulk_pushed_events_start_runs_at_their_priority() {
    let client = client(&World::load().expect("local world"));
    let wf = unique("events");
    let key = format!("{wf}:happened");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let flow = Workflow::new(&wf)
        .on_event(&key)
        .task(Task::new("seen", move |i: Value, c: Context| {
            let tx = tx.clone();
            async move {
                let n = c.additional_metadata().get("n").cloned().unwrap_or(Value::Null);
                tx.send((i, n, c.priority())).unwrap();
                Ok(json!({}))
            }
        }));
    let w = serve(&client, flow).await;

    // The engine starts runs for a key only once it has registered the trigger: push until
    // one lands.
    let first = timeout(Duration::from_secs(60), async {
        loop {
            let options = EventOptions::default().priority(3).scope("tenant-a").metadata("n", 0);
            client.push_event_with(&key, &json!({"i": 0}), options).await.unwrap();
            if let Ok(Some(seen)) = timeout(Duration::from_secs(5), rx.recv()).await {
                return seen;
            }
        }
    })
    .await
    .expect("a pushed event starts a run");
    assert_eq!(first, (json!({"i": 0}), json!(0), 3));
    while rx.try_recv().is_ok() {}

    let events: Vec<BulkEvent> = (1..=3)
        .map(|i| BulkEvent {
            key: key.clone(),
            payload: json!({ "i": i }),
            options: EventOptions::default().priority(i).metadata("n", i),
        })
        .collect();
    let ids = client.push_events(&events).await.unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        3,
        "three distinct events: {ids:?}"
    );
    let mut seen = BTreeSet::new();
    while seen.len() < 3 {
        let (input, n, priority) = timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("a run per event")
            .unwrap();
        assert_eq!(input["i"], n, "metadata travels with its own event");
        assert_eq!(
            Some(i64::from(priority)),
            n.as_i64(),
            "each run at its event's priority"
        );
        seen.insert(priority);
    }
    assert_eq!(seen, BTreeSet::from([1, 2, 3]));
    w.stop().await;
}
