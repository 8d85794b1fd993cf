//! The REST client the global flags (or their environment variables) describe.

use hatchet_contract::env;
use hatchet_rest::{Error, Rest};

use crate::args::Global;

/// A client for the tenant `global` names. A missing token is a configuration error (exit 4)
/// that says how to give one; empty flags or variables count as unset.
pub(crate) fn rest(global: &Global) -> Result<Rest, Error> {
    let set = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let token =
        set(&global.token).ok_or_else(|| Error::Config(format!("no API token: set {} or pass --token", env::TOKEN)))?;
    Rest::from_token(
        &token,
        set(&global.server_url).as_deref(),
        set(&global.tenant).as_deref(),
        global.namespace.as_deref().unwrap_or(""),
    )
}
