//! Pure arithmetic on the engine's timestamps: percentiles, spans, and how many tasks were
//! inside an interval at once.

/// The `p`-th percentile (0–100) of `values` by nearest rank; `None` when empty.
pub(crate) fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// The most intervals `[start, end)` open at the same instant.
pub(crate) fn max_overlap(intervals: &[(f64, f64)]) -> usize {
    let mut edges: Vec<(f64, i32)> = Vec::with_capacity(intervals.len() * 2);
    for &(s, e) in intervals {
        edges.push((s, 1));
        edges.push((e.max(s), -1));
    }
    // At equal times an end comes before a start: a slot given back can be taken again.
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut open, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        open += d;
        most = most.max(open);
    }
    most as usize
}

/// `b - a` for each pair where both are known.
pub(crate) fn deltas(pairs: impl IntoIterator<Item = (Option<f64>, Option<f64>)>) -> Vec<f64> {
    pairs.into_iter().filter_map(|(a, b)| Some(b? - a?)).collect()
}

/// `count` tasks over the span from the first of `starts` to the last of `ends`, per second.
pub(crate) fn rate(count: usize, starts: &[f64], ends: &[f64]) -> Option<f64> {
    let first = starts.iter().copied().reduce(f64::min)?;
    let last = ends.iter().copied().reduce(f64::max)?;
    (last > first).then(|| count as f64 / (last - first))
}

/// From the smallest of `values` to the largest; `None` when empty.
pub(crate) fn span(values: &[f64]) -> Option<f64> {
    let lo = values.iter().copied().reduce(f64::min)?;
    let hi = values.iter().copied().reduce(f64::max)?;
    Some(hi - lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn overlap_counts_intervals_open_together() {
        assert_eq!(max_overlap(&[]), 0);
        assert_eq!(
            max_overlap(&[(0.0, 1.0), (1.0, 2.0)]),
            1,
            "back to back share no instant"
        );
        assert_eq!(max_overlap(&[(0.0, 3.0), (1.0, 2.0), (1.5, 4.0), (5.0, 6.0)]), 3);
        assert_eq!(max_overlap(&[(2.0, 1.0)]), 0, "an end before its start is empty");
    }

    #[test]
    fn deltas_skip_unknown_ends() {
        assert_eq!(
            deltas([(Some(1.0), Some(1.5)), (None, Some(2.0)), (Some(1.0), None)]),
            vec![0.5]
        );
    }

    #[test]
    fn rate_over_the_whole_span() {
        assert_eq!(rate(10, &[1.0, 2.0], &[3.0, 6.0]), Some(2.0));
        assert_eq!(rate(10, &[], &[1.0]), None);
        assert_eq!(rate(1, &[1.0], &[1.0]), None);
    }

    #[test]
    fn span_of_values() {
        assert_eq!(span(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(span(&[]), None);
    }
}
