//! The load generator and live view of `./demo`, run once the operator and an autoscaled
//! HatchetWorker are in place: bursts of `fleet-sleep` runs through the engine, the fleet
//! redrawn every second while it scales out, idles and scales in, then what was measured.
//!
//! Usage: `fleet-demo NAMESPACE FLEET HATCHET_NAMESPACE` (the HatchetWorker and the Hatchet
//! namespace its workers register in). Exits non-zero when a run failed, ran twice or was lost.

mod measure;
mod observe;
mod runs;
mod view;

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hatchet_e2e::World;
use hatchet_e2e::hatchet::client_in;
use hatchet_e2e::kube::Kube;
use measure::Marks;
use observe::Fleet;
use runs::Runs;

/// The load: a big burst, then a smaller one once the fleet is back at its minimum.
const BURSTS: [Burst; 2] = [Burst { runs: 48, ms: 3000 }, Burst { runs: 24, ms: 3000 }];
/// How long a burst's runs may take, and how long the fleet may take to settle after it.
const BURST_LIMIT: Duration = Duration::from_secs(180);
const SETTLE_LIMIT: Duration = Duration::from_secs(120);
const TICK: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Burst {
    runs: usize,
    ms: u64,
}

struct Demo {
    world: World,
    kube: Kube,
    ns: String,
    fleet: String,
    min: i64,
    start: Instant,
    samples: Vec<Fleet>,
    runs: Runs,
    live: bool,
    last_line: Instant,
}

impl Demo {
    /// Looks at the fleet and the runs once and redraws the view.
    async fn tick(&mut self, client: &hatchet_worker::Client, phase: &str) -> Fleet {
        let at = self.start.elapsed();
        let fleet = observe::fleet(&self.world, &self.kube, &self.ns, &self.fleet, at);
        self.runs.poll(client).await;
        self.samples.push(fleet.clone());
        let counts = self.runs.counts(None);
        if self.live {
            let decisions = measure::decisions(&self.samples);
            let title = format!("hatchet-operator demo: hw/{} in {}", self.fleet, self.ns);
            print!(
                "\x1b[H\x1b[2J{}",
                view::render(&title, phase, &fleet, counts, &decisions)
            );
            let _ = std::io::stdout().flush();
        } else if self.last_line.elapsed() >= Duration::from_secs(3) {
            println!("{}", view::line(phase, &fleet, counts));
            self.last_line = Instant::now();
        }
        fleet
    }

    /// At its minimum: as many Ready pods as the minimum, none draining, no more desired.
    fn settled(&self, f: &Fleet) -> bool {
        f.desired == Some(self.min) && f.pods.len() as i64 == self.min && f.ready_pods() as i64 == self.min
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [ns, fleet, hatchet_ns] = args.as_slice() else {
        eprintln!("usage: fleet-demo NAMESPACE FLEET HATCHET_NAMESPACE");
        return ExitCode::from(2);
    };
    let world = match World::load() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let kube = match Kube::admin(&world) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let min = kube
        .namespaced::<observe::HatchetWorker>(ns)
        .get(fleet)
        .ok()
        .and_then(|hw| hw.spec.autoscaling)
        .map_or(1, |a| a.min_replicas);
    let client = client_in(&world, hatchet_ns);
    let mut demo = Demo {
        world,
        kube,
        ns: ns.clone(),
        fleet: fleet.clone(),
        min,
        start: Instant::now(),
        samples: Vec::new(),
        runs: Runs::default(),
        live: std::io::stdout().is_terminal(),
        last_line: Instant::now(),
    };
    let mut marks = Vec::new();
    for (i, burst) in BURSTS.iter().enumerate() {
        let phase = format!(
            "burst {} of {}: {} runs of {:.1} s",
            i + 1,
            BURSTS.len(),
            burst.runs,
            burst.ms as f64 / 1000.0
        );
        // The fleet as the burst finds it: what the burst's figures are measured against.
        demo.tick(&client, &phase).await;
        let mut mark = Marks {
            start: demo.start.elapsed(),
            done: None,
            settled: None,
        };
        if let Err(e) = demo.runs.trigger(&client, i, burst.runs, burst.ms).await {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
        let limit = Instant::now() + BURST_LIMIT;
        while Instant::now() < limit {
            demo.tick(&client, &phase).await;
            if demo.runs.counts(Some(i)).pending == 0 {
                mark.done = Some(demo.start.elapsed());
                break;
            }
            tokio::time::sleep(TICK).await;
        }
        let phase = format!("burst {} done: idle, the fleet scales in", i + 1);
        let limit = Instant::now() + SETTLE_LIMIT;
        while mark.done.is_some() && Instant::now() < limit {
            let f = demo.tick(&client, &phase).await;
            if demo.settled(&f) {
                mark.settled = Some(f.at);
                break;
            }
            tokio::time::sleep(TICK).await;
        }
        marks.push(mark);
    }
    summary(&demo, &marks)
}

/// Prints what was measured; fails when a run did not complete exactly once.
fn summary(demo: &Demo, marks: &[Marks]) -> ExitCode {
    let secs = |d: Option<Duration>| d.map_or("never".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()));
    println!();
    println!("==> what the demo measured (fleet minimum {} pod(s))", demo.min);
    for (i, (burst, mark)) in BURSTS.iter().zip(marks).enumerate() {
        let f = measure::figures(&demo.samples, mark);
        let c = demo.runs.counts(Some(i));
        println!(
            "    burst {}: {} runs of {:.1} s: {} completed, {} failed; scale-out decided after {}, \
             more pods Ready after {}, peak {} pods (desired {}); all done after {}; back to the minimum {} later",
            i + 1,
            burst.runs,
            burst.ms as f64 / 1000.0,
            c.completed,
            c.failed,
            secs(f.scale_out),
            secs(f.pods_ready),
            f.peak_ready,
            f.peak_desired,
            secs(f.done),
            secs(f.scale_in),
        );
    }
    println!("    autoscaler decisions:");
    for (at, from, to, reason) in measure::decisions(&demo.samples) {
        println!("      t={:>5.1}s  {from} → {to}   {reason}", at.as_secs_f64());
    }
    let all = demo.runs.counts(None);
    let per_worker: Vec<String> = demo.runs.per_worker().iter().map(|(w, n)| format!("{w} {n}")).collect();
    println!("    runs per pod: {}", per_worker.join(", "));
    println!(
        "    runs: {} triggered, {} completed, {} failed, {} lost (never finished), {} ran more than once",
        all.triggered, all.completed, all.failed, all.pending, all.retried
    );
    for e in demo.runs.failures() {
        println!("      failure: {e}");
    }
    if all.completed == all.triggered && all.retried == 0 {
        println!("    every run completed, each exactly once");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
