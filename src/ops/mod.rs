//! The operations behind the commands, as cargo's `ops` are behind its
//! commands: each takes a loaded environment and an options struct, and
//! does the work. `session.rs` connects, builds the blueprint, discovers and
//! plans; `guarded.rs` is the lock-and-history skeleton the mutating
//! operations (deploy, destroy, promote) run in; `status.rs` and `image.rs`
//! are the read-only report and the image copy.
//!
//! Contract: no argument parsing (that is `cli/`); everything printed goes
//! through `output` in the format the run asked for.

pub mod deploy;
pub mod destroy;
pub mod fleet;
pub mod graph;
pub mod guarded;
pub mod image;
mod outputs;
pub mod promote;
pub mod release;
mod run;
mod session;
pub mod snapshots;
pub mod status;

pub use run::{exit, RunOptions};
pub use session::*;
