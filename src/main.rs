//! `poolside`: parse, dispatch, turn the outcome into an exit code.

mod aws;
mod blueprint;
mod cli;
mod config;
mod database;
mod drift;
mod engine;
mod iam_policy;
mod image;
mod interrupt;
mod local_plane;
mod model;
mod names;
mod onboarding;
mod ops;
mod output;
mod process;
mod registry_credentials;
mod resources;
mod state;
mod templates;
mod verify;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // `poolside plan | head` ends quietly, as Unix tools do, instead of
    // panicking on the closed pipe: take back the default SIGPIPE action
    // that the Rust runtime replaces with "ignore".
    // SAFETY: called first, before any thread exists; SIG_DFL is a valid handler.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        );
    }
    // Starts the clock that events' times count from.
    engine::events::now_ms();
    // Usage errors exit 1 like every other error: 2 means "changes found".
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if err.use_stderr() => {
            let _ = err.print();
            return ExitCode::from(cli::exit::ERROR);
        }
        Err(help_or_version) => {
            let _ = help_or_version.print();
            return ExitCode::from(cli::exit::OK);
        }
    };
    let colour_logs = cli.color.apply();
    init_tracing(cli.verbose, colour_logs);
    let json = cli.output == output::Format::Json;
    let command = cli.command.name();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        // The SDK's futures are large in a debug build, and fleet runs a
        // whole session on each worker: room beyond the default 2 MiB.
        .thread_stack_size(8 * 1024 * 1024)
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let outcome = runtime.block_on(async {
        interrupt::install();
        cli::run(cli).await
    });
    let mut interrupted = false;
    let (code, error) = match outcome {
        Ok(code) => (code, None),
        // Whatever failed after Ctrl-C failed because of it.
        Err(err)
            if interrupt::requested() || err.downcast_ref::<interrupt::Interrupted>().is_some() =>
        {
            interrupted = true;
            // A bare "interrupted" follows the summary the run printed; one
            // with context says where it stopped.
            if err.to_string() != interrupt::Interrupted.to_string() {
                eprintln!("{err}");
            }
            (ExitCode::from(interrupt::EXIT_CODE), Some(err.to_string()))
        }
        Err(err) => (ExitCode::from(cli::exit::ERROR), Some(report(err))),
    };
    // With --output json, every command ends with one `result` line, so CI
    // reads the outcome (and a config error's message) from stdout.
    if json {
        let status = if interrupted {
            "interrupted"
        } else if error.is_some() {
            "error"
        } else if code == ExitCode::from(cli::exit::CHANGES) {
            "changes"
        } else {
            "ok"
        };
        output::json_line(
            "result",
            serde_json::json!({ "command": command, "status": status, "error": error }),
        );
    }
    code
}

/// The error for the JSON result line: every problem of a bad file, one per line.
fn error_text(err: &anyhow::Error) -> String {
    match err.downcast_ref::<config::ConfigError>() {
        Some(config::ConfigError::Invalid(invalid)) => std::iter::once(invalid.as_ref())
            .chain(invalid.others.iter())
            .map(|problem| problem.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => format!("{err:#}"),
    }
}

/// Prints the error, and a hint when IAM denied a call made as the
/// environment's role; returns the text for the JSON result line.
fn report(err: anyhow::Error) -> String {
    let message = error_text(&err);
    print_error(err);
    match aws::role::denial_hint(&message) {
        Some(hint) => {
            eprintln!("hint: {hint}");
            format!("{message}\nhint: {hint}")
        }
        None => message,
    }
}

fn print_error(err: anyhow::Error) {
    match err.downcast::<config::ConfigError>() {
        // Config errors carry the file's text: show the line with a marker.
        Ok(config_error) => {
            // One line per message, so the file:line:column header stays greppable.
            let _ = miette::set_hook(Box::new(|_| {
                Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())
            }));
            eprintln!("{:?}", miette::Report::new(config_error))
        }
        Err(err) => eprintln!("error: {err:#}"),
    }
}

fn init_tracing(verbose: u8, colour: bool) {
    let level = match verbose {
        // The credential chain warns for each provider it tries; poolside
        // says itself which credentials it could not find, once. sqlx warns
        // of every statement over a second (a DROP DATABASE): for -v.
        0 => "warn,aws_config::meta::credentials=error,sqlx::query=error",
        1 => "poolside=info",
        2 => "poolside=debug,aws_config=info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("POOLSIDE_LOG")
        .unwrap_or_else(|_| level.into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
}
