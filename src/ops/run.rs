//! What every operation is told about the run it is part of: how to print,
//! where the environment files are, and when the run started (for `--stats`).

use crate::output::{self, Format};
use std::path::PathBuf;
use std::time::Instant;

/// The exit codes poolside promises.
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const CHANGES: u8 = 2;
}

pub struct RunOptions {
    pub environments_dir: PathBuf,
    pub output: Format,
    /// `--stats`: report every AWS call at the end.
    pub stats: bool,
    /// `--compact`: plans list what they create by id alone.
    pub compact: bool,
    pub started: Instant,
}

impl RunOptions {
    /// The file of environment `env`.
    pub fn environment_file(&self, env: &str) -> PathBuf {
        self.environments_dir.join(format!("{env}.toml"))
    }

    pub fn print_stats(&self, session: &super::session::Session) {
        if !self.stats {
            return;
        }
        let report = session.cx.clients.stats.snapshot();
        let elapsed = self.started.elapsed();
        match self.output {
            Format::Json => output::json_line(
                "stats",
                serde_json::json!({ "wall_ms": elapsed.as_millis() as u64, "calls": report }),
            ),
            Format::Human => eprint!("\n{}", report.render(elapsed)),
        }
    }
}
