//! The daemons `tests/env` starts keep none of their caller's open descriptors: a lock held by
//! whoever restarted a component (`flock some.lock tests/env/ctl restart ...`) is free again
//! when that command ends.

use std::path::Path;
use std::process::Command;

use hatchet_e2e::{Scratch, run};

#[test]
fn a_restarted_daemon_does_not_keep_the_callers_lock() {
    let lock = Scratch::new("hatchet-env-lock");
    std::fs::write(&lock.path, b"").unwrap();
    let ctl = Path::new(env!("CARGO_MANIFEST_DIR")).join("../env/ctl");
    run(Command::new("flock")
        .arg(&lock.path)
        .arg(&ctl)
        .args(["restart", "kwok"]))
    .expect("restart kwok under a lock");
    let free = Command::new("flock")
        .args(["-n", "-E", "99"])
        .arg(&lock.path)
        .arg("true")
        .status()
        .expect("run flock");
    assert_eq!(free.code(), Some(0), "the restarted kwok still holds the caller's lock");

    // And its descriptors are its own: no open file is the lock.
    let pid_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../env/.run/pids/kwok.pid");
    let pid = std::fs::read_to_string(pid_file).expect("kwok's pid file");
    let pid = pid.split_whitespace().next().unwrap();
    let lock_path = std::fs::canonicalize(&lock.path).unwrap();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("kwok's descriptors")
        .flatten()
    {
        let target = std::fs::read_link(fd.path()).unwrap_or_default();
        assert_ne!(target, lock_path, "kwok has the lock open as fd {:?}", fd.file_name());
    }
}
