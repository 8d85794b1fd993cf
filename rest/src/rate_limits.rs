//! Rate limits as the engine holds them (setting one is gRPC,
//! `hatchet_worker::Client::put_rate_limit`): what the official SDKs list and delete. Keys are
//! not namespaced, as in the SDKs.

use futures::Stream;

use crate::error::answer;
use crate::generated::prelude::*;
use crate::types::RateLimit;
use crate::{Error, PAGE_SIZE, Rest, Result, paged};

/// The tenant's rate limits.
#[derive(Debug, Clone, Copy)]
pub struct RateLimits<'a> {
    pub(crate) rest: &'a Rest,
}

impl RateLimits<'_> {
    /// The rate limits whose key contains `search` (every one with `None`), with their
    /// window, limit and current value, page by page as the stream is read.
    pub fn list(&self, search: Option<&str>) -> impl Stream<Item = Result<RateLimit>> + '_ {
        const OP: &str = "rate-limit:list";
        let search = search.map(str::to_owned);
        paged(move |offset| {
            let mut call = self
                .rest
                .api
                .rate_limit_list()
                .tenant(self.rest.tenant)
                .limit(PAGE_SIZE)
                .offset(offset);
            if let Some(s) = &search {
                call = call.search(s.clone());
            }
            async move {
                let page = answer(OP, call.send()).await?;
                Ok((page.rows, page.pagination))
            }
        })
    }

    /// Deletes the rate limit `key`. The engine refuses (400) while a registered workflow's
    /// task consumes it; the error says so.
    pub async fn delete(&self, key: &str) -> Result<()> {
        const OP: &str = "rate-limit:delete";
        let call = self.rest.api.rate_limit_delete().tenant(self.rest.tenant).key(key);
        answer(OP, call.send()).await.map_err(|e| match e {
            Error::Engine {
                operation,
                status: 400,
                message,
            } => Error::Engine {
                operation,
                status: 400,
                message: format!(
                    "{message} (rate limit {key:?}: the engine keeps a key that a registered workflow's task consumes)"
                ),
            },
            other => other,
        })
    }
}
