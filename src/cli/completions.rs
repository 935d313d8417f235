//! `layerfit completions SHELL`: a completion script for the shell, generated from the same
//! clap definitions the binary parses with (so it never goes stale).

use super::{exit, output::Printer, Cli, Failure};
use clap::CommandFactory;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The shell: bash, zsh, fish, powershell or elvish. Install, e.g. for bash:
    /// `layerfit completions bash > ~/.local/share/bash-completion/completions/layerfit`.
    pub shell: clap_complete::Shell,
}

pub fn run(args: Args) -> Result<u8, Failure> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "layerfit", &mut script);
    Printer::new(false).raw(&String::from_utf8_lossy(&script));
    Ok(exit::OK)
}
