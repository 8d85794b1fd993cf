//! What the command line's values mean: durations, times, `key=value` pairs and JSON inputs.
//! Pure functions (the current time is passed in), used as clap value parsers so a bad value
//! is a usage error (exit 2) before any call.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

/// `30s`, `10m`, `1h`, `2d` or a sum such as `1h30m`.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration such as 30s, 10m, 1h, 2d or 1h30m");
    let mut total = Duration::zero();
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = rest[digits..].chars().next().ok_or_else(bad)?;
        let part = match unit {
            's' => Duration::try_seconds(n),
            'm' => Duration::try_minutes(n),
            'h' => Duration::try_hours(n),
            'd' => Duration::try_days(n),
            _ => None,
        }
        .ok_or_else(bad)?;
        total = total.checked_add(&part).ok_or_else(bad)?;
        rest = &rest[digits + unit.len_utf8()..];
    }
    Ok(total)
}

/// A time in the past: a duration before `now` (`24h`) or an RFC 3339 time.
pub(crate) fn past(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    duration(text)
        .map(|d| now - d)
        .map_err(|_| format!("{text:?} is neither a duration ago (24h, 30m, 2d) nor an RFC 3339 time"))
}

/// A time in the future: `+10m` from `now`, or an RFC 3339 time.
pub(crate) fn future(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Some(after) = text.strip_prefix('+') {
        return duration(after).map(|d| now + d);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| format!("{text:?} is neither +DURATION (+10m, +1h) nor an RFC 3339 time"))
}

/// [`past`] from the current time, as a clap value parser.
pub(crate) fn past_now(text: &str) -> Result<DateTime<Utc>, String> {
    past(text, Utc::now())
}

/// [`future`] from the current time, as a clap value parser.
pub(crate) fn future_now(text: &str) -> Result<DateTime<Utc>, String> {
    future(text, Utc::now())
}

/// `key=value` (the value may be empty or hold `=`; the key may not be empty).
pub(crate) fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not key=value")),
    }
}

/// A run's input: a JSON object (checked as the REST client checks it, and `null` refused:
/// on the command line it is a slip, not a wish for no input).
pub(crate) fn input(text: &str) -> Result<Map<String, Value>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("the input is not JSON: {e}"))?;
    if value.is_null() {
        return Err("the input must be a JSON object, not null".into());
    }
    hatchet_rest::json_object(&value, "the input").map_err(|e| match e {
        hatchet_rest::Error::Input(why) => why,
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn durations() {
        let cases = [
            ("30s", Some(Duration::seconds(30))),
            ("10m", Some(Duration::minutes(10))),
            ("1h", Some(Duration::hours(1))),
            ("2d", Some(Duration::days(2))),
            ("1h30m", Some(Duration::minutes(90))),
            ("0s", Some(Duration::zero())),
            ("", None),
            ("h", None),
            ("10", None),
            ("10x", None),
            ("-1h", None),
            ("1.5h", None),
            ("99999999999999999999d", None),
        ];
        for (text, want) in cases {
            assert_eq!(duration(text).ok(), want, "{text:?}");
        }
    }

    #[test]
    fn past_and_future_times() {
        let now = at("2026-12-02T12:00:00Z");
        assert_eq!(past("24h", now).unwrap(), at("2026-12-01T12:00:00Z"));
        assert_eq!(
            past("2026-11-30T08:00:00+01:00", now).unwrap(),
            at("2026-11-30T07:00:00Z")
        );
        assert!(past("yesterday", now).is_err());
        assert_eq!(future("+10m", now).unwrap(), at("2026-12-02T12:10:00Z"));
        assert_eq!(future("2027-01-01T00:00:00Z", now).unwrap(), at("2027-01-01T00:00:00Z"));
        assert!(future("10m", now).is_err(), "a relative time needs its +");
        assert!(future("+soon", now).is_err());
    }

    #[test]
    fn key_values() {
        let cases = [
            ("batch=7", Some(("batch", "7"))),
            ("url=a=b", Some(("url", "a=b"))),
            ("empty=", Some(("empty", ""))),
            ("=7", None),
            ("batch", None),
        ];
        for (text, want) in cases {
            let got = key_value(text).ok();
            let want = want.map(|(k, v)| (k.to_owned(), v.to_owned()));
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn inputs_are_json_objects() {
        assert_eq!(input(r#"{"ms": 5}"#).unwrap()["ms"], 5);
        assert_eq!(
            input("[1,2]").unwrap_err(),
            "the input must be a JSON object, not an array"
        );
        assert!(input("{").unwrap_err().starts_with("the input is not JSON"));
        assert!(input("null").is_err());
    }
}
