//! The demo's figures, computed from the samples it took once a second: how fast each burst
//! scaled the fleet out, how far, and how long the fleet took to come back once idle.

use std::time::Duration;

use crate::observe::Fleet;

/// When a burst started and ended, and when the fleet was back at its minimum after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Marks {
    pub(crate) start: Duration,
    /// Every run of the burst finished.
    pub(crate) done: Option<Duration>,
    /// The fleet back at its minimum size, nothing terminating.
    pub(crate) settled: Option<Duration>,
}

/// What one burst did to the fleet, each time counted from the burst's start.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Figures {
    /// Until the autoscaler asked for more replicas than at the start.
    pub(crate) scale_out: Option<Duration>,
    /// Until more pods were Ready than at the start.
    pub(crate) pods_ready: Option<Duration>,
    pub(crate) peak_desired: i64,
    pub(crate) peak_ready: usize,
    /// Until every run of the burst finished.
    pub(crate) done: Option<Duration>,
    /// From the burst's end until the fleet was back at its minimum.
    pub(crate) scale_in: Option<Duration>,
}

/// The figures of the burst `marks` over `samples` (taken in time order).
pub(crate) fn figures(samples: &[Fleet], marks: &Marks) -> Figures {
    let before = samples.iter().rev().find(|s| s.at <= marks.start);
    let start_desired = before.and_then(|s| s.desired).unwrap_or(0);
    let start_ready = before.map_or(0, Fleet::ready_pods);
    let end = marks.settled.unwrap_or(Duration::MAX);
    let during: Vec<&Fleet> = samples.iter().filter(|s| s.at > marks.start && s.at <= end).collect();
    let first = |pred: &dyn Fn(&Fleet) -> bool| during.iter().find(|s| pred(s)).map(|s| s.at - marks.start);
    Figures {
        scale_out: first(&|s| s.desired.is_some_and(|d| d > start_desired)),
        pods_ready: first(&|s| s.ready_pods() > start_ready),
        peak_desired: during.iter().filter_map(|s| s.desired).max().unwrap_or(start_desired),
        peak_ready: during.iter().map(|s| s.ready_pods()).max().unwrap_or(start_ready),
        done: marks.done.map(|d| d - marks.start),
        scale_in: marks.done.zip(marks.settled).map(|(d, s)| s - d),
    }
}

/// Every change of the autoscaler's decision: when, from, to, and its reason (empty when a
/// later poll had already replaced the status' reason by the time of the sample).
pub(crate) fn decisions(samples: &[Fleet]) -> Vec<(Duration, i64, i64, &str)> {
    samples
        .windows(2)
        .filter_map(|w| match (w[0].desired, w[1].desired) {
            (Some(a), Some(b)) if a != b => {
                let reason = w[1].reason.as_str();
                let about_it = reason.ends_with(&format!("→ {b}")) || reason.contains(&format!("→ {b} "));
                Some((w[1].at, a, b, if about_it { reason } else { "" }))
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Pod;

    fn sample(secs: u64, desired: i64, ready: usize) -> Fleet {
        Fleet {
            at: Duration::from_secs(secs),
            desired: Some(desired),
            reason: format!("x → {desired}"),
            pods: (0..ready)
                .map(|i| Pod {
                    name: format!("p{i}"),
                    ready: true,
                    ..Pod::default()
                })
                .collect(),
            ..Fleet::default()
        }
    }

    #[test]
    fn a_burst_is_measured_from_its_start_and_the_scale_in_from_its_end() {
        let samples = [
            sample(0, 1, 1),
            sample(10, 1, 1),
            sample(11, 1, 1),
            sample(13, 4, 1),
            sample(15, 4, 3),
            sample(16, 4, 4),
            sample(30, 2, 4),
            sample(40, 1, 1),
        ];
        let marks = Marks {
            start: Duration::from_secs(10),
            done: Some(Duration::from_secs(25)),
            settled: Some(Duration::from_secs(40)),
        };
        let f = figures(&samples, &marks);
        assert_eq!(f.scale_out, Some(Duration::from_secs(3)));
        assert_eq!(f.pods_ready, Some(Duration::from_secs(5)));
        assert_eq!((f.peak_desired, f.peak_ready), (4, 4));
        assert_eq!(f.done, Some(Duration::from_secs(15)));
        assert_eq!(f.scale_in, Some(Duration::from_secs(15)));
        let d = decisions(&samples);
        assert_eq!(
            d.iter().map(|(at, a, b, _)| (at.as_secs(), *a, *b)).collect::<Vec<_>>(),
            [(13, 1, 4), (30, 4, 2), (40, 2, 1)]
        );
        assert_eq!(d[0].3, "x → 4");
        let mut replaced = samples.to_vec();
        replaced[3].reason = "4 kept (at maxReplicas 4)".into();
        assert_eq!(
            decisions(&replaced)[0].3,
            "",
            "a reason about a later poll is not shown"
        );
    }

    #[test]
    fn a_burst_that_never_scaled_has_no_scale_out_time() {
        let samples = [sample(0, 1, 1), sample(5, 1, 1)];
        let marks = Marks {
            start: Duration::from_secs(1),
            done: None,
            settled: None,
        };
        let f = figures(&samples, &marks);
        assert_eq!(
            (f.scale_out, f.pods_ready, f.done, f.scale_in),
            (None, None, None, None)
        );
        assert_eq!((f.peak_desired, f.peak_ready), (1, 1));
    }
}
