//! Hatchet namespaces, as the official SDKs apply them: lowercased, ending in `_`, prefixed to
//! workflow, event and worker names.

/// The namespace as a prefix: trimmed, lowercased, ending in `_` (empty stays empty).
pub fn normalize(namespace: &str) -> String {
    let ns = namespace.trim().to_lowercase();
    if ns.is_empty() || ns.ends_with('_') {
        ns
    } else {
        format!("{ns}_")
    }
}

/// `name` with the normalised `prefix` in front, unless it already starts with it.
pub fn apply(prefix: &str, name: &str) -> String {
    if prefix.is_empty() || name.starts_with(prefix) {
        name.to_owned()
    } else {
        format!("{prefix}{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_lowercased_and_end_in_one_underscore() {
        for (given, want) in [
            ("", ""),
            ("  ", ""),
            ("Team", "team_"),
            ("team_", "team_"),
            (" A_b ", "a_b_"),
        ] {
            assert_eq!(normalize(given), want, "{given:?}");
        }
        assert_eq!(apply("team_", "greet"), "team_greet");
        assert_eq!(apply("team_", "team_greet"), "team_greet", "not twice");
        assert_eq!(apply("", "greet"), "greet");
    }
}
