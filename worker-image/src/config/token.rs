//! The token's claims (the rule lives in `hatchet_contract::token`, shared with the operator),
//! with errors that name `HATCHET_CLIENT_TOKEN` so a misconfigured pod says what to fix.

use hatchet_contract::token::{TokenClaims, TokenError};

use crate::Error;

/// Decodes the payload of a JWT; the token itself is never echoed.
pub fn read_claims(token: &str) -> Result<TokenClaims, Error> {
    hatchet_contract::token::read_claims(token).map_err(|e| match e {
        TokenError::Empty => Error::Config("HATCHET_CLIENT_TOKEN is empty".into()),
        e => Error::Config(format!("HATCHET_CLIENT_TOKEN is not a valid Hatchet token: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_tokens_name_the_variable_without_echoing_it() {
        for t in ["", "abc", "a.b", "a.!!!.c"] {
            let msg = read_claims(t).unwrap_err().to_string();
            assert!(msg.contains("HATCHET_CLIENT_TOKEN"), "{msg}");
            if !t.is_empty() {
                assert!(!msg.contains(t), "token leaked into {msg}");
            }
        }
    }
}
