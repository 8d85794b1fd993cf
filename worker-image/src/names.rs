//! Rules the engine applies to names and durations, checked locally so a bad definition
//! fails at start-up with a clear message instead of as an engine error mid-registration.

use std::time::Duration;

/// Workflow, task and worker names: `^[a-zA-Z0-9.\-_]+$`, as the engine validates them.
pub fn validate_name(kind: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{kind} name is empty"));
    }
    if name.len() > 255 {
        return Err(format!("{kind} name {name:?} is longer than 255 characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return Err(format!(
            "{kind} name {name:?} contains {c:?}; only letters, digits, '.', '-' and '_' are allowed"
        ));
    }
    Ok(())
}

/// Worker label keys: non-empty, printable, no spaces (`/` allowed for prefixed keys).
pub fn validate_label_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 255 {
        return Err(format!("label key {key:?} must be 1 to 255 characters"));
    }
    if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/')))
    {
        return Err(format!("label key {key:?} contains {c:?}"));
    }
    Ok(())
}

/// Formats a duration the way the engine parses it (Go style): whole hours, minutes or
/// seconds when exact, else milliseconds. Zero and sub-millisecond durations are refused.
pub fn go_duration(what: &str, d: Duration) -> Result<String, String> {
    let ms = d.as_millis();
    if ms == 0 {
        return Err(format!("{what} must be at least 1ms, got {d:?}"));
    }
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return Err(format!("{what} must be a whole number of milliseconds, got {d:?}"));
    }
    Ok(if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    })
}

/// A cron expression: five fields (minute hour day month weekday) of cron characters, or a
/// `@hourly`-style macro.
pub fn validate_cron(expr: &str) -> Result<(), String> {
    let e = expr.trim();
    if e.starts_with('@') {
        return match e {
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight" | "@hourly" => Ok(()),
            _ => Err(format!("cron {expr:?}: unknown macro")),
        };
    }
    let fields: Vec<_> = e.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "cron {expr:?} must have 5 fields (minute hour day month weekday), has {}",
            fields.len()
        ));
    }
    for f in fields {
        if let Some(c) = f
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '*' | ',' | '-' | '/' | '?')))
        {
            return Err(format!("cron {expr:?}: field {f:?} contains {c:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_engine_pattern() {
        for ok in ["simple", "my-flow_v2.1", "A"] {
            assert!(validate_name("workflow", ok).is_ok(), "{ok}");
        }
        for bad in ["", "has space", "slash/name", "colon:name", "ümlaut"] {
            let e = validate_name("workflow", bad).unwrap_err();
            assert!(e.starts_with("workflow name"), "{e}");
        }
        assert!(validate_name("task", &"x".repeat(256)).is_err());
    }

    #[test]
    fn durations_are_go_style() {
        let cases = [
            (Duration::from_secs(60), "1m"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_secs(1), "1s"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration("timeout", d).unwrap(), want);
        }
        assert!(go_duration("timeout", Duration::ZERO).unwrap_err().contains("timeout"));
        assert!(go_duration("timeout", Duration::from_micros(1500)).is_err());
    }

    #[test]
    fn cron_shapes() {
        for ok in ["*/5 * * * *", "0 0 1 1 MON", "@daily"] {
            assert!(validate_cron(ok).is_ok(), "{ok}");
        }
        for bad in ["* * * *", "@sometimes", "* * * * * *", "a;b * * * *"] {
            assert!(validate_cron(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_keys() {
        assert!(validate_label_key("hatchet.run/fleet").is_ok());
        assert!(validate_label_key("").is_err());
        assert!(validate_label_key("a b").is_err());
    }
}
