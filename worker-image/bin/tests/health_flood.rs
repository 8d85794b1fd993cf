//! The health server under a bounded flood on loopback: a thousand idle connections and three
//! hundred that trickle an endless header. Probes still answer, memory stays small, and the
//! server sheds what it cannot serve (a connection past its cap closes the oldest, the rest
//! close once their header read times out). Prints what it measured.

#[allow(dead_code)] // shared with the other process tests; this one uses only part of it
mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hatchet_e2e::World;
use hatchet_e2e::hatchet::unique;
use support::spawn_worker;

const IDLE: usize = 1000;
const SLOW: usize = 300;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `GET path` on a fresh connection; the status code, or why there was none.
fn probe(port: u16, path: &str) -> Result<u16, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).map_err(|e| e.to_string())?;
    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
    head.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or(format!("no status line: {head:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_answer_and_memory_stays_small_under_a_connection_flood() {
    let world = World::load().unwrap();
    let w = spawn_worker(&world, &unique("flood"), 5, &[]).await;
    let (port, pid) = (w.port, w.child.id());
    let before = rss_kib(pid);

    let flood = tokio::task::spawn_blocking(move || {
        let mut held = Vec::new();
        for _ in 0..IDLE {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                held.push(s);
            }
        }
        let pad = vec![b'a'; 100 * 1024];
        for _ in 0..SLOW {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Pad: ");
                let _ = s.write_all(&pad);
                held.push(s);
            }
        }
        held
    });
    let held = flood.await.unwrap();
    let opened = held.len();
    let during = rss_kib(pid);

    // A probe gets through at once: a new connection past the cap closes the oldest.
    let started = Instant::now();
    let answered = (
        probe(port, "/livez").expect("/livez during the flood"),
        started.elapsed(),
    );
    assert_eq!(answered.0, 200, "/livez during the flood");

    // Every held connection is closed by the server within its header timeout (plus slack).
    tokio::time::sleep(Duration::from_secs(7)).await;
    let mut still_open = 0;
    for mut s in held {
        s.set_read_timeout(Some(Duration::from_millis(20))).ok();
        let mut b = [0u8; 256];
        match s.read(&mut b) {
            Ok(0) => {}
            Ok(_) => {
                // An error answer (431, 408) then the close.
                if !matches!(s.read(&mut b), Ok(0) | Err(_)) {
                    still_open += 1;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                still_open += 1
            }
            Err(_) => {}
        }
    }
    let after = rss_kib(pid);
    eprintln!(
        "flood of {opened} connections ({IDLE} idle, {SLOW} trickling 100 KiB headers): /livez 200 after {:?}; \
         RSS {before} KiB before, {during} KiB during, {after} KiB after; {still_open} still open after 7 s",
        answered.1
    );
    assert_eq!(still_open, 0, "connections the server should have closed");
    assert!(
        during < before + 64 * 1024,
        "RSS grew from {before} KiB to {during} KiB"
    );
    assert_eq!(probe(port, "/readyz").unwrap(), 200, "still ready");
    w.signal("TERM");
    assert_eq!(w.wait_exit(Duration::from_secs(30)).await.code(), Some(0));
}
