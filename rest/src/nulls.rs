//! Reading `null` where the engine's contract promises a list or a map.

use serde::{Deserialize, Deserializer};

/// `null` (a Go nil slice or map) as the empty collection; anything else as itself.
pub(crate) fn empty_if_null<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use crate::types::Worker;

    #[test]
    fn a_worker_with_null_lists_reads_as_empty_ones() {
        let w: Worker = serde_json::from_value(serde_json::json!({
            "actions": null,
            "labels": null,
            "metadata": {"createdAt": "2026-12-02T05:53:57.654Z", "id": "7da297ce-e4a8-4926-be7d-afdcd0b71c31", "updatedAt": "2026-12-02T05:53:58.788Z"},
            "name": "w",
            "recentStepRuns": null,
            "registeredWorkflows": null,
            "slots": null,
            "type": "SELFHOSTED"
        }))
        .expect("nulls are empty lists");
        assert!(w.actions.is_empty() && w.labels.is_empty());
    }
}
