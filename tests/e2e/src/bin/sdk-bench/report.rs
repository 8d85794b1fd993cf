//! The figures of every worker as table rows, and the legend saying where each comes from.

use crate::phase::Phase;
use crate::run::{Figures, Plan};
use crate::table::Row;

/// Where the figures come from, by the tag in the table's source column.
pub(crate) const LEGEND: &str = "\
sources (all clocks are this machine's):
  E-created   v1_tasks_olap.inserted_at: the engine creating the task (trigger accepted)
  E-assigned  OLAP ASSIGNED event: the engine's scheduler giving the task a worker slot
  W-started   OLAP STARTED event: the timestamp the worker put in its STARTED event
  W-finished  OLAP FINISHED event: the timestamp the worker put in its COMPLETED event
  E-done      v1_task_event COMPLETED inserted_at: the engine's task controller recording the result
  E-list      v1_tasks_olap.readable_status = RUNNING (the engine's run list), polled 4 times a second
  E-slots     v1_task_runtime rows (tasks holding a worker slot in the engine's scheduler), polled
  E-worker    \"Worker\".\"createdAt\": the engine registering the worker (what its REST worker list shows)
  P-cpu       /proc/<pid>/stat utime+stime+cutime+cstime, summed over the worker's process tree
  P-mem       /proc/<pid>/status VmRSS (and VmHWM), summed over the worker's process tree
  spawn       this bench's wall clock when it started the worker process";

fn ms(v: Option<f64>) -> Option<f64> {
    v.map(|s| s * 1000.0)
}

fn mib(kib: u64) -> Option<f64> {
    (kib > 0).then(|| kib as f64 / 1024.0)
}

fn per_1000(cpu_s: f64, tasks: usize) -> Option<f64> {
    (tasks > 0).then(|| cpu_s * 1000.0 / tasks as f64)
}

/// One row from every worker's figures.
fn row(
    all: &[Figures],
    label: String,
    decimals: usize,
    source: &'static str,
    f: impl Fn(&Figures) -> Option<f64>,
) -> Row {
    Row::new(label, decimals, source, all.iter().map(f).collect())
}

/// A figure every phase has: its label, decimals, source and how to read it.
type PhaseRow = (&'static str, usize, &'static str, fn(&Phase) -> Option<f64>);

const PHASE_ROWS: [PhaseRow; 8] = [
    ("created→started p50 (ms)", 1, "E-created→W-started", |p| {
        ms(p.to_started.p50)
    }),
    ("created→started p99 (ms)", 1, "E-created→W-started", |p| {
        ms(p.to_started.p99)
    }),
    ("created→finished p50 (ms)", 1, "E-created→W-finished", |p| {
        ms(p.to_finished.p50)
    }),
    ("created→done in engine p50 (ms)", 1, "E-created→E-done", |p| {
        ms(p.to_completed.p50)
    }),
    ("most tasks assigned at once", 0, "E-assigned→E-done overlap", |p| {
        Some(p.max_assigned as f64)
    }),
    ("most tasks running at once", 0, "W-started→W-finished overlap", |p| {
        Some(p.max_running as f64)
    }),
    ("most shown RUNNING by the engine", 0, "E-list, polled", |p| {
        Some(p.shown_running as f64)
    }),
    ("most holding a slot in the engine", 0, "E-slots, polled", |p| {
        Some(p.held as f64)
    }),
];

fn latency_rows(all: &[Figures], name: &str, phase: impl Fn(&Figures) -> &Phase + Copy, rows: &mut Vec<Row>) {
    for (what, decimals, source, read) in PHASE_ROWS {
        rows.push(row(all, format!("{name}: {what}"), decimals, source, |f| {
            read(phase(f))
        }));
    }
}

pub(crate) fn rows(plan: &Plan, all: &[Figures]) -> Vec<Row> {
    let mut rows = vec![
        row(all, "start → registered (s)".into(), 3, "spawn→E-worker", |f| {
            f.to_registered
        }),
        row(
            all,
            "start → first task assigned (s)".into(),
            3,
            "spawn→E-assigned",
            |f| f.to_first_assigned,
        ),
        row(
            all,
            "start → first task started (s)".into(),
            3,
            "spawn→W-started",
            |f| f.to_first_started,
        ),
        row(
            all,
            format!("idle RSS ({} slots, MiB)", plan.slots),
            1,
            "P-mem VmRSS",
            |f| mib(f.idle.rss_kib),
        ),
        row(
            all,
            format!("burst of {} no-ops: throughput (runs/s)", plan.burst),
            1,
            "tasks / (last E-done − first E-created)",
            |f| f.burst.throughput,
        ),
        row(
            all,
            "burst: triggers took (s)".into(),
            2,
            "last − first E-created",
            |f| f.burst.created_span,
        ),
    ];
    latency_rows(all, "burst", |f| &f.burst, &mut rows);
    rows.push(row(all, "burst: CPU s per 1,000 tasks".into(), 3, "P-cpu", |f| {
        per_1000(f.burst_cpu_s, f.burst.tasks)
    }));
    let paced = format!("paced {}/s 10 ms", plan.paced_rate);
    latency_rows(all, &paced, |f| &f.paced, &mut rows);
    rows.push(row(all, format!("{paced}: CPU s per 1,000 tasks"), 3, "P-cpu", |f| {
        per_1000(f.paced_cpu_s, f.paced.tasks)
    }));
    let sl = format!("{} × 20 s sleeps on {} slots", plan.sleepers, plan.sleeper_slots);
    rows.extend([
        row(all, format!("{sl}: idle RSS before (MiB)"), 1, "P-mem VmRSS", |f| {
            mib(f.sleepers_idle.rss_kib)
        }),
        row(
            all,
            format!("{sl}: peak RSS (MiB)"),
            1,
            "P-mem VmRSS, max of 4 samples/s",
            |f| mib(f.peak_rss_kib),
        ),
        row(all, format!("{sl}: peak VmHWM (MiB)"), 1, "P-mem VmHWM", |f| {
            mib(f.peak_hwm_kib)
        }),
        row(
            all,
            format!("{sl}: most tasks running at once"),
            0,
            "W-started→W-finished overlap",
            |f| Some(f.sleepers.max_running as f64),
        ),
        row(
            all,
            format!("{sl}: most shown RUNNING by the engine"),
            0,
            "E-list, polled",
            |f| Some(f.sleepers.shown_running as f64),
        ),
        row(
            all,
            format!("{sl}: most holding a slot in the engine"),
            0,
            "E-slots, polled",
            |f| Some(f.sleepers.held as f64),
        ),
        row(
            all,
            format!("{sl}: created→started p50 (s)"),
            3,
            "E-created→W-started",
            |f| f.sleepers.to_started.p50,
        ),
        row(
            all,
            format!("{sl}: created→finished p50 (s)"),
            3,
            "E-created→W-finished",
            |f| f.sleepers.to_finished.p50,
        ),
        row(
            all,
            format!("{sl}: created→done in engine p50 (s)"),
            3,
            "E-created→E-done",
            |f| f.sleepers.to_completed.p50,
        ),
        row(
            all,
            format!("{sl}: created→done in engine p99 (s)"),
            3,
            "E-created→E-done",
            |f| f.sleepers.to_completed.p99,
        ),
        row(
            all,
            format!("{sl}: W-finished→E-done p50 (ms)"),
            1,
            "W-finished→E-done",
            |f| ms(f.sleepers.report_lag.p50),
        ),
        row(
            all,
            format!("{sl}: W-finished→E-done p99 (ms)"),
            1,
            "W-finished→E-done",
            |f| ms(f.sleepers.report_lag.p99),
        ),
    ]);
    rows
}

/// The machine's load around each measurement, and whether the engine was restarted during
/// it (then that worker's figures do not count).
pub(crate) fn conditions(columns: &[&str], all: &[Figures]) -> String {
    let la = |v: Option<f64>| v.map_or_else(|| "?".to_owned(), |v| format!("{v:.2}"));
    let lines: Vec<String> = columns
        .iter()
        .zip(all)
        .map(|(c, f)| {
            format!(
                "  {c}: load average {} → {}; registered slots {}{}",
                la(f.load.0),
                la(f.load.1),
                f.slot_configs.join(" then "),
                if f.engine_restarted {
                    "; ENGINE RESTARTED DURING IT: figures invalid"
                } else {
                    ""
                }
            )
        })
        .collect();
    format!(
        "conditions (1-minute load average at start and end, 2 cores; slots from v1_worker_slot_config):\n{}",
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_conversions() {
        assert_eq!(ms(Some(0.25)), Some(250.0));
        assert_eq!(mib(2048), Some(2.0));
        assert_eq!(mib(0), None, "no sample is no figure");
        assert_eq!(per_1000(0.5, 500), Some(1.0));
        assert_eq!(per_1000(0.5, 0), None);
    }

    #[test]
    fn conditions_flag_an_engine_restart() {
        let ok = Figures {
            load: (Some(1.0), Some(2.5)),
            slot_configs: vec!["default=100".into(), "default=1000".into()],
            ..Figures::default()
        };
        let bad = Figures {
            engine_restarted: true,
            ..Figures::default()
        };
        let text = conditions(&["a", "b"], &[ok, bad]);
        assert!(
            text.contains("a: load average 1.00 → 2.50; registered slots default=100 then default=1000\n"),
            "{text}"
        );
        assert!(
            text.ends_with("b: load average ? → ?; registered slots ; ENGINE RESTARTED DURING IT: figures invalid"),
            "{text}"
        );
    }

    #[test]
    fn one_value_per_worker_in_every_row() {
        let plan = Plan {
            slots: 100,
            burst: 10,
            paced_rate: 20.0,
            paced_count: 10,
            sleepers: 10,
            sleeper_slots: 10,
            in_flight: 4,
            settle: std::time::Duration::ZERO,
        };
        let all = vec![Figures::default(), Figures::default()];
        let rows = rows(&plan, &all);
        assert!(rows.len() > 20);
        assert!(rows.iter().all(|r| r.values.len() == 2));
    }
}
