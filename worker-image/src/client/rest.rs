//! The engine's REST API. The runtime needs one call of it (pausing the worker at drain),
//! made here; a program that scripts the engine gets the typed feature clients of
//! `hatchet-rest` from [`Client::rest`] (feature `rest`).

use super::Client;
use crate::{Error, Result};

impl Client {
    /// Pauses (or resumes) a worker: a paused worker is assigned nothing new.
    pub(crate) async fn set_worker_paused(&self, worker_id: &str, paused: bool) -> Result<()> {
        let path = format!("/api/v1/workers/{worker_id}");
        let failed = |status: Option<u16>, message: String| Error::Rest {
            call: "PATCH",
            status,
            message: format!("{path}: {message}"),
        };
        let resp = self
            .http
            .patch(format!("{}{path}", self.config.server_url))
            .bearer_auth(self.config.token.expose())
            .json(&serde_json::json!({ "isPaused": paused }))
            .send()
            .await
            .map_err(|e| failed(None, e.to_string()))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = resp.text().await.unwrap_or_default();
        Err(failed(
            Some(status.as_u16()),
            format!("HTTP {status}: {}", body.chars().take(500).collect::<String>()),
        ))
    }

    /// The engine's REST API as typed feature clients (runs, workflows, workers, crons,
    /// schedules, events, filters, rate limits, logs, metrics, tenant, webhooks), with this
    /// client's server, token, tenant and namespace.
    #[cfg(feature = "rest")]
    pub fn rest(&self) -> Result<hatchet_rest::Rest> {
        let tenant = self
            .config
            .tenant_id
            .parse()
            .map_err(|_| Error::Config(format!("the tenant id {:?} is not a UUID", self.config.tenant_id)))?;
        hatchet_rest::Rest::new(
            &self.config.server_url,
            self.config.token.expose(),
            tenant,
            &self.config.namespace,
        )
        .map_err(|e| Error::Config(e.to_string()))
    }
}
