//! Typed clients for the Hatchet engine's REST API, generated at build time from the engine's
//! OpenAPI contract (`contracts/openapi.json`, checked against the engine's own document by
//! `tests/contract.rs`), with a thin layer on top: one [`Rest`] per tenant, a feature client
//! per area ([`Rest::runs`], [`Rest::workers`], [`Rest::workflows`]), the Hatchet namespace
//! applied as the official SDKs apply it, lists as streams over the engine's pages, and
//! errors that say what the engine answered.
//!
//! Every operation of the contract is also reachable, untyped by this layer, through
//! [`Rest::api`] and the [`generated`] client's extension traits.

mod crons;
mod error;
mod events;
mod filters;
mod logs;
mod metrics;
mod nulls;
mod options;
mod rate_limits;
mod runs;
mod schedules;
mod webhooks;
mod workers;
mod workflows;

use std::time::Duration;

pub use crons::{CronFilter, Crons};
pub use error::{Error, Result};
pub use events::{EventFilter, Events};
pub use filters::{FilterChange, Filters};
pub use logs::{LogFilter, Logs};
pub use metrics::{Metrics, QueueDepths, TaskMetricsFilter};
pub use options::{RunOptions, object as json_object};
pub use rate_limits::RateLimits;
pub use runs::{RunFilter, Runs, Select};
pub use schedules::{ScheduleFilter, Schedules};
pub use uuid::Uuid;
pub use webhooks::{NewWebhook, WebhookAuth, Webhooks};
pub use workers::{WorkerFilter, Workers};
pub use workflows::Workflows;

/// The client and models progenitor generates from the contract.
#[allow(
    missing_docs,
    unreachable_pub,
    unused,
    unused_comparisons,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    rustdoc::all
)]
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/hatchet_rest.rs"));
}

pub use generated::types;

/// Deadline of one REST call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Rows asked for per page when listing.
pub(crate) const PAGE_SIZE: i64 = 100;

/// The engine's REST API for one tenant.
#[derive(Clone)]
pub struct Rest {
    api: generated::Client,
    tenant: Uuid,
    namespace: String,
}

impl std::fmt::Debug for Rest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rest")
            .field("server", &generated::ClientInfo::baseurl(&self.api))
            .field("tenant", &self.tenant)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Rest {
    /// A client of the engine at `server_url` (e.g. `https://hatchet.example`) for `tenant`,
    /// authenticated by `token` and working in Hatchet `namespace` (`""` for none; normalised
    /// as the official SDKs do). The token is sent on every call and never logged.
    pub fn new(server_url: &str, token: &str, tenant: Uuid, namespace: &str) -> Result<Self> {
        let mut auth = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| Error::Config("the token contains characters not allowed in a header".into()))?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .default_headers([(reqwest::header::AUTHORIZATION, auth)].into_iter().collect())
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            api: generated::Client::new_with_client(server_url.trim_end_matches('/'), http),
            tenant,
            namespace: hatchet_contract::namespace::normalize(namespace),
        })
    }

    /// A client configured as the official SDKs configure theirs: the token from
    /// `HATCHET_CLIENT_TOKEN`, and the server URL, tenant and namespace from
    /// `HATCHET_CLIENT_SERVER_URL`, `HATCHET_CLIENT_TENANT_ID` and `HATCHET_CLIENT_NAMESPACE`
    /// when set, else (URL, tenant) from the token's claims.
    pub fn from_env() -> Result<Self> {
        use hatchet_contract::env;
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let token = var(env::TOKEN).ok_or_else(|| Error::Config(format!("{} is not set", env::TOKEN)))?;
        Self::from_token(
            &token,
            var(env::SERVER_URL).as_deref(),
            var(env::TENANT_ID).as_deref(),
            var(env::NAMESPACE).as_deref().unwrap_or(""),
        )
    }

    /// A client authenticated by `token`, at `server_url` and for `tenant` when given, else
    /// where the token's claims say; in Hatchet `namespace`.
    pub fn from_token(token: &str, server_url: Option<&str>, tenant: Option<&str>, namespace: &str) -> Result<Self> {
        let claims = hatchet_contract::token::read_claims(token)
            .map_err(|e| Error::Config(format!("the token is not a Hatchet API token: {e}")))?;
        let server_url = claims.rest_url(server_url).map_err(|e| Error::Config(e.to_string()))?;
        let tenant = tenant.unwrap_or(&claims.sub);
        let tenant: Uuid = tenant
            .parse()
            .map_err(|_| Error::Config(format!("the tenant id {tenant:?} is not a UUID")))?;
        Self::new(&server_url, token, tenant, namespace)
    }

    /// The generated client, for operations this layer does not cover.
    pub fn api(&self) -> &generated::Client {
        &self.api
    }

    /// The tenant every call works in.
    pub fn tenant_id(&self) -> Uuid {
        self.tenant
    }

    /// The tenant itself: its name, slug, version and environment.
    pub async fn tenant(&self) -> Result<types::Tenant> {
        const OP: &str = "tenant:get";
        use generated::prelude::*;
        error::answer(OP, self.api.tenant_get().tenant(self.tenant).send()).await
    }

    /// `name` in this client's namespace (unchanged if it already is).
    pub(crate) fn namespaced(&self, name: &str) -> String {
        hatchet_contract::namespace::apply(&self.namespace, name)
    }

    /// Workflow runs: list, get, cancel, replay.
    pub fn runs(&self) -> Runs<'_> {
        Runs { rest: self }
    }

    /// Workers: list, get, pause, unpause.
    pub fn workers(&self) -> Workers<'_> {
        Workers { rest: self }
    }

    /// Workflows: list, get, delete.
    pub fn workflows(&self) -> Workflows<'_> {
        Workflows { rest: self }
    }

    /// Cron triggers: create, list, get, enable or disable, delete.
    pub fn crons(&self) -> Crons<'_> {
        Crons { rest: self }
    }

    /// Scheduled runs: create, list, get, reschedule, delete.
    pub fn schedules(&self) -> Schedules<'_> {
        Schedules { rest: self }
    }

    /// Recorded events: list, get.
    pub fn events(&self) -> Events<'_> {
        Events { rest: self }
    }

    /// Event filters: create, list, get, update, delete.
    pub fn filters(&self) -> Filters<'_> {
        Filters { rest: self }
    }

    /// Rate limits: list, delete.
    pub fn rate_limits(&self) -> RateLimits<'_> {
        RateLimits { rest: self }
    }

    /// Log lines of task runs.
    pub fn logs(&self) -> Logs<'_> {
        Logs { rest: self }
    }

    /// Task status counts, queue depths, task stats.
    pub fn metrics(&self) -> Metrics<'_> {
        Metrics { rest: self }
    }

    /// Inbound webhooks: create, list, get, update, delete.
    pub fn webhooks(&self) -> Webhooks<'_> {
        Webhooks { rest: self }
    }
}

impl types::ApiResourceMeta {
    /// The object's id as a UUID (the contract types ids as plain strings).
    pub fn uuid(&self) -> Result<Uuid> {
        self.id.parse().map_err(|_| Error::Decode {
            operation: "metadata.id",
            message: format!("{:?} is not a UUID", self.id),
        })
    }
}

/// Every row of a paged list, page by page as the stream is read: `page(offset)` fetches
/// [`PAGE_SIZE`] rows from `offset` and the engine's pagination, if it sent one.
pub(crate) fn paged<'a, T, F, Fut>(page: F) -> impl futures::Stream<Item = Result<T>> + 'a
where
    T: 'a,
    F: Fn(i64) -> Fut + 'a,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<types::PaginationResponse>)>> + 'a,
{
    use futures::TryStreamExt as _;
    futures::stream::try_unfold((Some(0_i64), page), |(offset, page)| async move {
        let Some(offset) = offset else { return Ok(None) };
        let (rows, pagination) = page(offset).await?;
        let next = next_offset(offset, rows.len(), pagination.as_ref());
        Ok(Some((rows, (next, page))))
    })
    .map_ok(|rows| futures::stream::iter(rows.into_iter().map(Ok::<_, Error>)))
    .try_flatten()
}

/// The next offset after a page of `got` rows at `offset`, if the engine may have more.
pub(crate) fn next_offset(offset: i64, got: usize, pagination: Option<&types::PaginationResponse>) -> Option<i64> {
    let got = i64::try_from(got).unwrap_or(i64::MAX);
    if got < PAGE_SIZE {
        return None;
    }
    if let Some(p) = pagination
        && let (Some(current), Some(pages)) = (p.current_page, p.num_pages)
        && current >= pages
    {
        return None;
    }
    Some(offset + got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_end_on_a_short_page_or_the_last_one() {
        assert_eq!(next_offset(0, 100, None), Some(100));
        assert_eq!(next_offset(100, 7, None), None);
        let last = types::PaginationResponse {
            current_page: Some(3),
            next_page: Some(3),
            num_pages: Some(3),
        };
        assert_eq!(next_offset(200, 100, Some(&last)), None);
        let more = types::PaginationResponse {
            current_page: Some(1),
            next_page: Some(2),
            num_pages: Some(3),
        };
        assert_eq!(next_offset(0, 100, Some(&more)), Some(100));
    }

    fn token(claims: &str) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.sig", b64.encode("{}"), b64.encode(claims))
    }

    #[test]
    fn a_token_says_where_the_engine_and_tenant_are_unless_told() {
        let tenant = "5f0a4c8e-8b4e-4d6b-9f39-2b7d1c0e9a11";
        let t = token(&format!(r#"{{"sub":"{tenant}","server_url":"http://engine:8080/"}}"#));
        let rest = Rest::from_token(&t, None, None, "").unwrap();
        assert_eq!(rest.tenant_id().to_string(), tenant);
        assert_eq!(generated::ClientInfo::baseurl(&rest.api), "http://engine:8080");
        let other = Rest::from_token(&t, Some("https://elsewhere"), Some(&Uuid::nil().to_string()), "").unwrap();
        assert_eq!(other.tenant_id(), Uuid::nil());
        assert_eq!(generated::ClientInfo::baseurl(&other.api), "https://elsewhere");

        let no_url = token(&format!(r#"{{"sub":"{tenant}"}}"#));
        let e = Rest::from_token(&no_url, None, None, "").unwrap_err();
        assert!(e.to_string().contains("server_url"), "{e}");
        let bad_tenant = token(r#"{"sub":"tenant-1","server_url":"http://e"}"#);
        let e = Rest::from_token(&bad_tenant, None, None, "").unwrap_err();
        assert!(e.to_string().contains("not a UUID"), "{e}");
        let e = Rest::from_token("nope", None, None, "").unwrap_err();
        assert!(e.to_string().contains("not a Hatchet API token"), "{e}");
    }

    #[test]
    fn names_take_the_namespace_once() {
        let rest = Rest::new("http://127.0.0.1:9", "t", Uuid::nil(), "Team").unwrap();
        assert_eq!(rest.namespaced("orders"), "team_orders");
        assert_eq!(rest.namespaced("team_orders"), "team_orders");
        assert!(!format!("{rest:?}").contains("Bearer"), "the token is never shown");
    }
}
