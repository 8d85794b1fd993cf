//! Shared harness for the end-to-end tests: finds the local world that `tests/env/up`
//! started (through the env file it writes) and gives tests typed access to it.
//!
//! Tests never start peers themselves: `tests/run` brings the world up first, so a missing
//! env file is an error that says how to start it, never a silent skip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Why the harness could not describe the local world.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// The env file is missing: the world was not started (fatal for the test run).
    #[error(
        "cannot read {path}: {source}; start the local world with tests/env/up (or run tests/run)"
    )]
    EnvFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A variable the tests need is absent from the env file (fatal).
    #[error("{0} is not set in the env file written by tests/env/up")]
    Missing(&'static str),
    /// The token is not a JWT whose payload is base64url JSON (fatal).
    #[error("HATCHET_CLIENT_TOKEN is not a readable JWT: {0}")]
    Token(String),
}

/// The variables `tests/env/up` exported for the running world.
#[derive(Debug, Clone)]
pub struct World {
    vars: BTreeMap<String, String>,
}

impl World {
    /// Reads the env file named by `HATCHET_E2E_ENV_FILE`, else `tests/env/.run/env`.
    pub fn load() -> Result<Self, WorldError> {
        let path = std::env::var_os("HATCHET_E2E_ENV_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../env/.run/env"));
        let text = std::fs::read_to_string(&path)
            .map_err(|source| WorldError::EnvFile { path, source })?;
        Ok(Self {
            vars: parse_env_file(&text),
        })
    }

    /// A variable from the env file.
    pub fn var(&self, name: &'static str) -> Result<&str, WorldError> {
        self.vars
            .get(name)
            .map(String::as_str)
            .ok_or(WorldError::Missing(name))
    }

    /// The API token for the default tenant.
    pub fn token(&self) -> Result<&str, WorldError> {
        self.var("HATCHET_CLIENT_TOKEN")
    }

    /// The REST base URL (no trailing slash).
    pub fn server_url(&self) -> Result<&str, WorldError> {
        self.var("HATCHET_CLIENT_SERVER_URL")
            .map(|u| u.trim_end_matches('/'))
    }

    /// The tenant the token belongs to.
    pub fn tenant_id(&self) -> Result<&str, WorldError> {
        self.var("HATCHET_CLIENT_TENANT_ID")
    }

    /// The claims inside the token, read without verifying the signature (as the SDKs do).
    pub fn token_claims(&self) -> Result<serde_json::Value, WorldError> {
        decode_claims(self.token()?)
    }
}

/// Parses `export NAME=value` lines; single or double quotes around the value are removed.
fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                .unwrap_or(v);
            Some((k.trim().to_owned(), v.to_owned()))
        })
        .collect()
}

fn decode_claims(token: &str) -> Result<serde_json::Value, WorldError> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| WorldError::Token("expected three dot-separated parts".into()))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|e| WorldError::Token(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| WorldError::Token(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines_are_parsed_and_unquoted() {
        let vars = parse_env_file(
            "# comment\nexport A=1\nB='two words'\nexport C=\"x=y\"\n\nnot a pair\n",
        );
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "x=y");
        assert_eq!(vars.len(), 3);
    }

    #[test]
    fn claims_come_from_the_middle_part() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"t1","server_url":"http://h"}"#);
        let claims = decode_claims(&format!("eyJhbGciOiJFUzI1NiJ9.{payload}.sig")).unwrap();
        assert_eq!(claims["sub"], "t1");
        assert!(decode_claims("no-dots").is_err());
    }
}
