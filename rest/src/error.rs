//! The crate's one error type: what the engine answered, or why no answer came.

use crate::generated::{self, types::ApiErrorBody};

/// What went wrong with a REST call.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine answered with an error status; `message` is what it said.
    #[error("{operation}: the engine answered {status}: {message}")]
    Engine {
        /// The operation, as the engine's contract names it (e.g. `v1-task:cancel`).
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// The engine's error descriptions, joined.
        message: String,
    },
    /// The engine could not be reached, or the call could not be sent.
    #[error("{operation}: {message}")]
    Transport {
        /// The operation.
        operation: &'static str,
        /// The transport's error.
        message: String,
    },
    /// The engine's answer was not what its contract says.
    #[error("{operation}: unexpected answer: {message}")]
    Decode {
        /// The operation.
        operation: &'static str,
        /// What did not fit.
        message: String,
    },
    /// What the caller passed cannot be sent (refused before any call).
    #[error("bad input: {0}")]
    Input(String),
    /// The client is configured wrongly (a server URL or token that cannot be used).
    #[error("configuration: {0}")]
    Config(String),
}

impl Error {
    /// The HTTP status the engine answered with, if it answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Engine { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the engine said the thing does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Reads `e` from the generated client (an undocumented error answer's body too).
    pub(crate) async fn from_call(operation: &'static str, e: generated::Error<ApiErrorBody>) -> Self {
        match e {
            generated::Error::ErrorResponse(rv) => Error::Engine {
                operation,
                status: rv.status().as_u16(),
                message: describe(&rv.into_inner()),
            },
            generated::Error::UnexpectedResponse(r) => {
                let status = r.status().as_u16();
                let body = r.text().await.unwrap_or_default();
                let message = serde_json::from_str::<serde_json::Value>(&body)
                    .map(|b| describe(&b))
                    .unwrap_or_else(|_| body.chars().take(300).collect());
                Error::Engine {
                    operation,
                    status,
                    message,
                }
            }
            generated::Error::InvalidResponsePayload(bytes, err) => Error::Decode {
                operation,
                message: format!("{err} in {}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)])),
            },
            generated::Error::CommunicationError(e)
            | generated::Error::InvalidUpgrade(e)
            | generated::Error::ResponseBodyError(e) => Error::Transport {
                operation,
                message: e.to_string(),
            },
            generated::Error::InvalidRequest(m) | generated::Error::Custom(m) => {
                Error::Transport { operation, message: m }
            }
        }
    }
}

/// The body of a generated call's answer, or the error it was, read as [`Error::from_call`] reads it.
pub(crate) async fn answer<T>(
    operation: &'static str,
    call: impl std::future::Future<
        Output = std::result::Result<generated::ResponseValue<T>, generated::Error<ApiErrorBody>>,
    >,
) -> Result<T> {
    match call.await {
        Ok(r) => Ok(r.into_inner()),
        Err(e) => Err(Error::from_call(operation, e).await),
    }
}

/// What an error answer says: the descriptions of `APIErrors` or `APIError`, or the
/// `message` of the engine's middleware, else the body itself.
fn describe(body: &serde_json::Value) -> String {
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let said = if let Some(errors) = body["errors"].as_array() {
        let all: Vec<String> = errors.iter().filter_map(|e| text(&e["description"])).collect();
        (!all.is_empty()).then(|| all.join("; "))
    } else {
        text(&body["description"]).or_else(|| text(&body["message"]))
    };
    said.unwrap_or_else(|| match body {
        serde_json::Value::Null => "(no message)".into(),
        other => other.to_string().chars().take(300).collect(),
    })
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::describe;
    use serde_json::json;

    #[test]
    fn every_error_shape_the_engine_answers_is_read() {
        let errors = json!({"errors": [{"description": "bad since"}, {"description": "bad until"}]});
        assert_eq!(describe(&errors), "bad since; bad until");
        assert_eq!(
            describe(&json!({"description": "no such run", "code": 404})),
            "no such run"
        );
        assert_eq!(
            describe(&json!({"message": "scheduled workflow run not found"})),
            "scheduled workflow run not found"
        );
        assert_eq!(describe(&json!(null)), "(no message)");
        assert_eq!(describe(&json!({"odd": 1})), r#"{"odd":1}"#);
    }
}
