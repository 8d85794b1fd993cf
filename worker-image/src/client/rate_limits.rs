//! Static rate limits: a task that consumes a static key ([`crate::RateLimit::fixed`]) is only
//! limited once the key exists in the engine, and only `PutRateLimit` makes one (listing and
//! deleting them is REST: `client.rest()?.rate_limits()`, feature `rest`).

use hatchet_proto::{PutRateLimitRequest, RateLimitDuration};

use super::{Client, call};
use crate::workflow::RateLimitWindow;
use crate::{Error, Result};

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
