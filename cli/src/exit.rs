//! The exit codes a script can branch on, and the one place errors are mapped onto them.

use std::fmt;

use hatchet_rest::Error as RestError;

/// What a `hatchet` invocation ended with, as its process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Code {
    /// The engine answered with an error, or an operation failed.
    Failed = 1,
    /// Bad usage or input (clap's own usage errors are 2 too).
    Usage = 2,
    /// What was asked for does not exist (the engine's 404, or an unregistered workflow name).
    NotFound = 3,
    /// The engine could not be reached, or the configuration is missing or unusable.
    Unreachable = 4,
    /// The awaited run ended FAILED or CANCELLED.
    RunFailed = 5,
    /// The wait for a run ran out before the run ended.
    TimedOut = 6,
}

/// The `--help` text that lists the exit codes, kept next to the codes it describes.
pub(crate) const HELP: &str = "\
Exit codes:
  0  success
  1  the engine answered with an error, or an operation failed
  2  bad usage or input
  3  not found (the engine's 404, or a workflow name that is not registered)
  4  the engine could not be reached, or the configuration is missing
  5  the run ended FAILED or CANCELLED (trigger --wait, runs result)
  6  trigger --wait timed out";

/// An error that carries its own exit code: what the CLI itself refuses or concludes, as
/// opposed to what the REST client reports.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: Code,
    pub(crate) message: String,
}

impl Failure {
    /// A failure that ends the process with `code`, saying `message` on stderr.
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Bad usage or input the CLI caught itself.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(Code::Usage, message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The exit code for `error`: the first [`Failure`] or REST error in its chain decides; any
/// other error is an operation that failed.
pub(crate) fn code(error: &anyhow::Error) -> Code {
    for cause in error.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.code;
        }
        if let Some(e) = cause.downcast_ref::<RestError>() {
            return rest_code(e);
        }
    }
    Code::Failed
}

/// The exit code for what the REST client reported.
pub(crate) fn rest_code(error: &RestError) -> Code {
    match error {
        RestError::Engine { status: 404, .. } => Code::NotFound,
        RestError::Transport { .. } | RestError::Config(_) => Code::Unreachable,
        RestError::Input(_) => Code::Usage,
        _ => Code::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_errors_map_onto_exit_codes() {
        let engine = |status| RestError::Engine {
            operation: "op",
            status,
            message: "m".into(),
        };
        let cases = [
            (engine(404), Code::NotFound),
            (engine(400), Code::Failed),
            (engine(500), Code::Failed),
            (
                RestError::Transport {
                    operation: "op",
                    message: "connection refused".into(),
                },
                Code::Unreachable,
            ),
            (
                RestError::Decode {
                    operation: "op",
                    message: "m".into(),
                },
                Code::Failed,
            ),
            (RestError::Input("priority 4".into()), Code::Usage),
            (RestError::Config("no token".into()), Code::Unreachable),
        ];
        for (error, want) in cases {
            assert_eq!(rest_code(&error), want, "{error}");
        }
    }

    #[test]
    fn the_first_coded_cause_decides() {
        let rest = anyhow::Error::new(RestError::Engine {
            operation: "op",
            status: 404,
            message: "m".into(),
        })
        .context("run 7");
        assert_eq!(code(&rest), Code::NotFound);
        let own = anyhow::Error::new(Failure::new(Code::TimedOut, "still running")).context("waiting");
        assert_eq!(code(&own), Code::TimedOut);
        assert_eq!(code(&anyhow::anyhow!("something else")), Code::Failed);
    }

    #[test]
    fn the_help_lists_every_code() {
        for code in [
            Code::Failed,
            Code::Usage,
            Code::NotFound,
            Code::Unreachable,
            Code::RunFailed,
            Code::TimedOut,
        ] {
            assert!(HELP.contains(&format!("\n  {}  ", code as u8)), "{code:?}");
        }
    }
}
