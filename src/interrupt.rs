//! Ctrl-C, as a long-running deployer should take it: the first one stops
//! new steps from starting and abandons waits (what AWS is creating goes on,
//! and the next run adopts it), lets calls in flight finish, and ends with a
//! summary and exit code 130; a second one exits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static NOTIFY: Notify = Notify::const_new();

/// The exit code of a run stopped by Ctrl-C (128 + SIGINT), as shells expect.
pub const EXIT_CODE: u8 = 130;

/// The error a step or wait returns when it stopped for Ctrl-C.
#[derive(Debug, thiserror::Error)]
#[error("interrupted (Ctrl-C)")]
pub struct Interrupted;

/// Listens for Ctrl-C for the rest of the run.
pub fn install() {
    tokio::spawn(async {
        loop {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            if REQUESTED.swap(true, Ordering::SeqCst) {
                eprintln!("\nInterrupted again: stopping now. Run the command again to finish: every step is idempotent.");
                std::process::exit(i32::from(EXIT_CODE));
            }
            eprintln!("\nInterrupted: no new step starts, waits stop, calls in flight finish. Ctrl-C again to stop at once.");
            NOTIFY.notify_waiters();
        }
    });
}

pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Returns once Ctrl-C was pressed (at once if it was already).
pub async fn wait() {
    loop {
        let notified = NOTIFY.notified();
        if requested() {
            return;
        }
        notified.await;
    }
}

/// Stops the run as a first Ctrl-C would (no new step starts, waits end),
/// for a reason of poolside's own: the lock it ran under is gone.
pub fn request_stop() {
    REQUESTED.store(true, Ordering::SeqCst);
    NOTIFY.notify_waiters();
}
