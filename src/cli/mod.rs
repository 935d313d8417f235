//! The command line: clap types, one module per command, and the single place where
//! outcomes become exit codes (documented in `docs/user-guide.md`).

mod bench;
pub mod calibration;
mod candidates;
mod catalog;
mod chart;
mod check_requirements;
mod completions;
mod disk_speed;
mod draft;
mod hardware;
mod inspect;
mod measured;
mod memory_bars;
mod models;
pub(crate) mod output;
mod plan;
mod plan_report;
mod planning;
mod profiles;
mod projector;
mod projector_source;
mod pull;
mod rpc_compute;
mod rpc_server;
mod run;
mod run_images;
mod run_prepare;
mod run_turn;
mod schemas;
mod self_check_report;
mod serve;
mod tiers;

pub use schemas::json_schemas;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit codes, a public contract (docs/user-guide.md, "Exit codes").
pub mod exit {
    /// Done; for verdicts: compatible. Also a closed stdout (`| head`): the reader has what it wanted.
    pub const OK: u8 = 0;
    /// layerfit itself failed (a bug, or the engine could not load a model it should).
    pub const INTERNAL: u8 = 1;
    /// Bad input: a flag, a file, an environment variable, a model name.
    pub const BAD_INPUT: u8 = 2;
    /// `catalog verify`: the file and the catalog entry disagree.
    pub const DISAGREES: u8 = 3;
    /// `install/install.sh` and `install/prerequisites.sh`: build prerequisites missing.
    pub const PREREQUISITES: u8 = 4;
    /// Degraded: runs, with warnings (or a degraded plan declined).
    pub const DEGRADED: u8 = 10;
    /// Incompatible: the request cannot be met on this machine.
    pub const INCOMPATIBLE: u8 = 20;
    /// Interrupted by Ctrl-C (SIGINT), as shells report it (128 + 2).
    pub const INTERRUPTED: u8 = 130;
}

/// The exit code for a verdict (check-requirements, plan).
pub fn verdict_code(v: crate::plan::Verdict) -> u8 {
    match v {
        crate::plan::Verdict::Compatible => exit::OK,
        crate::plan::Verdict::Degraded => exit::DEGRADED,
        crate::plan::Verdict::Incompatible => exit::INCOMPATIBLE,
    }
}

/// `--version`: the crate version, the engine back-ends compiled in and the bundled llama.cpp.
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\nengine back-ends: cpu",
    env!("LAYERFIT_BACKENDS"),
    "\nbundled llama.cpp: ",
    env!("LAYERFIT_LLAMA_CPP")
);

#[derive(Parser, Debug)]
#[command(
    name = "layerfit",
    version,
    long_version = LONG_VERSION,
    about = "Can this machine run this local LLM at the context I need, and how?",
    after_help = "Exit codes: 0 compatible/done, 1 internal error, 2 bad input, 3 catalog entry differs, \
10 degraded, 20 incompatible, 130 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Read a GGUF model's header and show its exact memory footprint.
    #[command(after_help = "Examples:
  layerfit inspect ~/models/qwen2.5-coder-7b-instruct-q4_k_m.gguf --ctx 32k
  layerfit inspect hf://bartowski/Qwen2.5-Coder-7B-Instruct-GGUF:Q4_K_M --json
  layerfit inspect ~/models/gemma-3-4b-it-Q4_K_M.gguf --mmproj auto   # the mmproj file beside it")]
    Inspect(inspect::Args),
    /// Show the machine's RAM, GPUs, disk and CPU (or a described machine's).
    #[command(after_help = "Examples:
  layerfit hardware
  layerfit hardware --gpu \"RTX 4090\" --ram 64G --json")]
    Hardware(hardware::Args),
    /// Plan the GPU/CPU layer split and settings for a model; print a runnable config.
    #[command(after_help = "Examples:
  layerfit plan --model qwen2.5-coder:7b --ctx 32k
  layerfit plan --model ~/models/model.gguf --emit llama-server
  layerfit plan --model hf://bartowski/Qwen2.5-Coder-7B-Instruct-GGUF --gpu \"RTX 3060 12GB\"
  layerfit plan --model llama3.1:8b --max-context --chart plan.svg")]
    Plan(plan::Args),
    /// Can this machine run the model at the required context? Exit 0/10/20.
    #[command(after_help = "Examples:
  layerfit check-requirements --profile basic_12gb
  layerfit check-requirements --model qwen2.5-coder:7b --ctx 32k --json
  layerfit check-requirements --model ~/models/model.gguf --yes   # in an install script

Exit codes: 0 compatible, 10 degraded, 20 incompatible, 2 bad input.")]
    CheckRequirements(check_requirements::Args),
    /// Chat on the bundled llama.cpp with the plan (or a run file from `plan --emit profile`).
    #[command(after_help = "Examples:
  layerfit run --model ~/models/model.gguf
  layerfit run --model qwen2.5-coder:7b --prompt \"Write a haiku about Rust\" --json
  layerfit run --model ~/models/gemma-3-4b-it-Q4_K_M.gguf --mmproj auto --image photo.png")]
    Run(run::Args),
    /// Serve the plan as an OpenAI-compatible endpoint (/v1/chat/completions, streamed or
    /// not, /v1/completions, /v1/models, /health, /metrics), degraded mode in every answer.
    #[command(after_help = "Examples:
  layerfit serve --model ~/models/model.gguf --port 8080
  layerfit serve --model qwen2.5-coder:7b --parallel 4 --api-key \"$KEY\"
  layerfit serve --model ~/models/embed.gguf --embeddings --pooling mean")]
    Serve(serve::Args),
    /// The built-in profiles (use cases and the machines they target).
    Profiles(profiles::Args),
    /// Every model already on this machine (models folder, Ollama, Hugging Face cache,
    /// llama.cpp, LM Studio) and whether it runs here at the context.
    #[command(after_help = "Examples:
  layerfit models
  layerfit models --ctx 8k --json")]
    Models(models::Args),
    /// Download a model (hf://, ollama://, https://) into the models folder: for a
    /// repository, the variant the recommendation picks; resumable, SHA-256 checked.
    #[command(after_help = "Examples:
  layerfit pull hf://bartowski/Qwen2.5-Coder-7B-Instruct-GGUF
  layerfit pull hf://bartowski/Qwen2.5-Coder-7B-Instruct-GGUF:Q4_K_M
  layerfit pull llama3.1:8b
  layerfit pull ollama://qwen2.5-coder:7b")]
    Pull(pull::Args),
    /// The model catalog: list entries, verify one against a real file.
    #[command(after_help = "Examples:
  layerfit catalog list
  layerfit catalog verify ~/models/qwen2.5-coder-7b-instruct-q4_k_m.gguf --entry qwen2.5-coder:7b")]
    Catalog(catalog::Args),
    /// Measure this machine's speed figures through the bundled engine (a few seconds);
    /// plans use them for their expected tokens/s.
    #[command(after_help = "Examples:
  layerfit bench
  layerfit bench --quick --json")]
    Bench(bench::Args),
    /// Serve this machine's devices to other machines over llama.cpp's RPC back-end (their
    /// `--rpc HOST:PORT`); loopback unless --allow-remote.
    #[command(after_help = "Examples:
  layerfit rpc-server --port 50052
  layerfit rpc-server --host 0.0.0.0 --port 50052 --allow-remote   # then: plan --rpc HOST:50052")]
    RpcServer(rpc_server::Args),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(completions::Args),
}

/// What went wrong, and so which exit code.
#[derive(Debug)]
pub enum Failure {
    /// The user's input (a file, a flag value) is unusable: exit 2.
    BadInput(String),
    /// Unusable input with its chain of causes (typed library errors) and a hint: exit 2.
    /// `thing` (a file, a profile) is named first on the error line.
    Input {
        thing: Option<String>,
        error: anyhow::Error,
        hint: Option<String>,
    },
    /// The request cannot be met on this machine (exit 20), with what is missing.
    Infeasible(String),
    /// layerfit itself failed: exit 1.
    Internal(anyhow::Error),
}

impl Failure {
    /// Bad input from a typed error; its `source()` chain becomes `Caused by:` lines.
    pub fn input(e: impl Into<anyhow::Error>) -> Self {
        Failure::Input {
            thing: None,
            error: e.into(),
            hint: None,
        }
    }

    /// Adds a `hint:` line (what to do) to bad input.
    pub fn with_hint(self, h: impl Into<String>) -> Self {
        match self {
            Failure::Input { thing, error, .. } => Failure::Input {
                thing,
                error,
                hint: Some(h.into()),
            },
            Failure::BadInput(m) => Failure::Input {
                thing: None,
                error: anyhow::anyhow!(m),
                hint: Some(h.into()),
            },
            other => other,
        }
    }

    /// Bad input in a named thing: `error: THING: what`, then its causes.
    pub fn input_in(thing: impl std::fmt::Display, e: impl Into<anyhow::Error>) -> Self {
        Failure::Input {
            thing: Some(thing.to_string()),
            error: e.into(),
            hint: None,
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Internal(e)
    }
}

extern "C" fn on_interrupt(_: libc::c_int) {
    // Only async-signal-safe work here: end at once with the documented code.
    // SAFETY: `_exit` is async-signal-safe and touches no Rust state.
    unsafe { libc::_exit(i32::from(exit::INTERRUPTED)) };
}

pub fn main() -> ExitCode {
    // Ctrl-C ends any command quietly with 130 (`run` replaces this while it generates).
    // SAFETY: installs a handler that only calls `_exit` (async-signal-safe), before any
    // thread starts.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_interrupt as *const () as libc::sighandler_t,
        );
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::OK
            };
            if e.use_stderr() {
                let _ = e.print();
            } else {
                // --help and --version are answers: through stdout, quiet on a closed pipe.
                output::Printer::new(false).raw(&e.render().to_string());
            }
            return ExitCode::from(code);
        }
    };
    if let Err(e) = crate::env_vars::check_all() {
        output::error(&e.to_string());
        return ExitCode::from(exit::BAD_INPUT);
    }
    // Each command gets its printer (people or JSON) and returns its exit code.
    let printer = output::Printer::new(cli.command.wants_json());
    let result = match cli.command {
        Command::Inspect(a) => inspect::run(a, &printer),
        Command::Hardware(a) => hardware::run(a, &printer),
        Command::Plan(a) => plan::run(a, &printer),
        Command::CheckRequirements(a) => check_requirements::run(a, &printer),
        Command::Profiles(a) => profiles::run(a, &printer),
        Command::Run(a) => run::run(a, &printer),
        Command::Serve(a) => serve::run(a, &printer),
        Command::Catalog(a) => catalog::run(a, &printer),
        Command::Models(a) => models::run(a, &printer),
        Command::Pull(a) => pull::run(a, &printer),
        Command::Completions(a) => completions::run(a),
        Command::Bench(a) => bench::run(a, &printer),
        Command::RpcServer(a) => rpc_server::run(a, &printer),
    };
    let (code, head, causes, hint) = match result {
        Ok(code) => return ExitCode::from(code),
        Err(Failure::BadInput(msg)) => (exit::BAD_INPUT, msg, Vec::new(), None),
        Err(Failure::Input { thing, error, hint }) => {
            let head = match thing {
                Some(t) => format!("{t}: {error}"),
                None => error.to_string(),
            };
            (exit::BAD_INPUT, head, causes_of(&error), hint)
        }
        Err(Failure::Infeasible(msg)) => (exit::INCOMPATIBLE, msg, Vec::new(), None),
        Err(Failure::Internal(e)) => (exit::INTERNAL, e.to_string(), causes_of(&e), None),
    };
    output::error_chain(&head, &causes, hint.as_deref());
    ExitCode::from(code)
}

/// The `Caused by:` lines of an error: its sources, outermost first.
fn causes_of(e: &anyhow::Error) -> Vec<String> {
    e.chain().skip(1).map(|c| c.to_string()).collect()
}

impl Command {
    /// Whether the command was asked for one JSON document.
    fn wants_json(&self) -> bool {
        match self {
            Command::Inspect(a) => a.json,
            Command::Hardware(a) => a.json,
            Command::Plan(a) => a.json,
            Command::CheckRequirements(a) => a.json,
            Command::Profiles(a) => a.json,
            Command::Bench(a) => a.json,
            Command::Models(a) => a.json,
            Command::Pull(a) => a.json,
            Command::Run(a) => a.json,
            Command::Serve(_) | Command::RpcServer(_) => false,
            Command::Catalog(a) => catalog::wants_json(a),
            Command::Completions(_) => false,
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
    if num.trim_start().starts_with('-') {
        return Err(format!(
            "'{s}' is negative: a context is a positive token count (e.g. 32768 or 32k)"
        ));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a token count (e.g. 32768 or 32k)"))?;
    match n.checked_mul(mul) {
        Some(v) if v > 0 && v <= 1 << 24 => Ok(v),
        _ => Err(format!("'{s}' is out of range (1 to 16M tokens)")),
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::{CommandFactory, Parser};

    /// A help example's words, as a shell splits them (double quotes, a trailing comment).
    fn words(line: &str) -> Vec<String> {
        let line = line.split(" # ").next().unwrap_or(line);
        let (mut out, mut cur, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
        for c in line.chars() {
            match c {
                '"' => (quoted, any) = (!quoted, true),
                ' ' if !quoted => {
                    if any {
                        out.push(std::mem::take(&mut cur));
                    }
                    any = false;
                }
                c => (cur, any) = (cur + &c.to_string(), true),
            }
        }
        if any {
            out.push(cur);
        }
        out
    }

    #[test]
    fn every_help_example_parses_as_written() {
        let cmd = Cli::command();
        let mut checked = 0;
        for sub in cmd.get_subcommands() {
            let Some(help) = sub.get_after_help().map(|h| h.to_string()) else {
                continue;
            };
            for line in help
                .lines()
                .filter(|l| l.trim_start().starts_with("layerfit "))
            {
                let w = words(line.trim());
                assert_eq!(
                    w[1],
                    sub.get_name(),
                    "{line}: an example of another command"
                );
                if let Err(e) = Cli::try_parse_from(&w) {
                    panic!("`{}` does not parse: {e}", line.trim());
                }
                checked += 1;
            }
        }
        // Every command that takes a model or serves has examples.
        assert!(checked >= 25, "{checked} examples");
        assert_eq!(
            words(r#"layerfit x --gpu "RTX 3060 12GB" --ram 1G   # note"#),
            ["layerfit", "x", "--gpu", "RTX 3060 12GB", "--ram", "1G"]
        );
    }
}
