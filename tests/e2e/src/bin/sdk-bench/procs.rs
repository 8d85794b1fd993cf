//! A worker's process tree as /proc shows it: CPU time (utime + stime, with reaped
//! children's) and memory (VmRSS, VmHWM) summed over the root and all its descendants.
//! The Python SDK runs its action listener in a child process, so the tree is what counts.

use std::collections::HashMap;

/// CPU time and memory of a process tree at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct TreeSample {
    /// utime + stime + cutime + cstime over the tree, in seconds.
    pub(crate) cpu_s: f64,
    /// Sum of VmRSS, KiB.
    pub(crate) rss_kib: u64,
    /// Sum of VmHWM (each process's own peak), KiB.
    pub(crate) hwm_kib: u64,
    /// Processes in the tree.
    pub(crate) processes: usize,
}

/// From /proc/<pid>/stat: the parent pid and the CPU ticks of the process and of its reaped
/// children. The command name may hold spaces and parentheses, so fields count from the
/// last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<(u32, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    let ppid = f.get(1)?.parse().ok()?;
    let ticks = f
        .get(11..15)?
        .iter()
        .map(|v| v.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    Some((ppid, ticks))
}

/// From /proc/<pid>/stat: the command name and the start time (clock ticks since boot).
pub(crate) fn parse_name_and_start(text: &str) -> Option<(&str, u64)> {
    let (open, close) = (text.find('(')?, text.rfind(')')?);
    let f: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // After the name: state(0) ... starttime(19).
    Some((text.get(open + 1..close)?, f.get(19)?.parse().ok()?))
}

/// The running engine (`hatchet-lite`): its pid and start time, to tell whether it was
/// restarted while a worker was being measured (other tests on this machine restart it).
pub(crate) fn engine_process() -> Option<(u32, u64)> {
    let dir = std::fs::read_dir("/proc").ok()?;
    dir.flatten().find_map(|entry| {
        let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (name, start) = parse_name_and_start(&stat)?;
        (name == "hatchet-lite").then_some((pid, start))
    })
}

/// The 1-minute load average of the machine.
pub(crate) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A `Field:   123 kB` line of /proc/<pid>/status, in KiB.
pub(crate) fn parse_status_kib(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// `root` and every descendant, given each process's parent.
pub(crate) fn descendants(root: u32, parents: &HashMap<u32, u32>) -> Vec<u32> {
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        let mut kids: Vec<u32> = parents.iter().filter(|&(_, &pp)| pp == p).map(|(&c, _)| c).collect();
        kids.sort_unstable();
        tree.extend(kids);
        i += 1;
    }
    tree
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux when it cannot be asked).
pub(crate) fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Every process's parent and CPU ticks, as /proc shows them now.
fn processes() -> (HashMap<u32, u32>, HashMap<u32, u64>) {
    let (mut parents, mut ticks) = (HashMap::new(), HashMap::new());
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some((ppid, t)) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .as_deref()
                .and_then(parse_stat)
            {
                parents.insert(pid, ppid);
                ticks.insert(pid, t);
            }
        }
    }
    (parents, ticks)
}

/// `root` and its descendants now.
pub(crate) fn tree(root: u32) -> Vec<u32> {
    descendants(root, &processes().0)
}

/// Samples the tree under `root` now.
pub(crate) fn sample(root: u32, ticks_per_s: f64) -> TreeSample {
    let (parents, ticks) = processes();
    let mut s = TreeSample::default();
    for pid in descendants(root, &parents) {
        let Some(t) = ticks.get(&pid) else { continue };
        s.cpu_s += *t as f64 / ticks_per_s;
        s.processes += 1;
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            s.rss_kib += parse_status_kib(&status, "VmRSS").unwrap_or(0);
            s.hwm_kib += parse_status_kib(&status, "VmHWM").unwrap_or(0);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_last_parenthesis() {
        let line = "4242 (python3 (x) y) S 7 4242 4242 0 -1 4194560 1 2 3 4 150 25 3 2 20 0 1 0";
        assert_eq!(parse_stat(line), Some((7, 180)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn name_and_start_time() {
        let line = "42 (hatchet-lite) S 1 42 42 0 -1 4194560 1 2 3 4 150 25 3 2 20 0 12 0 98765 1000 50";
        assert_eq!(parse_name_and_start(line), Some(("hatchet-lite", 98765)));
        assert_eq!(parse_name_and_start("42 (x) S 1"), None);
    }

    #[test]
    fn status_lines_in_kib() {
        let s = "Name:\tx\nVmHWM:\t   2048 kB\nVmRSS:\t   1024 kB\n";
        assert_eq!(parse_status_kib(s, "VmRSS"), Some(1024));
        assert_eq!(parse_status_kib(s, "VmHWM"), Some(2048));
        assert_eq!(parse_status_kib(s, "VmSwap"), None);
    }

    #[test]
    fn the_tree_holds_children_and_grandchildren_only() {
        let parents: HashMap<u32, u32> = [(2, 1), (3, 2), (4, 2), (5, 9), (6, 3)].into();
        assert_eq!(descendants(2, &parents), vec![2, 3, 4, 6]);
        assert_eq!(descendants(5, &parents), vec![5]);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let s = sample(std::process::id(), clock_ticks());
        assert!(s.processes >= 1 && s.rss_kib > 0 && s.hwm_kib >= s.rss_kib);
    }
}
