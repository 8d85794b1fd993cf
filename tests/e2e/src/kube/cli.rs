//! `kubectl` itself, for the tests that exercise the user's command-line path (`kubectl
//! scale`, printer columns, `auth can-i`, admission errors as kubectl prints them); everything
//! else goes through the typed client.

use crate::{World, run, run_with_stdin};

/// `kubectl ARGS...`; its stdout, or an error carrying the command, status and stderr.
pub fn kubectl(world: &World, args: &[&str]) -> Result<String, String> {
    run(world.kubectl().map_err(|e| e.to_string())?.args(args)).map_err(|e| e.to_string())
}

/// `kubectl ARGS...` with `input` on stdin (`-f -` manifests).
pub fn kubectl_stdin(world: &World, args: &[&str], input: &str) -> Result<String, String> {
    run_with_stdin(world.kubectl().map_err(|e| e.to_string())?.args(args), input.as_bytes()).map_err(|e| e.to_string())
}
