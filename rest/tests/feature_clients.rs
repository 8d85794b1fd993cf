//! The typed feature clients against the real engine: each creates (through a worker and
//! triggers), reads back, changes and deletes what it manages, in a namespace of its own.

use std::time::Duration;

use futures::TryStreamExt;
use hatchet_e2e::World;
use hatchet_e2e::hatchet::{client_in, start, unique};
use hatchet_rest::types::{V1TaskStatus, WorkerStatus};
use hatchet_rest::{Rest, RunFilter, Select, Uuid};
use hatchet_worker::{Context, Task, TaskError, TriggerOptions, Worker, Workflow};
use serde_json::{Value, json};

fn rest(world: &World, namespace: &str) -> Rest {
    let tenant: Uuid = world.tenant_id().expect("tenant").parse().expect("a UUID tenant");
    Rest::new(
        world.server_url().expect("server url"),
        world.token().expect("token"),
        tenant,
        namespace,
    )
    .expect("REST client")
}

/// A workflow whose task sleeps `ms` from its input (and fails when told to).
fn sleeper(name: &str) -> Workflow {
    Workflow::new(name).task(
        Task::new("nap", |input: Value, ctx: Context| async move {
            let ms = input["ms"].as_u64().unwrap_or(0);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                _ = ctx.cancelled() => return Err(TaskError::retryable("cancelled")),
            }
            if input["fail"] == json!(true) && ctx.retry_count() == 0 {
                return Err(TaskError::non_retryable("asked to fail"));
            }
            Ok(json!({"slept": ms}))
        })
        .timeout(Duration::from_secs(120)),
    )
}

async fn until_status(rest: &Rest, run: Uuid, want: V1TaskStatus) {
    let t0 = std::time::Instant::now();
    loop {
        // A run shows in the REST API a moment after its trigger answered.
        let status = match rest.runs().get(run).await {
            Ok(d) => Some(d.run.status),
            Err(e) if e.is_not_found() => None,
            Err(e) => panic!("run details: {e}"),
        };
        if status == Some(want) {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "run {run} stayed {status:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runs_workflows_and_workers_are_listed_changed_and_deleted() {
    let world = World::load().expect("local world");
    let ns = unique("rest");
    let client = client_in(&world, &ns);
    let rest = rest(&world, &ns);
    let wf = "rest-sleeper";
    let worker_name = unique("rw");
    let worker = start(
        Worker::builder(client.clone(), &worker_name)
            .workflow(sleeper(wf))
            .build()
            .expect("worker"),
    )
    .await;
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);

    // Workflows: found by its name in the namespace, and read by id.
    let found = rest
        .workflows()
        .find(wf)
        .await
        .expect("list workflows")
        .expect("registered");
    assert_eq!(
        found.name,
        format!("{ns}_{wf}").to_lowercase(),
        "named in the namespace"
    );
    let id: Uuid = found.metadata.id.to_string().parse().expect("a UUID id");
    assert_eq!(rest.workflows().get(id).await.expect("get").name, found.name);

    // Runs: listed by metadata, a failed one replayed, a running one cancelled.
    let tag = unique("tag");
    let trigger = |input: Value| {
        let (client, tag) = (client.clone(), tag.clone());
        async move {
            let options = TriggerOptions::default().metadata("batch", tag.as_str());
            let run = client.trigger(wf, &input, options).await.expect("trigger");
            run.id.parse::<Uuid>().expect("a UUID run id")
        }
    };
    let done = trigger(json!({"ms": 10})).await;
    let failed = trigger(json!({"ms": 10, "fail": true})).await;
    let long = trigger(json!({"ms": 60_000})).await;
    until_status(&rest, done, V1TaskStatus::Completed).await;
    until_status(&rest, failed, V1TaskStatus::Failed).await;
    until_status(&rest, long, V1TaskStatus::Running).await;

    let filter = RunFilter::since(since).metadata("batch", tag.as_str());
    let listed: Vec<_> = rest.runs().list(&filter).try_collect().await.expect("list runs");
    let mut ids: Vec<Uuid> = listed.iter().map(|r| r.workflow_run_external_id).collect();
    ids.sort();
    let mut want = vec![done, failed, long];
    want.sort();
    assert_eq!(ids, want, "the three runs of this batch, no other");
    let failed_only: Vec<_> = rest
        .runs()
        .list(&filter.clone().status(V1TaskStatus::Failed))
        .try_collect()
        .await
        .expect("list failed runs");
    assert_eq!(failed_only.len(), 1);
    assert_eq!(failed_only[0].workflow_run_external_id, failed);

    let cancelled = rest.runs().cancel(Select::Ids(vec![long])).await.expect("cancel");
    assert_eq!(cancelled.len(), 1, "one task run cancelled: {cancelled:?}");
    until_status(&rest, long, V1TaskStatus::Cancelled).await;

    let replayed = rest
        .runs()
        .replay(Select::Matching(filter.clone().status(V1TaskStatus::Failed)))
        .await
        .expect("replay the failed ones");
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    until_status(&rest, failed, V1TaskStatus::Completed).await;

    // Workers: listed, paused (the engine stops assigning), unpaused.
    let workers: Vec<_> = rest.workers().list().try_collect().await.expect("list workers");
    let me = workers
        .iter()
        .find(|w| w.name == format!("{ns}_{worker_name}").to_lowercase())
        .unwrap_or_else(|| {
            panic!(
                "our worker among {:?}",
                workers.iter().map(|w| &w.name).collect::<Vec<_>>()
            )
        });
    let worker_id: Uuid = me.metadata.id.to_string().parse().expect("a UUID id");
    let paused = rest.workers().pause(worker_id).await.expect("pause");
    assert_eq!(paused.status, Some(WorkerStatus::Paused));
    // The scheduler reads which workers are paused every few seconds.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let queued = trigger(json!({"ms": 1})).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        rest.runs().get(queued).await.expect("run").run.status,
        V1TaskStatus::Queued,
        "a paused worker gets nothing"
    );
    let unpaused = rest.workers().unpause(worker_id).await.expect("unpause");
    assert_eq!(unpaused.status, Some(WorkerStatus::Active));
    until_status(&rest, queued, V1TaskStatus::Completed).await;

    // An unknown run is the engine's 404, said as such.
    let missing = rest.runs().get(Uuid::from_u128(7)).await.expect_err("no such run");
    assert!(missing.status().is_some(), "{missing}");

    worker.stop().await;
    rest.workflows().delete(id).await.expect("delete");
    assert!(rest.workflows().find(wf).await.expect("list").is_none(), "deleted");
}
