//! Reads a fleet's signals from the Hatchet engine's REST API with the fleet's own token
//! (read from its Secret; never logged, never stored outside this process's memory). The
//! answers are parsed by [`super::signals`]; failures carry the `ScalingActive` reason.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hatchet_contract::token::{TokenClaims, TokenError, read_claims};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use super::signals::{EngineWorker, parse_queues, parse_workers};
use crate::crd::{HatchetWorker, TlsStrategy};
use crate::error::Error;

/// A REST call that takes longer than this fails the poll (the fleet keeps its size).
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn problem(reason: &'static str, message: impl Into<String>) -> Error {
    Error::ScalingSignal {
        reason,
        message: message.into(),
    }
}

/// Where and as whom to read a fleet's signals.
pub(crate) struct Target {
    base_url: String,
    tenant: String,
    token: String,
    ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("base_url", &self.base_url)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// Tenant and REST URL claims of a Hatchet token (a JWT; its signature is the engine's to check).
fn claims(token: &str) -> Result<TokenClaims, Error> {
    read_claims(token).map_err(|e| problem("InvalidToken", format!("the token is not a Hatchet API token: {e}")))
}

/// One key of a Secret, as text.
async fn secret_value(client: &Client, ns: &str, name: &str, key: &str, what: &str) -> Result<String, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = match api.get(name).await {
        Ok(s) => s,
        Err(kube::Error::Api(s)) if s.is_not_found() => {
            return Err(problem(
                "TokenSecretNotFound",
                format!("{what}: Secret {ns}/{name} not found"),
            ));
        }
        Err(kube::Error::Api(s)) if s.is_forbidden() => {
            return Err(problem(
                "TokenSecretForbidden",
                format!("{what}: the operator may not get Secret {ns}/{name} ({})", s.message),
            ));
        }
        Err(e) => return Err(problem("TokenSecretUnreadable", format!("{what}: {e}"))),
    };
    let bytes = secret.data.as_ref().and_then(|d| d.get(key)).map(|b| b.0.clone());
    let Some(bytes) = bytes else {
        return Err(problem(
            "TokenSecretNotFound",
            format!("{what}: Secret {ns}/{name} has no key {key:?}"),
        ));
    };
    String::from_utf8(bytes).map(|s| s.trim().to_owned()).map_err(|_| {
        problem(
            "InvalidToken",
            format!("{what}: Secret {ns}/{name} key {key:?} is not text"),
        )
    })
}

/// The fleet's REST target: its token from the Secret, the tenant and URL from the token's
/// claims unless `spec.connection.serverUrl` says otherwise, and the CA of `caSecretRef`.
pub(crate) async fn target(client: &Client, hw: &HatchetWorker, ns: &str) -> Result<Target, Error> {
    let c = &hw.spec.connection;
    let token = secret_value(
        client,
        ns,
        &c.token_secret_ref.name,
        &c.token_secret_ref.key,
        "spec.connection.tokenSecretRef",
    )
    .await?;
    let claims = claims(&token)?;
    let base_url = claims.rest_url(c.server_url.as_deref()).map_err(|e| match e {
        TokenError::NoServerUrl => problem(
            "InvalidToken",
            "the token has no server_url claim; set spec.connection.serverUrl",
        ),
        e if c.server_url.is_some() => problem("InvalidToken", format!("spec.connection.serverUrl: {e}")),
        e => problem("InvalidToken", format!("the token's server_url claim: {e}")),
    })?;
    let ca_pem = match (&c.tls.ca_secret_ref, c.tls.strategy) {
        (Some(ca), TlsStrategy::Tls | TlsStrategy::Mtls) if base_url.starts_with("https://") => Some(
            secret_value(client, ns, &ca.name, "ca.crt", "spec.connection.tls.caSecretRef")
                .await?
                .into_bytes(),
        ),
        _ => None,
    };
    Ok(Target {
        base_url,
        tenant: claims.sub,
        token,
        ca_pem,
    })
}

/// An HTTP client for a target (trusting its CA, if it names one).
pub(crate) fn http_client(target: &Target) -> Result<reqwest::Client, Error> {
    let mut b = reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .connect_timeout(Duration::from_secs(5));
    if let Some(pem) = &target.ca_pem {
        let cert = reqwest::Certificate::from_pem(pem)
            .map_err(|e| problem("InvalidCA", format!("spec.connection.tls.caSecretRef: ca.crt: {e}")))?;
        b = b.add_root_certificate(cert);
    }
    b.build()
        .map_err(|e| problem("EngineUnreachable", format!("HTTP client: {e}")))
}

/// The engine's answers for one fleet: its workers (by the fleet's Hatchet label) and the
/// tenant's queue counts.
pub(crate) async fn read(
    http: &reqwest::Client,
    target: &Target,
    fleet_label: &str,
) -> Result<(Vec<EngineWorker>, BTreeMap<String, i64>), Error> {
    let workers_url = format!("{}/api/v1/tenants/{}/worker", target.base_url, target.tenant);
    let queues_url = format!(
        "{}/api/v1/tenants/{}/step-run-queue-metrics",
        target.base_url, target.tenant
    );
    // `key:value`; the fleet label's value is `<namespace>.<name>` (DNS names: nothing to escape).
    let filtered = format!(
        "{workers_url}?labels={}%3A{fleet_label}",
        crate::desired::FLEET_LABEL.replace('/', "%2F")
    );
    let workers = get(http.get(&filtered), target, &workers_url);
    let queues = get(http.get(&queues_url), target, &queues_url);
    let (workers, queues) = tokio::try_join!(workers, queues)?;
    let workers = parse_workers(&workers).map_err(|e| {
        problem(
            "EngineAnswerInvalid",
            format!("GET {workers_url}: unexpected answer: {e}"),
        )
    })?;
    let queues = parse_queues(&queues).map_err(|e| {
        problem(
            "EngineAnswerInvalid",
            format!("GET {queues_url}: unexpected answer: {e}"),
        )
    })?;
    Ok((workers, queues))
}

async fn get(req: reqwest::RequestBuilder, target: &Target, url: &str) -> Result<Vec<u8>, Error> {
    let resp = req
        .bearer_auth(&target.token)
        .send()
        .await
        .map_err(|e| problem("EngineUnreachable", format!("GET {url}: {}", without_url(&e))))?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(problem(
            "EngineRefusedToken",
            format!("GET {url}: the engine answered {status} to the fleet's token"),
        ));
    }
    if !status.is_success() {
        return Err(problem(
            "EngineError",
            format!("GET {url}: the engine answered {status}"),
        ));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| problem("EngineUnreachable", format!("GET {url}: {}", without_url(&e))))?;
    Ok(body.to_vec())
}

/// A reqwest error's cause without the URL (the caller names it already).
fn without_url(e: &reqwest::Error) -> String {
    let mut msg = if e.is_timeout() {
        format!("no answer within {}s", CALL_TIMEOUT.as_secs())
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}

/// The prefix the Hatchet namespace puts before worker names, as the official SDKs do:
/// lowercased, with a trailing `_`.
pub(crate) fn worker_prefix(namespace: Option<&str>) -> String {
    hatchet_contract::namespace::normalize(namespace.unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    fn jwt(payload: &str) -> String {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload);
        format!("eyJhbGciOiJFUzI1NiJ9.{b}.c2ln")
    }

    #[test]
    fn token_claims_give_tenant_and_url_or_a_clear_refusal() {
        let c = claims(&jwt(r#"{"sub":"t-1","server_url":"http://e:8080"}"#)).unwrap();
        assert_eq!(
            (c.sub.as_str(), c.server_url.as_deref()),
            ("t-1", Some("http://e:8080"))
        );
        for bad in ["", "abc", "a.!!!.c", &jwt("nope"), &jwt(r#"{"sub":""}"#)] {
            let e = claims(bad).err().unwrap();
            assert!(
                matches!(
                    &e,
                    Error::ScalingSignal {
                        reason: "InvalidToken",
                        ..
                    }
                ),
                "{bad}: {e}"
            );
            assert!(e.to_string().contains("not a Hatchet API token"), "{e}");
        }
    }

    #[test]
    fn worker_names_are_prefixed_as_the_sdks_do() {
        assert_eq!(worker_prefix(None), "");
        assert_eq!(worker_prefix(Some("")), "");
        assert_eq!(worker_prefix(Some("Team")), "team_");
        assert_eq!(worker_prefix(Some("team_")), "team_");
    }

    #[test]
    fn a_target_never_shows_its_token() {
        let t = Target {
            base_url: "http://e".into(),
            tenant: "t".into(),
            token: "secret-token-value".into(),
            ca_pem: None,
        };
        assert!(!format!("{t:?}").contains("secret-token-value"));
    }
}
