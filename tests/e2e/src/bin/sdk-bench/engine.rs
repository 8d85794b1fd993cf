//! The engine's own record, read from its Postgres database with `psql`: when each task was
//! created (`v1_tasks_olap.inserted_at`), assigned by the scheduler and sent by the
//! dispatcher (OLAP events stamped by the engine), started and finished (OLAP events carrying
//! the timestamp the worker put in its STARTED / COMPLETED event), and when the engine's
//! task controller recorded the completion (`v1_task_event.inserted_at`); and when a worker
//! registered (`"Worker"."createdAt"`). All clocks are this machine's.

use std::process::Command;

use anyhow::{Context as _, bail};

/// The engine's database and the tenant the bench works in.
pub(crate) struct Db {
    url: String,
    tenant: String,
}

/// One task as the engine recorded it; seconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TaskTimes {
    pub(crate) created: f64,
    pub(crate) assigned: Option<f64>,
    pub(crate) sent: Option<f64>,
    /// Stamped by the worker (its STARTED event's timestamp).
    pub(crate) started: Option<f64>,
    /// Stamped by the worker (its COMPLETED event's timestamp).
    pub(crate) finished: Option<f64>,
    /// Stamped by the engine when it processed the completion.
    pub(crate) completed: Option<f64>,
}

/// How far a set of tasks has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    pub(crate) tasks: usize,
    pub(crate) done: usize,
    /// Shown as RUNNING in the engine's run list (`v1_tasks_olap.readable_status`).
    pub(crate) running: usize,
    /// Holding a worker slot in the engine's scheduler (rows of `v1_task_runtime`).
    pub(crate) held: usize,
}

/// Only names the bench makes itself go into SQL text.
fn checked(name: &str) -> anyhow::Result<&str> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("unexpected name {name:?}");
    }
    Ok(name)
}

fn opt(field: &str) -> anyhow::Result<Option<f64>> {
    if field.is_empty() {
        return Ok(None);
    }
    Ok(Some(field.parse().with_context(|| format!("not a number: {field:?}"))?))
}

/// Rows of the timing query: created, assigned, sent, started, finished, completed.
pub(crate) fn parse_timings(rows: &[Vec<String>]) -> anyhow::Result<Vec<TaskTimes>> {
    rows.iter()
        .map(|r| {
            let [c, a, s, st, f, done] = r.as_slice() else {
                bail!("expected 6 columns, got {r:?}");
            };
            Ok(TaskTimes {
                created: c.parse().with_context(|| format!("created {c:?}"))?,
                assigned: opt(a)?,
                sent: opt(s)?,
                started: opt(st)?,
                finished: opt(f)?,
                completed: opt(done)?,
            })
        })
        .collect()
}

impl Db {
    pub(crate) fn new(url: String, tenant: String) -> anyhow::Result<Self> {
        checked(&tenant)?;
        Ok(Self { url, tenant })
    }

    /// Rows of `sql`, fields split (unaligned, tuples only).
    fn query(&self, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
        let out = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-F",
                "\x1f",
                "-d",
                &self.url,
                "-c",
                sql,
            ])
            .output()
            .context("running psql (Debian package postgresql-client)")?;
        if !out.status.success() {
            bail!("psql failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8(out.stdout)?
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split('\x1f').map(str::to_owned).collect())
            .collect())
    }

    fn tasks_of(&self, workflow: &str, since: f64) -> anyhow::Result<String> {
        Ok(format!(
            "t.tenant_id = '{tenant}' and t.inserted_at >= to_timestamp({since}) and t.workflow_id = \
             (select id from \"Workflow\" where \"tenantId\" = '{tenant}' and name = '{wf}' and \"deletedAt\" is null)",
            tenant = self.tenant,
            wf = checked(workflow)?,
        ))
    }

    /// Tasks of `workflow` created since `since`: how many, done, RUNNING, holding a slot.
    pub(crate) fn progress(&self, workflow: &str, since: f64) -> anyhow::Result<Progress> {
        let tasks = self.tasks_of(workflow, since)?;
        let rows = self.query(&format!(
            "select count(*), count(*) filter (where t.readable_status in ('COMPLETED', 'FAILED', 'CANCELLED')), \
             count(*) filter (where t.readable_status = 'RUNNING'), \
             (select count(*) from v1_task_runtime r join v1_task t \
               on t.id = r.task_id and t.inserted_at = r.task_inserted_at where {tasks}) \
             from v1_tasks_olap t where {tasks}"
        ))?;
        let r = rows.first().context("no row")?;
        let n = |i: usize| -> anyhow::Result<usize> { Ok(r.get(i).context("short row")?.parse()?) };
        Ok(Progress {
            tasks: n(0)?,
            done: n(1)?,
            running: n(2)?,
            held: n(3)?,
        })
    }

    /// The engine's timestamps of every task of `workflow` created since `since`.
    pub(crate) fn timings(&self, workflow: &str, since: f64) -> anyhow::Result<Vec<TaskTimes>> {
        let ev =
            |kind: &str| format!("extract(epoch from min(e.event_timestamp) filter (where e.event_type = '{kind}'))");
        let rows = self.query(&format!(
            "select extract(epoch from t.inserted_at), {}, {}, {}, {}, \
             (select extract(epoch from min(c.inserted_at)) from v1_task_event c \
              where c.task_id = t.id and c.task_inserted_at = t.inserted_at and c.event_type = 'COMPLETED') \
             from v1_tasks_olap t left join v1_task_events_olap e \
               on e.task_id = t.id and e.task_inserted_at = t.inserted_at \
             where {} group by t.id, t.inserted_at",
            ev("ASSIGNED"),
            ev("SENT_TO_WORKER"),
            ev("STARTED"),
            ev("FINISHED"),
            self.tasks_of(workflow, since)?
        ))?;
        parse_timings(&rows)
    }

    /// Whether `workflow` is registered (a run triggered before is accepted, then dropped).
    pub(crate) fn workflow_exists(&self, workflow: &str) -> anyhow::Result<bool> {
        let rows = self.query(&format!(
            "select 1 from \"Workflow\" where \"tenantId\" = '{}' and name = '{}' and \"deletedAt\" is null",
            self.tenant,
            checked(workflow)?
        ))?;
        Ok(!rows.is_empty())
    }

    /// The slots the worker named `name` registered, as the engine keeps them
    /// (`v1_worker_slot_config`): `type=units` pairs, e.g. `default=100`.
    pub(crate) fn slot_config(&self, name: &str) -> anyhow::Result<String> {
        let rows = self.query(&format!(
            "select c.slot_type || '=' || c.max_units from v1_worker_slot_config c join \"Worker\" w on w.id = c.worker_id \
             where w.\"tenantId\" = '{}' and w.name = '{}' order by 1",
            self.tenant,
            checked(name)?
        ))?;
        Ok(rows
            .iter()
            .filter_map(|r| r.first().cloned())
            .collect::<Vec<_>>()
            .join(","))
    }

    /// When the worker named `name` registered (the engine's clock), once it has.
    pub(crate) fn worker_registered(&self, name: &str) -> anyhow::Result<Option<f64>> {
        let rows = self.query(&format!(
            "select extract(epoch from min(\"createdAt\")) from \"Worker\" where \"tenantId\" = '{}' and name = '{}'",
            self.tenant,
            checked(name)?
        ))?;
        opt(rows.first().and_then(|r| r.first()).map_or("", String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fields: &[&str]) -> Vec<String> {
        fields.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn timing_rows_keep_missing_events_as_none() {
        let rows = [row(&["10.5", "10.6", "", "10.7", "10.9", "11"])];
        assert_eq!(
            parse_timings(&rows).unwrap(),
            vec![TaskTimes {
                created: 10.5,
                assigned: Some(10.6),
                sent: None,
                started: Some(10.7),
                finished: Some(10.9),
                completed: Some(11.0),
            }]
        );
        assert!(parse_timings(&[row(&["1", "2"])]).is_err());
        assert!(parse_timings(&[row(&["x", "", "", "", "", ""])]).is_err());
    }

    #[test]
    fn only_plain_names_reach_sql() {
        assert!(checked("bench-rust-noop_1").is_ok());
        assert!(checked("x'; drop table t; --").is_err());
        assert!(checked("").is_err());
    }
}
