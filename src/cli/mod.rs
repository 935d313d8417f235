//! The command line: clap types, one module per command, and the single place where
//! outcomes become exit codes (documented in `docs/user-guide.md`).

mod catalog;
mod check_requirements;
mod hardware;
mod inspect;
mod output;
mod plan;
mod profiles;
mod run;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit codes, a public contract.
pub mod exit {
    pub const OK: u8 = 0;
    pub const INTERNAL: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const DEGRADED: u8 = 10;
    pub const INCOMPATIBLE: u8 = 20;
}

/// The exit code for a verdict (check-requirements, plan).
pub fn verdict_code(v: crate::plan::Verdict) -> u8 {
    match v {
        crate::plan::Verdict::Compatible => exit::OK,
        crate::plan::Verdict::Degraded => exit::DEGRADED,
        crate::plan::Verdict::Incompatible => exit::INCOMPATIBLE,
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "layerfit",
    version,
    about = "Can this machine run this local LLM at the context I need, and how?"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Read a GGUF model's header and show its exact memory footprint.
    Inspect(inspect::Args),
    /// Show the machine's RAM, GPUs, disk and CPU (or a described machine's).
    Hardware(hardware::Args),
    /// Plan the GPU/CPU layer split and settings for a model; print a runnable config.
    Plan(plan::Args),
    /// Can this machine run the model at the required context? Exit 0/10/20.
    CheckRequirements(check_requirements::Args),
    /// Chat on the bundled llama.cpp with the plan (or a run file from `plan --emit profile`).
    Run(run::Args),
    /// The built-in profiles (use cases and the machines they target).
    Profiles(profiles::Args),
    /// The model catalog: list entries, verify one against a real file.
    Catalog(catalog::Args),
}

/// What went wrong, and so which exit code.
#[derive(Debug)]
pub enum Failure {
    /// The user's input (a file, a flag value) is unusable: exit 2.
    BadInput(String),
    /// The request cannot be met on this machine (exit 20), with what is missing.
    Infeasible(String),
    /// layerfit itself failed: exit 1.
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Internal(e)
    }
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::OK
            });
        }
    };
    let result = match cli.command {
        Command::Inspect(a) => inspect::run(a),
        Command::Hardware(a) => hardware::run(a),
        Command::Plan(a) => plan::run(a),
        Command::CheckRequirements(a) => check_requirements::run(a),
        Command::Profiles(a) => profiles::run(a),
        Command::Run(a) => run::run(a),
        Command::Catalog(a) => catalog::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Failure::BadInput(msg)) => {
            output::error(&msg);
            ExitCode::from(exit::BAD_INPUT)
        }
        Err(Failure::Infeasible(msg)) => {
            output::error(&msg);
            ExitCode::from(exit::INCOMPATIBLE)
        }
        Err(Failure::Internal(e)) => {
            output::error(&format!("{e:#}"));
            ExitCode::from(exit::INTERNAL)
        }
    }
}

/// Parses a token count: `32768`, `32k`, `32K` (x1024), `1m`.
pub fn parse_tokens(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mul) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1024),
        Some('m' | 'M') => (&t[..t.len() - 1], 1024 * 1024),
        _ => (t, 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a token count (e.g. 32768 or 32k)"))?;
    match n.checked_mul(mul) {
        Some(v) if v > 0 && v <= 1 << 24 => Ok(v),
        _ => Err(format!("'{s}' is out of range (1 to 16M tokens)")),
    }
}
