//! Reading (not verifying) the claims of a Hatchet API token, as the official SDKs do:
//! the token tells a worker its tenant and where the engine is.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::Error;

/// The claims a worker needs from its token.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct TokenClaims {
    /// Tenant id.
    pub sub: String,
    /// REST base URL of the engine.
    #[serde(default)]
    pub server_url: Option<String>,
    /// gRPC `host:port` of the engine.
    #[serde(default)]
    pub grpc_broadcast_address: Option<String>,
}

/// Decodes the payload of a JWT. Errors name `HATCHET_CLIENT_TOKEN` so a misconfigured pod
/// says what to fix; the token itself is never echoed.
pub fn read_claims(token: &str) -> Result<TokenClaims, Error> {
    let bad = |why: &str| Error::Config(format!("HATCHET_CLIENT_TOKEN is not a valid Hatchet token: {why}"));
    if token.trim().is_empty() {
        return Err(Error::Config("HATCHET_CLIENT_TOKEN is empty".into()));
    }
    let mut parts = token.trim().split('.');
    let (Some(_), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected a JWT with three dot-separated parts"));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad("the payload is not base64url"))?;
    let claims: TokenClaims =
        serde_json::from_slice(&bytes).map_err(|e| bad(&format!("the payload is not the expected JSON ({e})")))?;
    if claims.sub.is_empty() {
        return Err(bad("the `sub` claim (tenant id) is empty"));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(payload: &str) -> String {
        format!("eyJhbGciOiJFUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
    }

    #[test]
    fn reads_tenant_and_addresses() {
        let c = read_claims(&token(
            r#"{"sub":"t-1","server_url":"http://h:8080","grpc_broadcast_address":"h:7077","exp":1}"#,
        ))
        .unwrap();
        assert_eq!(c.sub, "t-1");
        assert_eq!(c.server_url.as_deref(), Some("http://h:8080"));
        assert_eq!(c.grpc_broadcast_address.as_deref(), Some("h:7077"));
    }

    #[test]
    fn malformed_tokens_name_the_variable_without_echoing_it() {
        for t in ["", "abc", "a.b", "a.!!!.c", &token("not json"), &token(r#"{"sub":""}"#)] {
            let msg = read_claims(t).unwrap_err().to_string();
            assert!(msg.contains("HATCHET_CLIENT_TOKEN"), "{msg}");
            if !t.is_empty() {
                assert!(!msg.contains(t), "token leaked into {msg}");
            }
        }
    }
}
