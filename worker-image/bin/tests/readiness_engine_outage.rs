//! `/readyz` follows the engine: 503 within one heartbeat interval of the engine going away,
//! 200 again once it is back; a worker started during the outage waits for the engine. In its own test binary because it stops the shared engine.

#[allow(dead_code)] // shared with drain.rs; this test uses only part of it
mod support;

use std::time::Duration;

use hatchet_e2e::World;
use hatchet_e2e::hatchet::{EngineBack, engine_ctl, unique};
use hatchet_worker::runtime::listener::HEARTBEAT_INTERVAL;
use support::{spawn_worker, spawn_worker_unready};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_engine() {
    let world = World::load().unwrap();
    let w = spawn_worker(&world, &unique("ready"), 5, &[]).await;

    let _engine_back = EngineBack;
    tokio::task::spawn_blocking(|| engine_ctl("stop")).await.unwrap();
    let unready_after = w.wait_status(503, Duration::from_secs(30)).await;
    let (_, body) = w.get("/readyz").await;
    eprintln!("engine stopped: /readyz 503 after {unready_after:?} ({body})");
    let (_, health) = w.get("/health").await;
    assert_eq!(health["status"], "UNHEALTHY");
    let (live, _) = w.get("/livez").await;
    assert_eq!(live, 200, "an engine outage does not make the worker dead");

    tokio::task::spawn_blocking(|| engine_ctl("start")).await.unwrap();
    let ready_after = w.wait_status(200, Duration::from_secs(90)).await;
    eprintln!("engine back: /readyz 200 after {ready_after:?}");
    assert!(
        unready_after <= HEARTBEAT_INTERVAL,
        "readiness took {unready_after:?} to drop, more than one heartbeat interval"
    );
    w.signal("TERM");
    assert_eq!(w.wait_exit(Duration::from_secs(30)).await.code(), Some(0));

    // A worker started while the engine is down waits for it (alive, unready, saying why)
    // instead of exiting, and becomes ready once the engine is back.
    tokio::task::spawn_blocking(|| engine_ctl("stop")).await.unwrap();
    let mut w = spawn_worker_unready(&world, &unique("early"), 5);
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(
        w.child.try_wait().unwrap().is_none(),
        "the worker exited while the engine was down"
    );
    let (code, body) = w.get("/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("waiting for the engine")),
        "{body}"
    );
    let (live, body) = w.get("/livez").await;
    assert_eq!(live, 200, "waiting for the engine is not being dead: {body}");
    tokio::task::spawn_blocking(|| engine_ctl("start")).await.unwrap();
    let ready_after = w.wait_status(200, Duration::from_secs(90)).await;
    eprintln!("engine back: the early worker was ready {ready_after:?} later");
    w.signal("TERM");
    assert_eq!(w.wait_exit(Duration::from_secs(30)).await.code(), Some(0));
}
