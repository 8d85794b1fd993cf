//! The typed feature clients against the real engine: each creates (through a worker and
//! triggers), reads back, changes and deletes what it manages, in a namespace of its own.

use std::time::Duration;

use futures::TryStreamExt;
use hatchet_e2e::World;
use hatchet_e2e::hatchet::{RunningWorker, client_in, napper, start, unique};
use hatchet_rest::types::{V1TaskStatus, V1UpdateWebhookRequest, V1WebhookAuthType, V1WebhookSourceName, WorkerStatus};
use hatchet_rest::{
    CronFilter, EventFilter, FilterChange, LogFilter, NewWebhook, Rest, RunFilter, RunOptions, ScheduleFilter, Select,
    TaskMetricsFilter, Uuid, WebhookAuth, WorkerFilter,
};
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

/// The local world, a namespace of this test's own, a worker client and a REST client in it.
fn in_new_namespace() -> (World, String, hatchet_worker::Client, Rest) {
    let world = World::load().expect("local world");
    let ns = unique("rest");
    let client = client_in(&world, &ns);
    let rest = rest(&world, &ns);
    (world, ns, client, rest)
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
    let (_, ns, client, rest) = in_new_namespace();
    let wf = "rest-sleeper";
    let worker_name = unique("rw");
    let worker = start(
        Worker::builder(client.clone(), &worker_name)
            .label("zone", "rest-a")
            .workflow(napper(wf, &[]))
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
    assert!(
        me.labels
            .iter()
            .any(|l| l.key == "zone" && l.value.as_deref() == Some("rest-a")),
        "{:?}",
        me.labels
    );
    let my_id = me.metadata.id.to_string();
    let labelled = |zone: &str| {
        let filter = WorkerFilter {
            labels: vec![("zone".into(), zone.into())],
            ..WorkerFilter::default()
        };
        let rest = rest.clone();
        async move {
            let found: Vec<_> = rest
                .workers()
                .matching(filter)
                .try_collect()
                .await
                .expect("list by label");
            found.into_iter().map(|w| w.metadata.id.to_string()).collect::<Vec<_>>()
        }
    };
    assert!(labelled("rest-a").await.contains(&my_id), "found by its label");
    assert!(!labelled("rest-b").await.contains(&my_id), "not by another");
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

/// Polls `probe` every 250 ms until it gives a value, for at most `within`.
async fn eventually<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let t0 = std::time::Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(t0.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A workflow of one no-op task, registered by a worker of its own; its id.
async fn registered(rest: &Rest, client: &hatchet_worker::Client, wf: Workflow) -> (RunningWorker, Uuid) {
    let name = wf.name().to_owned();
    let worker = start(
        Worker::builder(client.clone(), unique("rw"))
            .workflow(wf)
            .build()
            .expect("worker"),
    )
    .await;
    let found = rest.workflows().find(&name).await.expect("list").expect("registered");
    (worker, found.metadata.uuid().expect("workflow id"))
}

fn noop(name: &str) -> Workflow {
    Workflow::new(name).task(Task::new("echo", |input: Value, _ctx: Context| async move {
        Ok::<_, TaskError>(json!({"echo": input}))
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crons_and_schedules_are_created_listed_changed_and_deleted() {
    let (_, ns, client, rest) = in_new_namespace();
    let wf = "rest-timed";
    let (worker, workflow_id) = registered(&rest, &client, noop(wf)).await;
    let tag = unique("tag");
    let options = RunOptions::default().metadata("batch", tag.as_str()).priority(2);

    // Crons: created on the workflow's name in the namespace, found, disabled, deleted.
    let cron = rest
        .crons()
        .create(wf, "nightly", "0 3 * * *", &json!({"from": "cron"}), &options)
        .await
        .expect("create cron");
    let cron_id = cron.metadata.uuid().expect("cron id");
    assert_eq!(cron.cron, "0 3 * * *");
    assert_eq!(cron.workflow_name, format!("{ns}_{wf}").to_lowercase());
    assert_eq!(cron.priority.map(|p| p.get()), Some(2));
    let by_workflow = CronFilter {
        workflow_id: Some(workflow_id),
        ..CronFilter::default()
    };
    let listed: Vec<_> = rest.crons().list(&by_workflow).try_collect().await.expect("list crons");
    assert_eq!(
        listed.iter().map(|c| c.metadata.id.to_string()).collect::<Vec<_>>(),
        [cron.metadata.id.to_string()],
        "the workflow's one cron"
    );
    let by_metadata = CronFilter {
        metadata: vec![("batch".into(), tag.clone())],
        ..CronFilter::default()
    };
    let listed: Vec<_> = rest.crons().list(&by_metadata).try_collect().await.expect("list crons");
    assert_eq!(listed.len(), 1, "found by its runs' metadata");
    assert!(rest.crons().get(cron_id).await.expect("get cron").enabled);
    rest.crons().set_enabled(cron_id, false).await.expect("disable");
    assert!(!rest.crons().get(cron_id).await.expect("get cron").enabled, "disabled");
    rest.crons().delete(cron_id).await.expect("delete cron");
    // The engine answers 500, not 404, for a cron that is not there ("could not populate
    // resource cron-workflow" in its log).
    let gone = rest.crons().get(cron_id).await.expect_err("deleted");
    assert_eq!(gone.status(), Some(500), "{gone}");
    let listed: Vec<_> = rest.crons().list(&by_workflow).try_collect().await.expect("list crons");
    assert!(listed.is_empty(), "{listed:?}");

    // A cron input that is not an object is refused before any call.
    let bad = rest
        .crons()
        .create(wf, "bad", "* * * * *", &json!([1, 2]), &RunOptions::default())
        .await
        .expect_err("an array input");
    assert!(matches!(bad, hatchet_rest::Error::Input(_)), "{bad}");

    // Schedules: one far ahead is listed, moved and deleted; one due in 2 s runs.
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let far = rest
        .schedules()
        .create(wf, later, &json!({"from": "far"}), &options)
        .await
        .expect("schedule");
    let far_id = far.metadata.uuid().expect("schedule id");
    let by_workflow = ScheduleFilter {
        workflow_id: Some(workflow_id),
        ..ScheduleFilter::default()
    };
    let listed: Vec<_> = rest
        .schedules()
        .list(&by_workflow)
        .try_collect()
        .await
        .expect("list schedules");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].trigger_at.timestamp(), later.timestamp());
    let moved = later + chrono::Duration::hours(1);
    let changed = rest.schedules().reschedule(far_id, moved).await.expect("reschedule");
    assert_eq!(changed.trigger_at.timestamp(), moved.timestamp());
    assert_eq!(
        rest.schedules().get(far_id).await.expect("get").trigger_at.timestamp(),
        moved.timestamp()
    );
    rest.schedules().delete(far_id).await.expect("delete schedule");
    let listed: Vec<_> = rest
        .schedules()
        .list(&by_workflow)
        .try_collect()
        .await
        .expect("list schedules");
    assert!(listed.is_empty(), "{listed:?}");

    let soon = rest
        .schedules()
        .create(
            wf,
            chrono::Utc::now() + chrono::Duration::seconds(2),
            &json!({"from": "soon"}),
            &options,
        )
        .await
        .expect("schedule soon");
    let soon_id = soon.metadata.uuid().expect("schedule id");
    // Once it has run, the engine forgets the schedule; its run carries its metadata.
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);
    let run = eventually("the schedule's run", Duration::from_secs(60), || async {
        let filter = RunFilter::since(since).metadata("batch", tag.as_str());
        let runs: Vec<_> = rest.runs().list(&filter).try_collect().await.expect("list runs");
        runs.first().map(|r| r.workflow_run_external_id)
    })
    .await;
    let forgotten = rest.schedules().get(soon_id).await.expect_err("a schedule that ran");
    assert!(forgotten.is_not_found(), "{forgotten}");
    assert!(
        forgotten.to_string().contains("not found"),
        "the engine's message: {forgotten}"
    );
    until_status(&rest, run, V1TaskStatus::Completed).await;
    assert_eq!(
        rest.runs().result(run).await.expect("result"),
        Some(json!({"echo": {"from": "soon"}})),
        "the scheduled run got the schedule's input"
    );

    worker.stop().await;
    rest.workflows().delete(workflow_id).await.expect("delete workflow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_and_filters_decide_which_pushes_start_runs() {
    let (_, ns, client, rest) = in_new_namespace();
    let key = "order:placed";
    let wf = noop("rest-on-order").on_event(key);
    let (worker, workflow_id) = registered(&rest, &client, wf).await;

    let filter = rest
        .filters()
        .create(workflow_id, "shop-a", "input.amount > 10", &json!({"tier": "gold"}))
        .await
        .expect("create filter");
    let filter_id = filter.metadata.uuid().expect("filter id");
    assert_eq!(filter.expression, "input.amount > 10");
    let listed: Vec<_> = rest
        .filters()
        .list(&[workflow_id], &[])
        .try_collect()
        .await
        .expect("list filters");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(rest.filters().get(filter_id).await.expect("get filter").scope, "shop-a");

    let tag = unique("tag");
    let push = |amount: i64| {
        let (client, tag) = (client.clone(), tag.clone());
        async move {
            let options = hatchet_worker::EventOptions::default()
                .scope("shop-a")
                .metadata("batch", tag.as_str());
            let id = client
                .push_event_with(key, &json!({"amount": amount}), options)
                .await
                .expect("push");
            id.parse::<Uuid>().expect("a UUID event id")
        }
    };
    let small = push(5).await;
    let big = push(50).await;

    // Listing sends keys as given (as the SDKs do); the push stored the namespaced key.
    let stored_key = format!("{ns}_{key}").to_lowercase();
    let event_filter = EventFilter {
        keys: vec![stored_key.clone()],
        metadata: vec![("batch".into(), tag.clone())],
        ..EventFilter::default()
    };
    let events: Vec<_> = eventually("both events listed", Duration::from_secs(30), || async {
        let events: Vec<_> = rest
            .events()
            .list(&event_filter)
            .try_collect()
            .await
            .expect("list events");
        (events.len() == 2).then_some(events)
    })
    .await;
    let mut ids: Vec<String> = events.iter().map(|e| e.metadata.id.to_string()).collect();
    ids.sort();
    let mut want = vec![small.to_string(), big.to_string()];
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(events[0].key, stored_key, "pushed in the namespace");

    let triggered = eventually("the big order's run", Duration::from_secs(30), || async {
        let e = rest.events().get(big).await.expect("get event");
        e.triggered_runs.first().map(|r| r.workflow_run_id)
    })
    .await;
    until_status(&rest, triggered, V1TaskStatus::Completed).await;
    let small_event = rest.events().get(small).await.expect("get event");
    assert!(
        small_event.triggered_runs.is_empty(),
        "the filter let the small order through: {:?}",
        small_event.triggered_runs
    );
    assert_eq!(small_event.payload.get("amount"), Some(&json!(5)));

    // The filter changed lets the small ones through; deleted it is gone.
    let changed = rest
        .filters()
        .update(
            filter_id,
            FilterChange {
                expression: Some("input.amount > 1".into()),
                ..FilterChange::default()
            },
        )
        .await
        .expect("update filter");
    assert_eq!(changed.expression, "input.amount > 1");
    assert_eq!(changed.payload.get("tier"), Some(&json!("gold")), "payload kept");
    rest.filters().delete(filter_id).await.expect("delete filter");
    let gone = rest.filters().get(filter_id).await.expect_err("deleted");
    assert!(gone.is_not_found(), "{gone}");

    worker.stop().await;
    rest.workflows().delete(workflow_id).await.expect("delete workflow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logs_metrics_rate_limits_tenant_and_webhooks_are_read_and_managed() {
    let (world, ns, client, rest) = in_new_namespace();

    // Logs: the lines a task wrote, oldest first; a search narrows them.
    let wf = Workflow::new("rest-logger").task(Task::new("talk", |_: Value, ctx: Context| async move {
        for line in ["one", "two", "three"] {
            ctx.log(format!("line {line}"))
                .await
                .map_err(|e| TaskError::retryable(e.to_string()))?;
        }
        Ok(json!({}))
    }));
    let (worker, workflow_id) = registered(&rest, &client, wf).await;
    let run = rest
        .runs()
        .trigger("rest-logger", &json!({}), &RunOptions::default())
        .await
        .expect("trigger over REST");
    let run_id = run.run.metadata.uuid().expect("run id");
    until_status(&rest, run_id, V1TaskStatus::Completed).await;
    let details = rest.runs().get(run_id).await.expect("details");
    let task = details.tasks[0].task_external_id;
    assert_eq!(
        rest.runs().task(task).await.expect("task").status,
        V1TaskStatus::Completed
    );
    let lines: Vec<String> = eventually("the task's three lines", Duration::from_secs(30), || async {
        let lines: Vec<_> = rest
            .logs()
            .task(task, &LogFilter::default())
            .try_collect()
            .await
            .expect("logs");
        (lines.len() == 3).then(|| lines.into_iter().map(|l| l.message).collect())
    })
    .await;
    assert_eq!(lines, ["line one", "line two", "line three"]);
    let searched: Vec<_> = rest
        .logs()
        .task(
            task,
            &LogFilter {
                search: Some("TWO".into()),
                ..LogFilter::default()
            },
        )
        .try_collect()
        .await
        .expect("searched logs");
    assert_eq!(searched.len(), 1, "{searched:?}");

    // Metrics: the completed run is counted; a run no worker takes waits in a queue.
    let counts = rest
        .metrics()
        .task_status(&TaskMetricsFilter {
            workflow_ids: vec![workflow_id],
            ..TaskMetricsFilter::since(chrono::Utc::now() - chrono::Duration::minutes(5))
        })
        .await
        .expect("task metrics");
    let completed = counts
        .iter()
        .find(|m| m.status == V1TaskStatus::Completed)
        .map(|m| m.count);
    assert_eq!(completed, Some(1), "{counts:?}");
    worker.stop().await;
    let waiting = rest
        .runs()
        .trigger("rest-logger", &json!({}), &RunOptions::default())
        .await
        .expect("trigger with no worker");
    let queue = format!("{ns}_rest-logger:talk").to_lowercase();
    let depth = eventually("the queued run counted", Duration::from_secs(30), || async {
        let depths = rest.metrics().queues().await.expect("queue metrics");
        depths.queues.get(&queue).copied().filter(|n| *n > 0)
    })
    .await;
    assert_eq!(depth, 1);
    let stats = rest
        .metrics()
        .task_stats(std::slice::from_ref(&queue))
        .await
        .expect("task stats");
    assert!(stats.contains_key(&queue), "{stats:?}");
    let cancelled = rest
        .runs()
        .cancel(Select::Ids(vec![waiting.run.metadata.uuid().expect("run id")]))
        .await
        .expect("cancel the waiting run");
    assert_eq!(cancelled.len(), 1);

    // Rate limits: put over gRPC, listed and deleted over REST.
    let key = unique("rest-limit");
    client
        .put_rate_limit(&key, 7, hatchet_worker::RateLimitWindow::Minute)
        .await
        .expect("put rate limit");
    let limits: Vec<_> = rest
        .rate_limits()
        .list(Some(&key))
        .try_collect()
        .await
        .expect("list rate limits");
    assert_eq!(limits.len(), 1, "{limits:?}");
    assert_eq!(limits[0].limit_value, 7);
    rest.rate_limits().delete(&key).await.expect("delete rate limit");
    let limits: Vec<_> = rest
        .rate_limits()
        .list(Some(&key))
        .try_collect()
        .await
        .expect("list rate limits");
    assert!(limits.is_empty(), "{limits:?}");

    // Tenant: the one the token is for.
    let tenant = rest.tenant().await.expect("tenant");
    assert_eq!(tenant.metadata.uuid().expect("tenant id"), rest.tenant_id());

    // Webhooks: created, found, changed, posted to (an event arrives), deleted.
    let name = unique("hook");
    let hook = rest
        .webhooks()
        .create(NewWebhook {
            name: name.clone(),
            source: V1WebhookSourceName::Generic,
            event_key_expression: "'hook:' + input.kind".into(),
            scope_expression: None,
            static_payload: serde_json::Map::new(),
            auth: WebhookAuth::ApiKey {
                header: "X-Api-Key".into(),
                key: "s3cret".into(),
            },
        })
        .await
        .expect("create webhook");
    assert_eq!(hook.auth_type, V1WebhookAuthType::ApiKey);
    let listed: Vec<_> = rest.webhooks().list(&[]).try_collect().await.expect("list webhooks");
    assert!(listed.iter().any(|w| w.name == name), "{listed:?}");
    let changed = rest
        .webhooks()
        .update(
            &name,
            V1UpdateWebhookRequest {
                event_key_expression: Some("'hook2:' + input.kind".into()),
                ..V1UpdateWebhookRequest::default()
            },
        )
        .await
        .expect("update webhook");
    assert_eq!(changed.event_key_expression, "'hook2:' + input.kind");
    let url = format!(
        "{}/api/v1/stable/tenants/{}/webhooks/{name}",
        world.server_url().expect("server url"),
        rest.tenant_id()
    );
    let posted = reqwest::Client::new()
        .post(&url)
        .header("X-Api-Key", "s3cret")
        .json(&json!({"kind": tag_of(&name)}))
        .send()
        .await
        .expect("post to the webhook");
    assert!(posted.status().is_success(), "{}", posted.status());
    let hook_key = format!("hook2:{}", tag_of(&name));
    let by_key = EventFilter {
        keys: vec![hook_key.clone()],
        ..EventFilter::default()
    };
    // The webhook's event key is its expression's value, outside any client namespace.
    let event = eventually("the webhook's event", Duration::from_secs(30), || async {
        let events: Vec<_> = rest.events().list(&by_key).try_collect().await.expect("events");
        events.into_iter().next()
    })
    .await;
    assert_eq!(event.triggering_webhook_name.as_deref(), Some(name.as_str()));
    let deleted = rest.webhooks().delete(&name).await.expect("delete webhook");
    assert_eq!(deleted.name, name);
    let gone = rest.webhooks().get(&name).await.expect_err("deleted");
    assert!(gone.is_not_found(), "{gone}");

    rest.workflows().delete(workflow_id).await.expect("delete workflow");
}

/// A short word unique to this test run, for event keys.
fn tag_of(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphanumeric).collect()
}
