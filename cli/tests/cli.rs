//! The `hatchet` binary against the real engine: every command, run as a process with the
//! world's credentials in a namespace of its own, against a worker of the test's own, judged
//! by its exit code and its `--output json`.

use std::process::{Command, Output};
use std::time::Duration;

use hatchet_e2e::hatchet::{client_in, napper, start, unique};
use hatchet_e2e::{World, wait_for};
use hatchet_worker::Worker;
use serde_json::{Value, json};

const WORKFLOW: &str = "cli-sleeper";
const LINES: &[&str] = &["line 1", "line 2", "line 3"];
/// How often a wait asks again.
const POLL: Duration = Duration::from_millis(300);

/// The binary, configured from the world the way a user's shell would configure it.
struct Hatchet {
    token: String,
    server_url: String,
    tenant: String,
    namespace: String,
}

/// What one invocation did.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Hatchet {
    /// The binary with the world's credentials, in Hatchet `namespace`.
    fn of(world: &World, namespace: &str) -> Self {
        Self {
            token: world.token().expect("token").to_owned(),
            server_url: world.server_url().expect("server url").to_owned(),
            tenant: world.tenant_id().expect("tenant").to_owned(),
            namespace: namespace.to_owned(),
        }
    }

    /// Runs `args` with `--output json` until `found` picks something out of the answer.
    fn eventually<T>(&self, what: &str, args: &[&str], found: impl Fn(&Value) -> Option<T>) -> T {
        wait_for(what, Duration::from_secs(30), POLL, || {
            let answer = self.json(args);
            found(&answer).ok_or_else(|| format!("hatchet {args:?} answered {answer}"))
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hatchet"));
        for var in [
            "HATCHET_CLIENT_TOKEN",
            "HATCHET_CLIENT_SERVER_URL",
            "HATCHET_CLIENT_TENANT_ID",
            "HATCHET_CLIENT_NAMESPACE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("HATCHET_CLIENT_TOKEN", &self.token)
            .env("HATCHET_CLIENT_SERVER_URL", &self.server_url)
            .env("HATCHET_CLIENT_TENANT_ID", &self.tenant)
            .args(["--namespace", &self.namespace])
            .args(args);
        cmd
    }

    fn ran(output: Output) -> Ran {
        Ran {
            code: output.status.code().expect("exited, not killed"),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Ran {
        Self::ran(self.command(args).output().expect("the hatchet binary runs"))
    }

    /// Runs `args` with `--output json`, expecting `code`; its stdout as JSON.
    fn json_with(&self, code: i32, args: &[&str]) -> Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let r = self.run(&all);
        assert_eq!(
            r.code, code,
            "hatchet {args:?}: stdout {} stderr {}",
            r.stdout, r.stderr
        );
        serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("hatchet {args:?} printed no JSON ({e}): {}", r.stdout))
    }

    /// Runs `args` with `--output json`, expecting success; its stdout as JSON.
    fn json(&self, args: &[&str]) -> Value {
        self.json_with(0, args)
    }

    /// Runs `args`, expecting success (stdout ignored: the command's effect is checked).
    fn ok(&self, args: &[&str]) {
        let r = self.run(args);
        assert_eq!(r.code, 0, "hatchet {args:?}: {}", r.stderr);
    }

    /// Waits until `runs get` says run `id` is `want`.
    fn until_status(&self, id: &str, want: &str) {
        wait_for(&format!("run {id} {want}"), Duration::from_secs(60), POLL, || {
            let r = self.run(&["--output", "json", "runs", "get", id]);
            let status = match r.code {
                0 => serde_json::from_str::<Value>(&r.stdout).expect("JSON")["run"]["status"].clone(),
                // A run shows in the REST API a moment after its trigger answered.
                3 => Value::Null,
                code => panic!("runs get {id} exited {code}: {}", r.stderr),
            };
            if status == want {
                Ok(())
            } else {
                Err(format!("status {status}"))
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

fn ids(rows: &Value) -> Vec<&str> {
    rows.as_array()
        .expect("a JSON array")
        .iter()
        .map(|r| r["metadata"]["id"].as_str().expect("an id"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_drives_runs_crons_schedules_workers_and_logs() {
    let world = World::load().expect("local world");
    let namespace = unique("cli");
    let hatchet = Hatchet::of(&world, &namespace);
    let worker_name = unique("cw");
    let worker = start(
        Worker::builder(client_in(&world, &namespace), &worker_name)
            .workflow(napper(WORKFLOW, LINES))
            .build()
            .expect("worker"),
    )
    .await;

    // Refusals a script can tell apart.
    let r = hatchet.run(&["trigger", WORKFLOW, "--input", "[1,2]"]);
    assert_eq!(r.code, 2, "an input that is not an object is bad usage: {}", r.stderr);
    assert!(r.stderr.contains("JSON object"), "{}", r.stderr);
    let r = Hatchet::ran(
        hatchet
            .command(&["runs", "list"])
            .env_remove("HATCHET_CLIENT_TOKEN")
            .output()
            .expect("runs"),
    );
    assert_eq!(r.code, 4, "no token is missing configuration: {}", r.stderr);
    assert!(
        r.stderr.contains("HATCHET_CLIENT_TOKEN"),
        "says what to set: {}",
        r.stderr
    );
    let r = hatchet.run(&["runs", "get", "00000000-0000-0000-0000-000000000007"]);
    assert_eq!(r.code, 3, "an unknown run is not found: {}", r.stderr);
    let r = hatchet.run(&["runs", "list", "--workflow", "no-such-workflow"]);
    assert_eq!(r.code, 3, "an unknown workflow name is not found: {}", r.stderr);
    assert!(r.stderr.contains("no-such-workflow"), "{}", r.stderr);

    // trigger --wait: the result on stdout and exit 0, or exit 5 for a run that failed.
    let tag = unique("batch");
    let batch = format!("batch={tag}");
    let result = hatchet.json(&[
        "trigger",
        WORKFLOW,
        "--input",
        r#"{"ms": 10}"#,
        "--metadata",
        &batch,
        "--wait",
    ]);
    assert_eq!(result, json!({"slept": 10}));
    let r = hatchet.run(&[
        "trigger",
        WORKFLOW,
        "--input",
        r#"{"ms": 10, "fail": true}"#,
        "--metadata",
        &batch,
        "--wait",
        "--timeout",
        "60s",
    ]);
    assert_eq!(r.code, 5, "a failed run: {} {}", r.stdout, r.stderr);
    assert!(r.stderr.contains("FAILED"), "{}", r.stderr);

    // runs list by status and metadata finds the failed one alone; replay by filter mends it.
    let failed = hatchet.json(&[
        "runs",
        "list",
        "--status",
        "failed",
        "--since",
        "1h",
        "--metadata",
        &batch,
    ]);
    let failed = failed.as_array().expect("an array");
    assert_eq!(failed.len(), 1, "exactly the failed run: {failed:?}");
    assert_eq!(failed[0]["status"], "FAILED");
    let failed_id = failed[0]["workflowRunExternalId"].as_str().expect("run id").to_owned();
    let all = hatchet.json(&["runs", "list", "--since", "1h", "--metadata", &batch]);
    assert_eq!(
        all.as_array().expect("an array").len(),
        2,
        "both runs of the batch: {all}"
    );
    let table = hatchet.run(&["runs", "list", "--metadata", &batch]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    let header = table.stdout.lines().next().expect("a header");
    for column in ["RUN ID", "WORKFLOW", "STATUS", "CREATED"] {
        assert!(header.contains(column), "{column} in {header:?}");
    }
    assert_eq!(
        table.stdout.lines().count(),
        3,
        "a header and two runs:\n{}",
        table.stdout
    );

    let replayed = hatchet.json(&["runs", "replay", "--filter", "--status", "failed", "--metadata", &batch]);
    assert_eq!(replayed["runs"], 1, "{replayed}");
    hatchet.until_status(&failed_id, "COMPLETED");
    assert_eq!(hatchet.json(&["runs", "result", &failed_id]), json!({"slept": 10}));

    // A long run: its task's log lines in order, then cancelled by filter.
    let long_tag = format!("batch={}", unique("long"));
    let long = hatchet.json(&[
        "trigger",
        WORKFLOW,
        "--input",
        r#"{"ms": 60000}"#,
        "--metadata",
        &long_tag,
    ]);
    let long_id = long["run"]["metadata"]["id"].as_str().expect("run id").to_owned();
    hatchet.until_status(&long_id, "RUNNING");
    let details = hatchet.json(&["runs", "get", &long_id]);
    let task = details["tasks"][0]["taskExternalId"]
        .as_str()
        .expect("task id")
        .to_owned();
    let messages = hatchet.eventually("the task's lines", &["logs", &task], |lines| {
        let messages: Vec<String> = lines
            .as_array()
            .expect("an array")
            .iter()
            .map(|l| l["message"].as_str().expect("message").to_owned())
            .collect();
        (messages.len() >= LINES.len()).then_some(messages)
    });
    assert_eq!(messages, LINES, "the task's lines, oldest first");

    let dry = hatchet.json(&["runs", "cancel", "--filter", "--metadata", &long_tag, "--dry-run"]);
    assert_eq!(dry.as_array().expect("an array").len(), 1, "{dry}");
    let cancelled = hatchet.json(&[
        "runs",
        "cancel",
        "--filter",
        "--status",
        "running",
        "--metadata",
        &long_tag,
    ]);
    assert_eq!(cancelled["runs"], 1, "{cancelled}");
    hatchet.until_status(&long_id, "CANCELLED");
    assert_eq!(
        hatchet.run(&["runs", "result", &long_id]).code,
        5,
        "a cancelled run has no result"
    );

    // A wait that runs out is exit 6; the run goes on until cancelled by id.
    let slow_tag = format!("batch={}", unique("slow"));
    let r = hatchet.run(&[
        "trigger",
        WORKFLOW,
        "--input",
        r#"{"ms": 60000}"#,
        "--metadata",
        &slow_tag,
        "--wait",
        "--timeout",
        "2s",
    ]);
    assert_eq!(r.code, 6, "timed out: {} {}", r.stdout, r.stderr);
    assert!(r.stderr.contains("still"), "{}", r.stderr);
    let slow = hatchet.json(&["runs", "list", "--metadata", &slow_tag]);
    let slow_id = slow[0]["workflowRunExternalId"].as_str().expect("run id").to_owned();
    assert_eq!(hatchet.run(&["runs", "result", &slow_id]).code, 1, "no result yet");
    let cancelled = hatchet.json(&["runs", "cancel", &slow_id]);
    assert_eq!(cancelled["runs"], 1, "{cancelled}");
    hatchet.until_status(&slow_id, "CANCELLED");

    // Crons: created, listed, disabled, deleted.
    let cron_name = unique("nightly");
    let cron = hatchet.json(&[
        "crons",
        "create",
        WORKFLOW,
        "--name",
        &cron_name,
        "--expression",
        "0 3 * * *",
        "--input",
        r#"{"ms": 1}"#,
    ]);
    let cron_id = cron["metadata"]["id"].as_str().expect("cron id").to_owned();
    let listed = hatchet.json(&["crons", "list", "--workflow", WORKFLOW]);
    assert!(ids(&listed).contains(&cron_id.as_str()), "{listed}");
    hatchet.ok(&["crons", "disable", &cron_id]);
    assert_eq!(hatchet.json(&["crons", "get", &cron_id])["enabled"], false);
    hatchet.ok(&["crons", "delete", &cron_id]);
    let listed = hatchet.json(&["crons", "list", "--workflow", WORKFLOW]);
    assert!(!ids(&listed).contains(&cron_id.as_str()), "deleted: {listed}");

    // Schedules: created an hour ahead, listed, moved, deleted.
    let schedule = hatchet.json(&[
        "schedules",
        "create",
        WORKFLOW,
        "--at",
        "+1h",
        "--input",
        r#"{"ms": 1}"#,
    ]);
    let schedule_id = schedule["metadata"]["id"].as_str().expect("schedule id").to_owned();
    let at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(schedule["triggerAt"].clone()).expect("a trigger time");
    let ahead = at - chrono::Utc::now();
    assert!(
        ahead > chrono::Duration::minutes(55) && ahead <= chrono::Duration::minutes(60),
        "an hour ahead: {at}"
    );
    let listed = hatchet.json(&["schedules", "list", "--workflow", WORKFLOW]);
    assert!(ids(&listed).contains(&schedule_id.as_str()), "{listed}");
    let moved = hatchet.json(&["schedules", "reschedule", &schedule_id, "--at", "+2h"]);
    let moved_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(moved["triggerAt"].clone()).expect("a trigger time");
    assert!(
        moved_at - at > chrono::Duration::minutes(55),
        "moved an hour on: {moved_at}"
    );
    hatchet.ok(&["schedules", "delete", &schedule_id]);
    let listed = hatchet.json(&["schedules", "list", "--workflow", WORKFLOW]);
    assert!(!ids(&listed).contains(&schedule_id.as_str()), "deleted: {listed}");

    // Workers: ours is listed, and pausing and unpausing change its status.
    let full_name = format!("{namespace}_{worker_name}").to_lowercase();
    let workers = hatchet.json(&["workers", "list"]);
    let me = workers
        .as_array()
        .expect("an array")
        .iter()
        .find(|w| w["name"] == full_name.as_str())
        .unwrap_or_else(|| panic!("{full_name} among {workers}"));
    let worker_id = me["metadata"]["id"].as_str().expect("worker id").to_owned();
    let table = hatchet.run(&["workers", "list"]);
    assert!(table.stdout.starts_with("ID "), "{}", table.stdout);
    assert!(table.stdout.contains(&full_name), "{}", table.stdout);
    assert_eq!(hatchet.json(&["workers", "pause", &worker_id])["status"], "PAUSED");
    assert_eq!(hatchet.json(&["workers", "get", &worker_id])["status"], "PAUSED");
    assert_eq!(hatchet.json(&["workers", "unpause", &worker_id])["status"], "ACTIVE");

    worker.stop().await;
    let in_namespace = hatchet.json(&["workflows", "list"]);
    let names: Vec<&str> = in_namespace
        .as_array()
        .expect("an array")
        .iter()
        .map(|w| w["name"].as_str().expect("a name"))
        .collect();
    let full_workflow = format!("{namespace}_{WORKFLOW}").to_lowercase();
    assert_eq!(names, [full_workflow.as_str()], "the namespace's workflows only");
    let workflows = hatchet.json(&["workflows", "list", "--name", WORKFLOW]);
    let workflow_ids = ids(&workflows);
    assert_eq!(workflow_ids.len(), 1, "{workflows}");
    hatchet.ok(&["workflows", "delete", workflow_ids[0]]);
    let left = hatchet.json(&["workflows", "list", "--name", WORKFLOW]);
    assert_eq!(left, json!([]), "deleted");
}

/// How many task runs `metrics tasks` counts in `status` over the last hour.
fn tasks_in(hatchet: &Hatchet, status: &str) -> i64 {
    let counts = hatchet.json(&["metrics", "tasks", "--since", "1h"]);
    counts
        .as_array()
        .expect("an array")
        .iter()
        .find(|c| c["status"] == status)
        .map_or(0, |c| c["count"].as_i64().expect("a count"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_reads_the_tenant_events_queues_task_metrics_and_rate_limits() {
    let world = World::load().expect("local world");
    let namespace = unique("cli");
    let hatchet = Hatchet::of(&world, &namespace);
    let client = client_in(&world, &namespace);

    // The tenant the token works in.
    let tenant = hatchet.json(&["tenant"]);
    assert_eq!(tenant["metadata"]["id"], world.tenant_id().expect("tenant"), "{tenant}");
    let table = hatchet.run(&["tenant"]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stdout.lines().any(|l| l.starts_with("name")), "{}", table.stdout);

    // Events: a push is listed under its stored (namespaced) key and read back whole.
    let tag = unique("ping");
    let pushed = client
        .push_event_with(
            "cli:ping",
            &json!({"n": 1}),
            hatchet_worker::EventOptions::default().metadata("batch", tag.as_str()),
        )
        .await
        .expect("push");
    let stored_key = format!("{namespace}_cli:ping").to_lowercase();
    let listed = hatchet.eventually(
        "the pushed event",
        &["events", "list", "--key", &stored_key, "--since", "1h"],
        |rows| (rows.as_array()?.len() == 1).then(|| rows[0].clone()),
    );
    assert_eq!(listed["metadata"]["id"], pushed.as_str(), "{listed}");
    assert_eq!(listed["key"], stored_key.as_str(), "{listed}");
    let event = hatchet.json(&["events", "get", &pushed]);
    assert_eq!(event["payload"], json!({"n": 1}), "{event}");
    assert_eq!(event["additionalMetadata"]["batch"], tag.as_str(), "{event}");
    let r = hatchet.run(&["events", "get", "00000000-0000-0000-0000-000000000007"]);
    assert_eq!(r.code, 3, "an unknown event is not found: {}", r.stderr);

    // Queue depths: a run no worker takes waits in its task's queue; once cancelled, it is
    // counted among the cancelled task runs.
    let worker = start(
        Worker::builder(client.clone(), unique("cq"))
            .workflow(napper(WORKFLOW, LINES))
            .build()
            .expect("worker"),
    )
    .await;
    worker.stop().await;
    let cancelled_before = tasks_in(&hatchet, "CANCELLED");
    let waiting = hatchet.json(&["trigger", WORKFLOW, "--input", r#"{"ms": 1}"#]);
    let waiting_id = waiting["run"]["metadata"]["id"].as_str().expect("run id").to_owned();
    let queue = format!("{namespace}_{WORKFLOW}:nap").to_lowercase();
    let depth = hatchet.eventually("the waiting run in its queue", &["metrics", "queues"], |d| {
        d["queues"][queue.as_str()].as_i64().filter(|n| *n > 0)
    });
    assert_eq!(depth, 1, "one run waits in {queue}");
    let table = hatchet.run(&["metrics", "queues"]);
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.starts_with(queue.as_str()) && l.ends_with(" 1")),
        "{queue} with depth 1 in:\n{}",
        table.stdout
    );
    assert_eq!(hatchet.json(&["runs", "cancel", &waiting_id])["runs"], 1);
    hatchet.until_status(&waiting_id, "CANCELLED");
    wait_for(
        "the cancelled run counted",
        Duration::from_secs(30),
        POLL,
        || match tasks_in(&hatchet, "CANCELLED") {
            n if n > cancelled_before => Ok(()),
            n => Err(format!("{n} cancelled, as before")),
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));

    // Rate limits: put by a client, listed with their limit, deleted by the CLI.
    let key = unique("cli-limit");
    client
        .put_rate_limit(&key, 7, hatchet_worker::RateLimitWindow::Minute)
        .await
        .expect("put rate limit");
    let limits = hatchet.json(&["rate-limits", "list", "--search", &key]);
    let limits = limits.as_array().expect("an array");
    assert_eq!(limits.len(), 1, "{limits:?}");
    assert_eq!(limits[0]["key"], key.as_str());
    assert_eq!(limits[0]["limitValue"], 7);
    let table = hatchet.run(&["rate-limits", "list", "--search", &key]);
    assert!(
        table.stdout.lines().any(|l| l.starts_with(key.as_str())),
        "{}",
        table.stdout
    );
    hatchet.ok(&["rate-limits", "delete", &key]);
    assert_eq!(hatchet.json(&["rate-limits", "list", "--search", &key]), json!([]));
}
