use super::{exit, Cli};
use clap::CommandFactory;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}

/// Prints the completion script for a shell, e.g.
/// `poolside completions bash > /etc/bash_completion.d/poolside`.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    clap_complete::generate(
        args.shell,
        &mut Cli::command(),
        "poolside",
        &mut std::io::stdout(),
    );
    Ok(ExitCode::from(exit::OK))
}

/// Prints the manual page (roff), e.g. `poolside man > poolside.1`.
pub fn man() -> anyhow::Result<ExitCode> {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
    Ok(ExitCode::from(exit::OK))
}
