//! `hatchet`: a tenant's runs, workflows, workers, crons, schedules, logs, events, rate limits
//! and metrics from the shell, over the typed REST clients of `hatchet-rest`.

mod args;
mod bulk;
mod commands;
mod config;
mod exit;
mod output;
mod parse;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hatchet: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hatchet: {e:#}");
            ExitCode::from(exit::code(&e) as u8)
        }
    }
}
