//! What every command shares: the global options, the exit codes, and how
//! `--env` names an environment.
//!
//! Contract: no command logic here; commands import it, and `cli/mod.rs`
//! builds it from the parsed arguments.

use crate::config::{self, Config};
use crate::ops::RunOptions;
use crate::output::Format;
use std::path::PathBuf;
use std::time::Instant;

pub use crate::ops::exit;

pub struct Globals {
    pub environments_dir: PathBuf,
    pub output: Format,
    pub stats: bool,
    pub compact: bool,
}

impl Globals {
    pub fn load(&self, env: &str) -> Result<Config, config::ConfigError> {
        check_named_files(&self.environments_dir)?;
        config::load(&self.environments_dir, env)
    }

    /// What an operation is told about this run.
    pub fn run(&self, started: Instant) -> RunOptions {
        RunOptions {
            environments_dir: self.environments_dir.clone(),
            output: self.output,
            stats: self.stats,
            compact: self.compact,
            started,
        }
    }

    pub fn print_stats(&self, session: &crate::ops::Session, started: Instant) {
        self.run(started).print_stats(session)
    }
}

/// The files named by path in `--env`/`--from`/`--to` (`environments/x.toml`),
/// checked against `--environments-dir` once it is known ([`Globals::load`]):
/// clap parses each value before it has the directory.
static NAMED_FILES: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// `--env`'s value: an environment's name, also when given as its file
/// (`local.toml`, `environments/local.toml`), as shells complete it.
pub fn environment_name(text: &str) -> Result<String, String> {
    let Some(file) = text.strip_suffix(".toml") else {
        return Ok(text.to_string());
    };
    let path = std::path::Path::new(text);
    let name = std::path::Path::new(file)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if name.is_empty() {
        return Err(format!("{text:?} names no environment"));
    }
    if path.parent().is_some_and(|dir| !dir.as_os_str().is_empty()) {
        NAMED_FILES.lock().unwrap().push(path.to_path_buf());
    }
    Ok(name.to_string())
}

/// A file named by path must be the one `--environments-dir` holds.
fn check_named_files(dir: &std::path::Path) -> Result<(), config::ConfigError> {
    let canonical =
        |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    for file in NAMED_FILES.lock().unwrap().iter() {
        let parent = file.parent().unwrap_or(std::path::Path::new("."));
        if canonical(parent) != canonical(dir) {
            return Err(config::ConfigError::OutsideDirectory {
                given: file.display().to_string(),
                dir: dir.display().to_string(),
                given_dir: parent.display().to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod environment_name_tests {
    use super::environment_name;

    #[test]
    fn an_environment_is_named_by_its_name_or_its_file() {
        for given in [
            "local",
            "local.toml",
            "environments/local.toml",
            "./local.toml",
        ] {
            assert_eq!(environment_name(given).as_deref(), Ok("local"), "{given}");
        }
        assert!(environment_name(".toml").is_err());
    }
}
