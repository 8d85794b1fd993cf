//! Reading (not verifying: that is the engine's job) the claims of a Hatchet API token, as the
//! official SDKs do: the token tells its holder the tenant and where the engine is.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// The claims a worker or the operator needs from a token.
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

/// Why a token is not a Hatchet token, or the engine address it leads to is unusable; never
/// includes the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Empty or blank.
    #[error("it is empty")]
    Empty,
    /// Not three dot-separated parts.
    #[error("expected a JWT with three dot-separated parts")]
    NotJwt,
    /// The payload part is not base64url.
    #[error("the payload is not base64url")]
    NotBase64,
    /// The payload is not the claims JSON.
    #[error("the payload is not the expected JSON ({0})")]
    NotClaims(String),
    /// The `sub` claim is empty.
    #[error("the `sub` claim (tenant id) is empty")]
    NoTenant,
    /// No server URL is set and the token has no `server_url` claim.
    #[error("no server URL is set and the token has no server_url claim")]
    NoServerUrl,
    /// The server URL (set, or claimed) is not an HTTP(S) URL.
    #[error("the server URL must start with http:// or https://, not {0:?}")]
    ServerUrlNotHttp(String),
}

impl TokenClaims {
    /// The engine's REST base URL, without a trailing `/`: `given` (an explicit setting wins,
    /// as in the official SDKs) or else the token's `server_url` claim. Resolved here once so
    /// the worker, the REST client and the operator agree on where a token leads.
    pub fn rest_url(&self, given: Option<&str>) -> Result<String, TokenError> {
        let url = given.or(self.server_url.as_deref()).ok_or(TokenError::NoServerUrl)?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(TokenError::ServerUrlNotHttp(url.to_owned()));
        }
        Ok(url.trim_end_matches('/').to_owned())
    }
}

/// Decodes the claims of a JWT.
pub fn read_claims(token: &str) -> Result<TokenClaims, TokenError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(TokenError::Empty);
    }
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::NotJwt);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| TokenError::NotBase64)?;
    let claims: TokenClaims = serde_json::from_slice(&bytes).map_err(|e| TokenError::NotClaims(e.to_string()))?;
    if claims.sub.is_empty() {
        return Err(TokenError::NoTenant);
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
        assert_eq!(read_claims(&format!(" {} ", token(r#"{"sub":"t"}"#))).unwrap().sub, "t");
    }

    #[test]
    fn malformed_tokens_say_what_is_wrong_without_echoing_them() {
        let cases = [
            ("", TokenError::Empty),
            ("abc", TokenError::NotJwt),
            ("a.b", TokenError::NotJwt),
            ("a.b.c.d", TokenError::NotJwt),
            ("a.!!!.c", TokenError::NotBase64),
            (&token(r#"{"sub":""}"#), TokenError::NoTenant),
        ];
        for (t, want) in cases {
            assert_eq!(read_claims(t).unwrap_err(), want, "{t:?}");
        }
        let t = token("not json");
        let msg = read_claims(&t).unwrap_err().to_string();
        assert!(msg.starts_with("the payload is not the expected JSON"), "{msg}");
        assert!(!msg.contains(&t), "{msg}");
    }

    #[test]
    fn the_rest_url_is_the_setting_else_the_claim_and_must_be_http() {
        let claims = read_claims(&token(r#"{"sub":"t","server_url":"https://claimed/"}"#)).unwrap();
        assert_eq!(claims.rest_url(None).unwrap(), "https://claimed");
        assert_eq!(claims.rest_url(Some("http://set:8080/")).unwrap(), "http://set:8080");
        for bad in ["set:8080", "", " http://set:8080"] {
            assert_eq!(
                claims.rest_url(Some(bad)).unwrap_err(),
                TokenError::ServerUrlNotHttp(bad.into()),
                "{bad:?}"
            );
        }
        let bare = read_claims(&token(r#"{"sub":"t"}"#)).unwrap();
        assert_eq!(bare.rest_url(None).unwrap_err(), TokenError::NoServerUrl);
        let odd = read_claims(&token(r#"{"sub":"t","server_url":"grpc://h"}"#)).unwrap();
        assert!(odd.rest_url(None).unwrap_err().to_string().contains("\"grpc://h\""));
    }
}
