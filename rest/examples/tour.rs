//! A tour of the feature clients, as in the README: run it against an engine with
//! `HATCHET_CLIENT_TOKEN` set and a workflow `orders` registered (it pauses every worker and
//! deletes the workflow at the end: not for a shared tenant).

use futures::TryStreamExt;
use hatchet_rest::types::{
    V1LogLineLevel, V1TaskStatus, V1WebhookHmacAlgorithm, V1WebhookHmacEncoding, V1WebhookSourceName,
};
use hatchet_rest::*;
use serde_json::json;

#[tokio::main]
async fn main() -> Result<()> {
    let rest = Rest::from_env()?;
    let hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);

    // Runs: trigger, read, list with filters, replay or cancel one or every run a filter matches.
    let options = RunOptions::default().metadata("batch", "b1");
    let run = rest.runs().trigger("orders", &json!({"id": 7}), &options).await?;
    let id = run.run.metadata.uuid()?;
    let output = rest.runs().result(id).await?; // Some(output) once COMPLETED
    println!("run {id}: {output:?}");
    let failed = RunFilter::since(hour_ago)
        .status(V1TaskStatus::Failed)
        .metadata("batch", "b1");
    let rows: Vec<_> = rest.runs().list(&failed).try_collect().await?;
    println!("{} failed", rows.len());
    rest.runs().replay(Select::Matching(failed)).await?;
    rest.runs().cancel(Select::Ids(vec![id])).await?;
    let task_run_id = rest.runs().get(id).await?.tasks[0].task_external_id;

    // Workflows and workers.
    let wf = rest.workflows().find("orders").await?.expect("registered");
    for w in rest.workers().list().try_collect::<Vec<_>>().await? {
        rest.workers().pause(w.metadata.uuid()?).await?; // and unpause
    }

    // Crons and schedules (workflow names in the namespace, as the SDKs apply it).
    let cron = rest
        .crons()
        .create("orders", "nightly", "0 3 * * *", &json!({}), &RunOptions::default())
        .await?;
    rest.crons().set_enabled(cron.metadata.uuid()?, false).await?;
    rest.crons().delete(cron.metadata.uuid()?).await?;
    let at = chrono::Utc::now() + chrono::Duration::minutes(10);
    let once = rest
        .schedules()
        .create("orders", at, &json!({"id": 8}), &RunOptions::default().priority(3))
        .await?;
    rest.schedules()
        .reschedule(once.metadata.uuid()?, at + chrono::Duration::hours(1))
        .await?;

    // Events as recorded (pushing is gRPC: hatchet_worker::Client::push_event) and filters.
    let placed = EventFilter {
        keys: vec!["order:placed".into()],
        ..EventFilter::default()
    };
    let events: Vec<_> = rest.events().list(&placed).try_collect().await?;
    println!("{} events", events.len());
    rest.filters()
        .create(
            wf.metadata.uuid()?,
            "shop-a",
            "input.amount > 10",
            &json!({"tier": "gold"}),
        )
        .await?;

    // Logs of a task run (oldest first), metrics, rate limits, tenant, webhooks.
    let errors = LogFilter {
        levels: vec![V1LogLineLevel::Error],
        ..LogFilter::default()
    };
    let lines: Vec<_> = rest.logs().task(task_run_id, &errors).try_collect().await?;
    let counts = rest.metrics().task_status(&TaskMetricsFilter::since(hour_ago)).await?;
    let depths = rest.metrics().queues().await?; // queue → waiting; concurrency key → waiting
    let limits: Vec<_> = rest.rate_limits().list(Some("api")).try_collect().await?;
    let tenant = rest.tenant().await?;
    println!(
        "{} error lines; {} statuses; {} queues; {} limits; tenant {}",
        lines.len(),
        counts.len(),
        depths.queues.len(),
        limits.len(),
        tenant.name
    );
    rest.webhooks()
        .create(NewWebhook {
            name: "github".into(),
            source: V1WebhookSourceName::Github,
            event_key_expression: "'github:' + headers['x-github-event']".into(),
            scope_expression: None,
            static_payload: serde_json::Map::new(),
            auth: WebhookAuth::Hmac {
                algorithm: V1WebhookHmacAlgorithm::Sha256,
                encoding: V1WebhookHmacEncoding::Hex,
                header: "X-Hub-Signature-256".into(),
                secret: std::env::var("GITHUB_SECRET").unwrap_or_default(),
            },
        })
        .await?;
    rest.workflows().delete(wf.metadata.uuid()?).await?;
    Ok(())
}
