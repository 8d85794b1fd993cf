//! Inbound webhooks (an HTTP endpoint of the engine that turns what a source such as GitHub
//! or Stripe posts into events): what the official SDKs' `webhooks` feature client does.
//! Webhooks are named, not numbered; names and expressions are not namespaced, as in the SDKs.

use futures::Stream;
use serde_json::{Map, Value};

use crate::error::answer;
use crate::generated::prelude::*;
use crate::types::{
    V1CreateWebhookRequest, V1CreateWebhookRequestApiKey, V1CreateWebhookRequestApiKeyAuthType,
    V1CreateWebhookRequestBasicAuth, V1CreateWebhookRequestBasicAuthAuthType, V1CreateWebhookRequestHmac,
    V1CreateWebhookRequestHmacAuthType, V1UpdateWebhookRequest, V1Webhook, V1WebhookApiKeyAuth, V1WebhookBasicAuth,
    V1WebhookHmacAlgorithm, V1WebhookHmacAuth, V1WebhookHmacEncoding, V1WebhookSourceName,
};
use crate::{PAGE_SIZE, Rest, Result, paged};

/// How the engine authenticates what a source posts to a webhook.
#[derive(Clone)]
pub enum WebhookAuth {
    /// HTTP basic authentication.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// A shared key in a header.
    ApiKey {
        /// The header carrying it.
        header: String,
        /// The key.
        key: String,
    },
    /// An HMAC signature of the body in a header (GitHub, Stripe, Slack, ...).
    Hmac {
        /// The hash.
        algorithm: V1WebhookHmacAlgorithm,
        /// How the signature is written.
        encoding: V1WebhookHmacEncoding,
        /// The header carrying it.
        header: String,
        /// The signing secret.
        secret: String,
    },
}

/// Secrets stay out of debug output.
impl std::fmt::Debug for WebhookAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebhookAuth::Basic { username, .. } => f.debug_struct("Basic").field("username", username).finish(),
            WebhookAuth::ApiKey { header, .. } => f.debug_struct("ApiKey").field("header", header).finish(),
            WebhookAuth::Hmac {
                algorithm,
                encoding,
                header,
                ..
            } => f
                .debug_struct("Hmac")
                .field("algorithm", algorithm)
                .field("encoding", encoding)
                .field("header", header)
                .finish(),
        }
    }
}

/// A webhook to create.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    /// Its name (the last segment of its URL).
    pub name: String,
    /// Who posts to it.
    pub source: V1WebhookSourceName,
    /// A CEL expression over the posted body (`input`) and headers giving the event key.
    pub event_key_expression: String,
    /// A CEL expression giving the event's scope (for filters), if any.
    pub scope_expression: Option<String>,
    /// A JSON object merged into every event's payload.
    pub static_payload: Map<String, Value>,
    /// How posts are authenticated.
    pub auth: WebhookAuth,
}

/// The tenant's inbound webhooks.
#[derive(Debug, Clone, Copy)]
pub struct Webhooks<'a> {
    pub(crate) rest: &'a Rest,
}

impl Webhooks<'_> {
    /// Creates `webhook`.
    pub async fn create(&self, webhook: NewWebhook) -> Result<V1Webhook> {
        const OP: &str = "v1-webhook:create";
        let body = create_request(webhook);
        answer(
            OP,
            self.rest
                .api
                .v1_webhook_create()
                .tenant(self.rest.tenant)
                .body(body)
                .send(),
        )
        .await
    }

    /// Every webhook (of these sources, when any are given), page by page as the stream is
    /// read.
    pub fn list(&self, sources: &[V1WebhookSourceName]) -> impl Stream<Item = Result<V1Webhook>> + '_ {
        const OP: &str = "v1-webhook:list";
        let sources = sources.to_vec();
        paged(move |offset| {
            let call = self
                .rest
                .api
                .v1_webhook_list()
                .tenant(self.rest.tenant)
                .limit(PAGE_SIZE)
                .offset(offset)
                .source_names(sources.clone());
            async move {
                let page = answer(OP, call.send()).await?;
                Ok((page.rows, page.pagination))
            }
        })
    }

    /// Webhook `name`.
    pub async fn get(&self, name: &str) -> Result<V1Webhook> {
        const OP: &str = "v1-webhook:get";
        answer(
            OP,
            self.rest
                .api
                .v1_webhook_get()
                .tenant(self.rest.tenant)
                .v1_webhook(name)
                .send(),
        )
        .await
    }

    /// Changes what `change` sets of webhook `name`.
    pub async fn update(&self, name: &str, change: V1UpdateWebhookRequest) -> Result<V1Webhook> {
        const OP: &str = "v1-webhook:update";
        let call = self
            .rest
            .api
            .v1_webhook_update()
            .tenant(self.rest.tenant)
            .v1_webhook(name)
            .body(change);
        answer(OP, call.send()).await
    }

    /// Deletes webhook `name`; what it was.
    pub async fn delete(&self, name: &str) -> Result<V1Webhook> {
        const OP: &str = "v1-webhook:delete";
        answer(
            OP,
            self.rest
                .api
                .v1_webhook_delete()
                .tenant(self.rest.tenant)
                .v1_webhook(name)
                .send(),
        )
        .await
    }
}

/// The contract's request for `w`: one shape per kind of authentication, the same fields
/// besides.
fn create_request(w: NewWebhook) -> V1CreateWebhookRequest {
    macro_rules! request {
        ($shape:ident, $auth_type:expr, $auth:expr) => {
            $shape {
                auth: $auth,
                auth_type: $auth_type,
                event_key_expression: w.event_key_expression,
                name: w.name,
                return_event_as_response_payload: None,
                scope_expression: w.scope_expression,
                source_name: w.source,
                static_payload: w.static_payload,
            }
            .into()
        };
    }
    match w.auth {
        WebhookAuth::Basic { username, password } => request!(
            V1CreateWebhookRequestBasicAuth,
            V1CreateWebhookRequestBasicAuthAuthType::Basic,
            V1WebhookBasicAuth { password, username }
        ),
        WebhookAuth::ApiKey { header, key } => request!(
            V1CreateWebhookRequestApiKey,
            V1CreateWebhookRequestApiKeyAuthType::ApiKey,
            V1WebhookApiKeyAuth {
                api_key: key,
                header_name: header,
            }
        ),
        WebhookAuth::Hmac {
            algorithm,
            encoding,
            header,
            secret,
        } => request!(
            V1CreateWebhookRequestHmac,
            V1CreateWebhookRequestHmacAuthType::Hmac,
            V1WebhookHmacAuth {
                algorithm,
                encoding,
                signature_header_name: header,
                signing_secret: secret,
            }
        ),
    }
}
