//! Inputs near the engine's 4 MiB message limit. `trigger` refuses one the engine would accept
//! but could never deliver (its assignment would be larger than the limit), says why, and
//! sends nothing; the largest input it accepts runs. One that slips through anyway (a client
//! configured with a larger send limit) makes the engine end the worker's stream each time
//! it tries to deliver it: the worker reopens at once, stays ready, and the runs around it
//! all complete. Prints what it measured.

#[allow(dead_code)] // shared with the other process tests; this one uses only part of it
mod support;

use std::time::{Duration, Instant};

use hatchet_e2e::World;
use hatchet_e2e::hatchet::{client_in, config_in, rest_json, unique};
use hatchet_worker::payload::check_deliverable;
use hatchet_worker::{Client, Error, TriggerOptions};
use serde_json::{Value, json};
use support::spawn_worker;
use tokio::time::timeout;

const LIMIT: usize = 4 * 1024 * 1024;

fn padded(pad: usize) -> Value {
    json!({"ms": 0, "pad": "x".repeat(pad)})
}

/// The longest pad `trigger` accepts under the default limit (the same check it runs).
fn largest_accepted_pad() -> usize {
    let fits = |pad: usize| check_deliverable(&serde_json::to_vec(&padded(pad)).unwrap(), 1, b"{}", LIMIT).is_ok();
    let (mut lo, mut hi) = (0, LIMIT);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if fits(mid) { lo = mid } else { hi = mid }
    }
    lo
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn undeliverable_inputs_are_refused_and_one_that_slips_through_breaks_nothing() {
    let world = World::load().unwrap();
    let ns = unique("big");
    let w = spawn_worker(&world, &ns, 8, &[]).await;
    let client = client_in(&world, &ns);

    // Refused before anything is sent, naming the sizes and the limit.
    let started = Instant::now();
    let e = client
        .trigger("fleet-sleep", &padded(LIMIT - 1024), TriggerOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Payload(_)), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("4194304-byte") && msg.contains("fleet-sleep") && msg.contains("could never start"),
        "{msg}"
    );
    let refused_in = started.elapsed();

    // The largest accepted input reaches the worker and completes.
    let pad = largest_accepted_pad();
    let out = timeout(
        Duration::from_secs(60),
        client.run("fleet-sleep", &padded(pad), TriggerOptions::default()),
    )
    .await
    .expect("the largest accepted input runs")
    .unwrap_or_else(|e| panic!("a {pad}-byte pad was accepted, so it must run: {e}"));
    assert_eq!(out["sleep"]["attempt"], 1);

    // A client told the engine takes 8 MiB sends an input the engine accepts (< 4 MiB) but
    // cannot deliver, among ordinary runs, while /readyz is sampled.
    let mut cfg = config_in(&world, &ns);
    cfg.grpc_max_send_message_bytes = 2 * LIMIT;
    let careless = Client::new(cfg).unwrap();
    let sampler = {
        let url = w.url("/readyz");
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut ok, mut not_ready) = (0u32, Vec::new());
            let until = Instant::now() + Duration::from_secs(25);
            while Instant::now() < until {
                match http.get(&url).timeout(Duration::from_secs(2)).send().await {
                    Ok(r) if r.status() == 200 => ok += 1,
                    Ok(r) => not_ready.push(r.text().await.unwrap_or_default()),
                    Err(e) => not_ready.push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (ok, not_ready)
        })
    };
    let started = Instant::now();
    let big = careless
        .trigger("fleet-echo", &padded(LIMIT - 256), TriggerOptions::default())
        .await
        .expect("the engine accepts an input under its receive limit");
    let mut small = Vec::new();
    for i in 0..30 {
        small.push(
            client
                .trigger("fleet-sleep", &json!({"ms": 300}), TriggerOptions::default())
                .await
                .unwrap(),
        );
        if i % 3 == 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    for r in &small {
        let out = timeout(Duration::from_secs(90), client.wait_for_run(&r.id))
            .await
            .expect("an ordinary run finishes")
            .unwrap_or_else(|e| panic!("ordinary run {} must complete: {e}", r.id));
        assert!(out["sleep"]["attempt"].as_u64().is_some(), "{out:?}");
    }
    let (ok, not_ready) = sampler.await.unwrap();
    // Read over REST: the gRPC run details carry the input, and would be over the limit themselves.
    let big_status = timeout(Duration::from_secs(180), async {
        loop {
            let d = rest_json(&client, &format!("/api/v1/stable/workflow-runs/{}", big.id))
                .await
                .unwrap();
            match d["run"]["status"].as_str() {
                Some(s @ ("FAILED" | "COMPLETED" | "CANCELLED")) => {
                    break (s.to_owned(), d["tasks"][0]["errorMessage"].as_str().map(str::to_owned));
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    })
    .await
    .expect("the engine gives up on the undeliverable run");
    let gave_up_after = started.elapsed();
    let (_, status) = w.get("/status").await;
    eprintln!(
        "refused in {refused_in:?}; largest accepted pad {pad} bytes ran; undeliverable run ended {} after {gave_up_after:?} ({:?}); \
         /readyz {ok} x 200, {} x not ready; worker reconnects {}",
        big_status.0,
        big_status.1,
        not_ready.len(),
        status["connection"]["reconnects"]
    );
    assert_eq!(big_status.0, "FAILED", "{big_status:?}");
    assert!(not_ready.is_empty(), "/readyz answered not ready: {not_ready:?}");
    w.signal("TERM");
    assert_eq!(
        w.wait_exit(Duration::from_secs(30)).await.code(),
        Some(0),
        "the worker kept running"
    );
}
