//! The engine's REST API, for what gRPC does not offer (worker pause, listings, crons).

use serde_json::Value;

use super::Client;
use crate::{Error, Result};

impl Client {
    /// `GET {server_url}{path}` with the tenant's token; the JSON body on 2xx.
    pub async fn rest_get(&self, path: &str) -> Result<Value> {
        self.rest(reqwest::Method::GET, path, None).await
    }

    /// `PATCH {server_url}{path}` with a JSON body.
    pub async fn rest_patch(&self, path: &str, body: &Value) -> Result<Value> {
        self.rest(reqwest::Method::PATCH, path, Some(body)).await
    }

    /// `POST {server_url}{path}` with a JSON body.
    pub async fn rest_post(&self, path: &str, body: &Value) -> Result<Value> {
        self.rest(reqwest::Method::POST, path, Some(body)).await
    }

    /// The tenant's workers as the engine lists them.
    pub async fn list_workers(&self) -> Result<Vec<Value>> {
        let v = self
            .rest_get(&format!("/api/v1/tenants/{}/worker", self.config.tenant_id))
            .await?;
        Ok(v.get("rows").and_then(Value::as_array).cloned().unwrap_or_default())
    }

    /// Pauses (or resumes) a worker: a paused worker is assigned nothing new.
    pub async fn set_worker_paused(&self, worker_id: &str, paused: bool) -> Result<()> {
        self.rest_patch(
            &format!("/api/v1/workers/{worker_id}"),
            &serde_json::json!({ "isPaused": paused }),
        )
        .await
        .map(drop)
    }

    async fn rest(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Value> {
        self.rest_call(method, path, &[], body).await
    }

    /// [`Client::rest`] with query parameters (encoded) and no body.
    pub(crate) async fn rest_with_query(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Value> {
        self.rest_call(method, path, query, None).await
    }

    async fn rest_call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value> {
        let call: &'static str = match method {
            reqwest::Method::GET => "GET",
            reqwest::Method::PATCH => "PATCH",
            reqwest::Method::DELETE => "DELETE",
            _ => "POST",
        };
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.config.server_url)).map_err(|e| Error::Rest {
            call,
            status: None,
            message: format!("{path}: {e}"),
        })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut req = self.http.request(method, url).bearer_auth(self.config.token.expose());
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| Error::Rest {
            call,
            status: None,
            message: format!("{path}: {e}"),
        })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(Error::Rest {
                call,
                status: Some(status.as_u16()),
                message: format!("{path}: HTTP {status}: {}", text.chars().take(500).collect::<String>()),
            });
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| Error::Rest {
            call,
            status: None,
            message: format!("{path}: response is not JSON: {e}"),
        })
    }
}
