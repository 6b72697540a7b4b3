//! How many round trips discovery waits through: under a latency proxy that
//! makes every read take a second, the reads that do not need each other's
//! answers overlap, and the longest chain of reads that had to wait for one
//! another (`--stats`' `read_depth`, from each call's start and answer)
//! stays within six for plan, status, drift and destroy's discovery.

use crate::support::*;

const MOST_ROUND_TRIPS: u64 = 6;

/// How deep the run's reads were chained, and which they were.
fn read_depth(run: &Run) -> (u64, String) {
    let calls = &run.one("stats")["calls"];
    let depth = calls["read_depth"].as_u64().unwrap();
    (depth, calls["deepest_reads"].to_string())
}

/// Timing can add a link to a chain (a read slowed down by a loaded machine
/// ends after one that started later), never take one away: each command's
/// depth is the smaller of two rounds.
#[test]
fn plan_status_drift_and_destroy_discover_in_at_most_six_round_trips() {
    // A moto of its own: the shared one, answering every other test at
    // once, can take longer than the latency added here.
    let moto = PrivateMoto::start();
    // Far slower than the emulator's own answers (which queue when 30 reads
    // arrive at once), so a read that waited for another shows as such.
    let slow = LatencyProxy::in_front_of(&moto.url, 0, 1000);
    let mut env = Env::new("depth");
    let mut depths: Vec<(&str, (u64, String))> = Vec::new();
    for _round in 0..2 {
        env.endpoint = moto.url.clone();
        env.write();
        env.deploy();
        env.endpoint = slow.url.clone();
        env.write();
        let mut measured = Vec::new();
        for command in ["plan", "status", "drift"] {
            let run = env.poolside(&[command, "--env", &env.name, "--output", "json", "--stats"]);
            run.assert_code(0);
            measured.push((command, read_depth(&run)));
        }
        let destroyed = env.poolside(&[
            "destroy", "--env", &env.name, "--yes", "--output", "json", "--stats",
        ]);
        destroyed.assert_code(0);
        measured.push(("destroy", read_depth(&destroyed)));
        // The destroy dropped the database pg_cron serves: its launcher is
        // gone until the server restarts (drift would rightly say so).
        env.postgres.restart();
        if depths.is_empty() {
            depths = measured;
        } else {
            for (kept, new) in depths.iter_mut().zip(measured) {
                if new.1 .0 < kept.1 .0 {
                    *kept = new;
                }
            }
        }
    }
    eprintln!("round trips deep: {depths:#?}");
    for (command, (depth, chain)) in &depths {
        assert!(
            *depth <= MOST_ROUND_TRIPS,
            "{command} read {depth} round trips deep: {chain}"
        );
        // A chain of one would mean nothing was measured.
        assert!(*depth >= 2, "{command}: {chain}");
    }
}
