use super::*;
use crate::Context;

async fn echo(v: serde_json::Value, _ctx: Context) -> Result<serde_json::Value, TaskError> {
    Ok(v)
}

fn mk_dag() -> Workflow {
    Workflow::new("Order-Flow")
        .description("d")
        .on_event("order:created")
        .on_cron("*/5 * * * *")
        .concurrency(
            Concurrency::new("input.user")
                .max_runs(2)
                .strategy(ConcurrencyStrategy::GroupRoundRobin),
        )
        .task(
            Task::new("Fetch", echo)
                .retries(3)
                .backoff(2.0, Duration::from_secs(60))
                .timeout(Duration::from_secs(90)),
        )
        .task(
            Task::new("charge", echo)
                .parents(["Fetch"])
                .rate_limit(RateLimit::fixed("payments", 1))
                .desired_label("gpu", DesiredLabel::required("yes")),
        )
        .on_failure(Task::new("on-failure", echo))
}

#[test]
fn dag_becomes_the_engines_request() {
    let req = mk_dag().to_proto("team_").unwrap();
    assert_eq!(req.name, "team_Order-Flow");
    assert_eq!(req.event_triggers, vec!["team_order:created"]);
    assert_eq!(req.cron_triggers, vec!["*/5 * * * *"]);
    assert_eq!(req.tasks.len(), 2);
    let fetch = &req.tasks[0];
    assert_eq!(fetch.readable_id, "Fetch");
    assert_eq!(fetch.action, "team_order-flow:fetch");
    assert_eq!(fetch.timeout, "90s");
    assert_eq!(fetch.retries, 3);
    assert_eq!(fetch.backoff_factor, Some(2.0));
    assert_eq!(fetch.backoff_max_seconds, Some(60));
    assert_eq!(fetch.slot_requests.get("default"), Some(&1));
    let charge = &req.tasks[1];
    assert_eq!(charge.parents, vec!["Fetch"]);
    assert_eq!(charge.timeout, "1m");
    assert_eq!(charge.rate_limits[0].key, "payments");
    assert_eq!(charge.worker_labels["gpu"].str_value.as_deref(), Some("yes"));
    assert_eq!(charge.worker_labels["gpu"].required, Some(true));
    assert_eq!(
        req.on_failure_task.as_ref().unwrap().action,
        "team_order-flow:on-failure"
    );
    assert_eq!(req.concurrency_arr[0].max_runs, Some(2));
    assert_eq!(
        req.concurrency_arr[0].limit_strategy,
        Some(v1::ConcurrencyLimitStrategy::GroupRoundRobin as i32)
    );
}

#[test]
fn no_namespace_keeps_names() {
    let req = Workflow::new("simple")
        .task(Task::new("step", echo))
        .to_proto("")
        .unwrap();
    assert_eq!(req.name, "simple");
    assert_eq!(req.tasks[0].action, "simple:step");
}

#[test]
fn invalid_definitions_are_refused_before_any_call() {
    let cases: Vec<(Workflow, &str)> = vec![
        (Workflow::new("bad name").task(Task::new("t", echo)), "workflow name"),
        (Workflow::new("empty"), "has no tasks"),
        (Workflow::new("w").task(Task::new("t:1", echo)), "task name"),
        (
            Workflow::new("w").task(Task::new("t", echo)).task(Task::new("T", echo)),
            "declared twice",
        ),
        (
            Workflow::new("w").task(Task::new("t", echo).parents(["nope"])),
            "parent \"nope\"",
        ),
        (
            Workflow::new("w").task(Task::new("t", echo).timeout(Duration::ZERO)),
            "timeout",
        ),
        (
            Workflow::new("w").task(Task::new("t", echo)).on_cron("every minute"),
            "cron",
        ),
        (
            Workflow::new("w").task(Task::new("t", echo).backoff(0.5, Duration::from_secs(5))),
            "backoff factor",
        ),
        (
            Workflow::new("w").task(Task::new("t", echo)).default_priority(4),
            "priority",
        ),
        (
            Workflow::new("w").task(Task::new("t", echo).concurrency(Concurrency::new(" "))),
            "concurrency",
        ),
        (
            Workflow::new("w")
                .task(Task::new("a", echo).parents(["b"]))
                .task(Task::new("b", echo).parents(["a"])),
            "cycle",
        ),
    ];
    for (wf, want) in cases {
        let err = wf.validate().unwrap_err().to_string();
        assert!(err.contains(want), "expected {want:?} in {err}");
    }
    assert!(mk_dag().validate().is_ok());
}

#[test]
fn counts_beyond_int32_saturate_instead_of_wrapping_negative() {
    let wf = Workflow::new("big")
        .concurrency(Concurrency::new("input.user").max_runs(u32::MAX))
        .task(Task::new("t", echo).retries(u32::MAX));
    let req = wf.to_proto("").unwrap();
    assert_eq!(req.tasks[0].retries, i32::MAX);
    assert_eq!(req.concurrency_arr[0].max_runs, Some(i32::MAX));
}

#[test]
fn task_defaults_fill_what_a_task_leaves_unset() {
    let wf = Workflow::new("w")
        .task_defaults(
            TaskDefaults::default()
                .retries(4)
                .timeout(Duration::from_secs(5))
                .backoff(3.0, Duration::from_secs(30))
                .schedule_timeout(Duration::from_secs(600)),
        )
        .task(Task::new("plain", echo))
        .task(Task::new("own", echo).retries(1).timeout(Duration::from_secs(90)));
    let req = wf.to_proto("").unwrap();
    let (plain, own) = (&req.tasks[0], &req.tasks[1]);
    assert_eq!((plain.retries, plain.timeout.as_str()), (4, "5s"));
    assert_eq!((plain.backoff_factor, plain.backoff_max_seconds), (Some(3.0), Some(30)));
    assert_eq!(plain.schedule_timeout.as_deref(), Some("10m"));
    assert_eq!(
        (own.retries, own.timeout.as_str()),
        (1, "90s"),
        "a task's own options win"
    );
    assert_eq!(
        own.backoff_factor,
        Some(3.0),
        "and the rest still come from the defaults"
    );
    assert_eq!(
        wf.timeout_of(&wf.tasks[0]),
        Duration::from_secs(5),
        "the worker's own deadline agrees"
    );

    let bare = Workflow::new("w").task(Task::new("t", echo)).to_proto("").unwrap();
    assert_eq!((bare.tasks[0].retries, bare.tasks[0].timeout.as_str()), (0, "1m"));
    assert_eq!(bare.tasks[0].schedule_timeout, None);

    let bad = Workflow::new("w")
        .task_defaults(TaskDefaults::default().backoff(0.5, Duration::from_secs(30)))
        .task(Task::new("t", echo));
    assert!(bad.validate().unwrap_err().to_string().contains("backoff factor"));
}

#[test]
fn idempotency_and_event_filters_reach_the_request() {
    let req = Workflow::new("w")
        .idempotency(Idempotency::while_running("input.order", Duration::from_secs(90)))
        .event_filter(EventFilter::new("shop-a", "input.amount > 10").payload(serde_json::json!({"tier": "gold"})))
        .task(Task::new("t", echo))
        .to_proto("")
        .unwrap();
    let i = req.idempotency.unwrap();
    assert_eq!((i.expression.as_str(), i.ttl_ms), ("input.order", 90_000));
    assert_eq!(i.method, Some(v1::IdempotencyMethod::Status as i32));
    let f = &req.default_filters[0];
    assert_eq!(
        (f.scope.as_str(), f.expression.as_str()),
        ("shop-a", "input.amount > 10")
    );
    assert_eq!(f.payload.as_deref(), Some(br#"{"tier":"gold"}"#.as_slice()));

    let ttl = Idempotency::ttl("input.order", Duration::from_secs(1)).to_proto();
    assert_eq!(ttl.method, Some(v1::IdempotencyMethod::Ttl as i32));

    let refused = |wf: Workflow, needle: &str| {
        let e = wf.task(Task::new("t", echo)).validate().unwrap_err().to_string();
        assert!(e.contains(needle), "{e:?} should mention {needle:?}");
    };
    refused(
        Workflow::new("w").idempotency(Idempotency::ttl(" ", Duration::from_secs(1))),
        "expression is empty",
    );
    refused(
        Workflow::new("w").idempotency(Idempotency::ttl("input.a", Duration::ZERO)),
        "TTL",
    );
    refused(
        Workflow::new("w").event_filter(EventFilter::new("", "true")),
        "scope is empty",
    );
    refused(
        Workflow::new("w").event_filter(EventFilter::new("s", "")),
        "no expression",
    );
    refused(
        Workflow::new("w").event_filter(EventFilter::new("s", "true").payload(serde_json::json!([1]))),
        "JSON object",
    );
}

#[test]
fn a_tasks_slot_cost_is_its_slot_request() {
    let req = Workflow::new("w")
        .task(Task::new("heavy", echo).slot_cost(4))
        .task(Task::new("light", echo))
        .to_proto("")
        .unwrap();
    assert_eq!(req.tasks[0].slot_requests.get("default"), Some(&4));
    assert_eq!(req.tasks[1].slot_requests.get("default"), Some(&1));
    let zero = Workflow::new("w").task(Task::new("t", echo).slot_cost(0));
    assert!(zero.validate().unwrap_err().to_string().contains("slot cost"));
}
