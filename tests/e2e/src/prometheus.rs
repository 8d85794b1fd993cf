//! The world's Prometheus (`PROMETHEUS_URL`), read over its HTTP API: instant queries, the
//! targets it scrapes and the rules it evaluates. Plain HTTP/1.0 on loopback, blocking, so sync
//! tests and the demo call it without a runtime.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use crate::World;

/// One series of an instant vector: its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels, `__name__` included when the query keeps it.
    pub labels: BTreeMap<String, String>,
    /// The value at the query's time.
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, or "" (as PromQL treats a missing label).
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map(String::as_str).unwrap_or("")
    }
}

/// Evaluates `promql` now; the series of the instant vector it returns, or the error Prometheus
/// gave (a bad query names what is wrong).
pub fn query(world: &World, promql: &str) -> Result<Vec<Sample>, String> {
    let data = api(world, &format!("/api/v1/query?query={}", encode(promql)))?;
    if data["resultType"] != "vector" {
        return Err(format!("{promql}: a {} result, not a vector", data["resultType"]));
    }
    data["result"]
        .as_array()
        .ok_or_else(|| format!("{promql}: no result array in {data}"))?
        .iter()
        .map(|s| {
            let labels = s["metric"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            let value = s["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{promql}: unreadable value in {s}"))?;
            Ok(Sample { labels, value })
        })
        .collect()
}

/// The targets service discovery found and Prometheus scrapes (`activeTargets`).
pub fn active_targets(world: &World) -> Result<Vec<Value>, String> {
    let data = api(world, "/api/v1/targets?state=active")?;
    Ok(data["activeTargets"].as_array().cloned().unwrap_or_default())
}

/// The rule groups Prometheus loaded, with each rule's health and last error.
pub fn rule_groups(world: &World) -> Result<Vec<Value>, String> {
    let data = api(world, "/api/v1/rules")?;
    Ok(data["groups"].as_array().cloned().unwrap_or_default())
}

/// GET `path` of the Prometheus API; the `data` of a `success` answer, else its error.
fn api(world: &World, path: &str) -> Result<Value, String> {
    let url = world.var("PROMETHEUS_URL").map_err(|e| e.to_string())?;
    let host_port = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("PROMETHEUS_URL {url} is not http://host:port"))?;
    let body = get(host_port, path)?;
    let answer: Value = serde_json::from_str(&body).map_err(|e| format!("{path}: {e}: {body:.200}"))?;
    if answer["status"] == "success" {
        Ok(answer["data"].clone())
    } else {
        Err(format!("{path}: {} {}", answer["errorType"], answer["error"]))
    }
}

fn get(host_port: &str, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(host_port).map_err(|e| format!("Prometheus at {host_port}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host_port}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).map_err(|e| e.to_string())?;
    buf.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .ok_or_else(|| format!("{path}: not an HTTP answer: {buf:.200}"))
}

/// Percent-encodes a query parameter (everything but unreserved characters).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(
            encode(r#"sum by (pod) (x{a="b"})"#),
            "sum%20by%20%28pod%29%20%28x%7Ba%3D%22b%22%7D%29"
        );
        assert_eq!(encode("a+b/c"), "a%2Bb%2Fc");
    }
}
