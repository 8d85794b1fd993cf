//! Static rate limits: a task that consumes a static key ([`crate::RateLimit::fixed`]) is only
//! limited once the key exists in the engine, and only `PutRateLimit` makes one.

use hatchet_proto::{PutRateLimitRequest, RateLimitDuration};
use serde::Deserialize;

use super::{Client, call};
use crate::workflow::RateLimitWindow;
use crate::{Error, Result};

/// A static rate limit as the engine keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitState {
    /// The key tasks consume.
    pub key: String,
    /// Units allowed per window.
    pub limit_value: i64,
    /// Units left in the current window (the engine refills it each window).
    pub value: i64,
    /// The window, as the engine names it (e.g. `1 second`).
    pub window: String,
}

#[derive(Deserialize)]
struct RateLimitList {
    #[serde(default)]
    rows: Vec<RateLimitState>,
}

impl Client {
    /// Creates the static rate limit `key` (or changes it): `limit` units per `window`. Keys
    /// are not namespaced, as in the official SDKs.
    pub async fn put_rate_limit(&self, key: &str, limit: u32, window: RateLimitWindow) -> Result<()> {
        let limit = i32::try_from(limit)
            .map_err(|_| Error::Definition(format!("rate limit {key:?}: {limit} is more than the engine takes")))?;
        let req = PutRateLimitRequest {
            key: key.to_owned(),
            limit,
            duration: duration(window) as i32,
        };
        call("PutRateLimit", || {
            let mut w = self.engine().workflows.clone();
            let req = req.clone();
            async move { w.put_rate_limit(req).await }
        })
        .await
        .map(drop)
    }

    /// The tenant's static rate limits whose key contains `search` (all with `None`).
    pub async fn list_rate_limits(&self, search: Option<&str>) -> Result<Vec<RateLimitState>> {
        let path = format!("/api/v1/tenants/{}/rate-limits", self.config().tenant_id);
        let query: Vec<(&str, &str)> = search.map(|s| ("search", s)).into_iter().collect();
        let v = self.rest_with_query(reqwest::Method::GET, &path, &query).await?;
        let list: RateLimitList = serde_json::from_value(v).map_err(|e| Error::Rest {
            call: "GET",
            status: None,
            message: format!("{path}: unexpected rate limit list: {e}"),
        })?;
        Ok(list.rows)
    }

    /// Deletes the static rate limit `key`. The engine refuses (HTTP 400) while a registered
    /// workflow has a task that consumes the key; the error says so.
    pub async fn delete_rate_limit(&self, key: &str) -> Result<()> {
        let path = format!("/api/v1/tenants/{}/rate-limits", self.config().tenant_id);
        match self
            .rest_with_query(reqwest::Method::DELETE, &path, &[("key", key)])
            .await
        {
            Ok(_) => Ok(()),
            Err(Error::Rest {
                call,
                status: status @ Some(400),
                message,
            }) => Err(Error::Rest {
                call,
                status,
                message: format!(
                    "{message} (rate limit {key:?}: the engine keeps a key that a registered workflow's task consumes)"
                ),
            }),
            Err(e) => Err(e),
        }
    }
}

fn duration(w: RateLimitWindow) -> RateLimitDuration {
    match w {
        RateLimitWindow::Second => RateLimitDuration::Second,
        RateLimitWindow::Minute => RateLimitDuration::Minute,
        RateLimitWindow::Hour => RateLimitDuration::Hour,
        RateLimitWindow::Day => RateLimitDuration::Day,
        RateLimitWindow::Week => RateLimitDuration::Week,
        RateLimitWindow::Month => RateLimitDuration::Month,
        RateLimitWindow::Year => RateLimitDuration::Year,
    }
}
