//! The world's Prometheus (`PROMETHEUS_URL`), read over its HTTP API: instant queries, the
//! targets it scrapes and the rules it evaluates; blocking, so sync tests and the demo call it
//! alike.

use std::collections::BTreeMap;

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
    let data = api(world, "/api/v1/query", &[("query", promql)])?;
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
    let data = api(world, "/api/v1/targets", &[("state", "active")])?;
    Ok(data["activeTargets"].as_array().cloned().unwrap_or_default())
}

/// The rule groups Prometheus loaded, with each rule's health and last error.
pub fn rule_groups(world: &World) -> Result<Vec<Value>, String> {
    let data = api(world, "/api/v1/rules", &[])?;
    Ok(data["groups"].as_array().cloned().unwrap_or_default())
}

/// GET `path` of the Prometheus API; the `data` of a `success` answer, else its error.
fn api(world: &World, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
    let url = world.var("PROMETHEUS_URL").map_err(|e| e.to_string())?;
    let (_, body) = crate::http::get(&format!("{url}{path}"), query).map_err(|e| format!("Prometheus: {e}"))?;
    let answer: Value = serde_json::from_str(&body).map_err(|e| format!("{path}: {e}: {body:.200}"))?;
    if answer["status"] == "success" {
        Ok(answer["data"].clone())
    } else {
        Err(format!("{path}: {} {}", answer["errorType"], answer["error"]))
    }
}
