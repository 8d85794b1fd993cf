//! When a child must be applied again: its desired state changed, or someone else changed its
//! spec since the operator last applied or checked it (Kubernetes bumps `metadata.generation`
//! on every spec change, so a generation past the one the operator saw is drift to revert).

/// What the watch cache shows of a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Observed<'a> {
    /// The desired-state hash the operator stamped on it.
    pub(crate) hash: Option<&'a str>,
    pub(crate) generation: Option<i64>,
}

/// Whether to server-side apply. `baseline` is the generation the operator last produced or
/// accepted for this child in this process; after a restart there is none, so a restart
/// alone never writes.
pub(crate) fn needs_apply(observed: Option<Observed<'_>>, desired_hash: Option<&str>, baseline: Option<i64>) -> bool {
    let Some(o) = observed else { return true };
    if o.hash.is_none() || o.hash != desired_hash {
        return true;
    }
    matches!((baseline, o.generation), (Some(b), Some(g)) if g > b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk(hash: Option<&str>, generation: Option<i64>) -> Option<Observed<'_>> {
        Some(Observed { hash, generation })
    }

    #[test]
    fn decisions() {
        let cases = [
            ("missing child", None, Some("h1"), None, true),
            ("unstamped child", mk(None, Some(1)), Some("h1"), None, true),
            (
                "desired state changed",
                mk(Some("h0"), Some(3)),
                Some("h1"),
                Some(3),
                true,
            ),
            ("steady state", mk(Some("h1"), Some(3)), Some("h1"), Some(3), false),
            (
                "after a restart: no baseline, no write",
                mk(Some("h1"), Some(7)),
                Some("h1"),
                None,
                false,
            ),
            (
                "edited by hand since",
                mk(Some("h1"), Some(4)),
                Some("h1"),
                Some(3),
                true,
            ),
            (
                "kind without generations",
                mk(Some("h1"), None),
                Some("h1"),
                Some(3),
                false,
            ),
            (
                "cache behind our own apply",
                mk(Some("h1"), Some(2)),
                Some("h1"),
                Some(3),
                false,
            ),
        ];
        for (what, observed, desired, baseline, want) in cases {
            assert_eq!(needs_apply(observed, desired, baseline), want, "{what}");
        }
    }
}
