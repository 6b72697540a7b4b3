//! The per-environment lock and the history: two commands on one
//! environment never run at once, a dead holder's lock is taken over after
//! its lease (at once when it ran on this host) or removed by hand, and
//! every run is recorded.

use crate::support::*;
use serde_json::Value;
use std::process::Child;
use std::time::{Duration, Instant};

const STATE_BUCKET: &str = "poolside-state-123456789012-us-east-1";

/// The lock object of the environment, once it exists (waits up to 20 s).
async fn wait_for_lock(aws: &Aws, env: &str) -> Value {
    let started = Instant::now();
    loop {
        let found = aws
            .s3
            .get_object()
            .bucket(STATE_BUCKET)
            .key(format!("locks/{env}.json"))
            .send()
            .await;
        if let Ok(out) = found {
            let body = out.body.collect().await.unwrap().into_bytes();
            return serde_json::from_slice(&body).unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no lock appeared"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Makes the environment's lock look held from another machine, whose
/// processes this one cannot see: only its lease tells whether it is dead.
async fn move_lock_to_another_host(aws: &Aws, env: &str) -> Value {
    let mut lock = wait_for_lock(aws, env).await;
    lock["host"] = "another-host".into();
    aws.s3
        .put_object()
        .bucket(STATE_BUCKET)
        .key(format!("locks/{env}.json"))
        .body(serde_json::to_vec(&lock).unwrap().into())
        .send()
        .await
        .unwrap();
    lock
}

fn finished(child: Child) -> Run {
    Run {
        output: child.wait_with_output().unwrap(),
    }
}

/// No two recorded runs of the environment held its lock at the same time.
/// Returns how many runs the history has.
fn assert_no_overlap(env: &Env) -> usize {
    let history = env.poolside(&[
        "history", "--env", &env.name, "--output", "json", "--limit", "100",
    ]);
    history.assert_code(0);
    let mut intervals: Vec<(u64, u64)> = history
        .json("run")
        .iter()
        .map(|r| {
            let start = r["started_at"].as_u64().unwrap() * 1000;
            (start, start + r["duration_ms"].as_u64().unwrap())
        })
        .collect();
    intervals.sort();
    for pair in intervals.windows(2) {
        // started_at has whole seconds: allow that much.
        assert!(
            pair[1].0 + 1000 >= pair[0].1,
            "two runs overlapped: {pair:?}"
        );
    }
    intervals.len()
}

async fn vpcs_of(aws: &Aws, env: &str) -> usize {
    aws.ec2
        .describe_vpcs()
        .filters(env_filter(env))
        .send()
        .await
        .unwrap()
        .vpcs()
        .len()
}

/// Two deploys from empty started at the same instant: one runs, the other
/// stops at once naming the holder, and one of each resource exists.
#[tokio::test]
async fn two_deploys_at_once_one_runs_and_the_other_names_the_holder() {
    let aws = aws().await;
    let mut refused = 0;
    for round in 0..3 {
        let env = Env::new(&format!("race{round}x"));
        env.write();
        let args = ["deploy", "--env", &env.name, "--yes", "--output", "json"];
        let first = spawn(&env, &args, &[]);
        let second = spawn(&env, &args, &[]);
        let runs = [finished(first), finished(second)];
        let codes: Vec<i32> = runs.iter().map(Run::code).collect();
        // Both started at once; one deploys from empty for a second or more.
        // Only a machine so loaded that the second began after the first had
        // finished lets both succeed, one after the other (checked below).
        assert!(
            codes == [0, 1] || codes == [1, 0] || codes == [0, 0],
            "round {round}: exit codes {codes:?}\n{}\n{}",
            runs[0].stderr(),
            runs[1].stderr()
        );
        if let Some(loser) = runs.iter().find(|r| r.code() == 1) {
            refused += 1;
            assert!(
                loser
                    .stderr()
                    .contains(&format!("environment `{}` is locked by", env.name))
                    && loser.stderr().contains("poolside unlock --env"),
                "{}",
                loser.stderr()
            );
        }
        assert_no_overlap(&env);
        assert_eq!(vpcs_of(&aws, &env.name).await, 1, "round {round}");
        env.plan().assert_code(0);
    }
    assert!(
        refused > 0,
        "no round saw the lock refuse the second deploy"
    );

    // On a deployed environment, seven more rounds: a no-op deploy is quick
    // enough that the second may start after the first finished, so the
    // invariant is checked where it lives: no two runs ever held the lock
    // at the same time (the history's intervals do not overlap), and a run
    // that did not get the lock says who had it.
    let env = Env::new("racedeployed");
    env.write();
    env.deploy();
    let args = ["deploy", "--env", &env.name, "--yes", "--output", "json"];
    for round in 0..7 {
        let first = spawn(&env, &args, &[]);
        let second = spawn(&env, &args, &[]);
        for run in [finished(first), finished(second)] {
            match run.code() {
                0 => {}
                1 => assert!(
                    run.stderr().contains("is locked by"),
                    "round {round}: {}",
                    run.stderr()
                ),
                other => panic!("round {round}: exit {other}: {}", run.stderr()),
            }
        }
    }
    assert!(assert_no_overlap(&env) >= 8);
    assert_eq!(vpcs_of(&aws, &env.name).await, 1);
    env.plan().assert_code(0);
}

#[tokio::test]
async fn a_dead_holders_lock_is_taken_over_after_its_lease_or_removed_by_hand() {
    let env = Env::new("dead");
    env.write();
    let aws = aws().await;

    // A holder with a 10 s lease dies: the next deploy takes over after it.
    let mut holder = spawn(
        &env,
        &["deploy", "--env", &env.name, "--yes"],
        &[("POOLSIDE_LOCK_LEASE", "10s")],
    );
    wait_for_lock(&aws, &env.name).await;
    holder.kill().unwrap();
    holder.wait().unwrap();
    let lock = move_lock_to_another_host(&aws, &env.name).await;
    assert_eq!(lock["lease_seconds"], 10);
    let early = env.poolside(&["deploy", "--env", &env.name, "--yes"]);
    early.assert_code(1);
    assert!(
        early.stderr().contains("is locked by"),
        "{}",
        early.stderr()
    );
    // The lease runs from the holder's last renewal.
    let renewed = wait_for_lock(&aws, &env.name).await["renewed_at"]
        .as_u64()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    tokio::time::sleep(Duration::from_secs((renewed + 12).saturating_sub(now))).await;
    let after = env.deploy();
    assert!(
        after.stderr().contains("took over the lock"),
        "{}",
        after.stderr()
    );

    // A holder with the default lease dies: unlock removes its lock by id.
    let mut holder = spawn(&env, &["deploy", "--env", &env.name, "--yes"], &[]);
    wait_for_lock(&aws, &env.name).await;
    holder.kill().unwrap();
    holder.wait().unwrap();
    let lock = move_lock_to_another_host(&aws, &env.name).await;
    let lock_id = lock["lock_id"].as_str().unwrap();
    let blocked = env.poolside(&["deploy", "--env", &env.name, "--yes"]);
    blocked.assert_code(1);
    assert!(
        blocked.stderr().contains(&format!("--lock-id {lock_id}")),
        "{}",
        blocked.stderr()
    );
    let wrong = env.poolside(&["unlock", "--env", &env.name, "--lock-id", "0000"]);
    wrong.assert_code(1);
    assert!(
        wrong.stderr().contains("nothing was removed"),
        "{}",
        wrong.stderr()
    );
    env.poolside(&["unlock", "--env", &env.name, "--lock-id", lock_id])
        .assert_code(0);
    env.deploy();

    // The history lists what happened, newest first.
    let history = env.poolside(&["history", "--env", &env.name, "--output", "json"]);
    history.assert_code(0);
    let runs: Vec<(String, String)> = history
        .json("run")
        .iter()
        .map(|r| {
            (
                r["command"].as_str().unwrap().to_string(),
                r["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        runs,
        [
            ("deploy".to_string(), "ok".to_string()),
            ("unlock".to_string(), "ok".to_string()),
            ("deploy".to_string(), "ok".to_string()),
        ],
        "{}",
        history.stdout()
    );
    let took_over = &history.json("run")[2];
    assert!(took_over["took_over_lock"].is_string(), "{took_over}");
    assert!(took_over["plan"]["summary"]["create"].as_u64().unwrap() > 0);
    assert_eq!(took_over["release"]["schema_version"], 5);

    // A holder on this host whose process is gone: its lock is dead at once.
    let mut holder = spawn(&env, &["deploy", "--env", &env.name, "--yes"], &[]);
    wait_for_lock(&aws, &env.name).await;
    holder.kill().unwrap();
    holder.wait().unwrap();
    let at_once = env.poolside(&[
        "deploy",
        "--env",
        &env.name,
        "--yes",
        "--lock-timeout",
        "0s",
    ]);
    at_once.assert_code(0);
    assert!(
        at_once
            .stderr()
            .contains("its process no longer runs on this host"),
        "{}",
        at_once.stderr()
    );
}

#[tokio::test]
async fn status_shows_the_release_the_tasks_and_the_last_run_without_changing_anything() {
    let env = Env::new("status");
    env.write();
    env.poolside(&["status", "--env", &env.name]).assert_code(1);
    env.deploy();
    let run = env.poolside(&["status", "--env", &env.name, "--output", "json", "--stats"]);
    run.assert_code(0);
    assert_eq!(run.mutating_calls(), 0);
    assert_eq!(run.one("stats")["calls"]["mutating_calls"], 0);
    // What it shows was read by discovery: no second read of the service or
    // the alarms (a task definition is read once per family: api, schema).
    for op in run.one("stats")["calls"]["operations"].as_array().unwrap() {
        let most = match op["operation"].as_str() {
            Some("DescribeServices" | "DescribeAlarms") => 1,
            Some("DescribeTaskDefinition") => 2,
            _ => continue,
        };
        assert!(op["calls"].as_u64().unwrap() <= most, "{op}");
    }
    // One read for every alarm's tags (the tagging API), not one per alarm.
    assert_eq!(run.calls_of("CloudWatch", "ListTagsForResource"), 0);
    assert_eq!(
        run.calls_of("Resource Groups Tagging API", "GetResources"),
        1
    );
    let status = run.one("status");
    assert_eq!(status["in_sync"], true, "{status}");
    assert_eq!(status["phase"], "pilot");
    assert_eq!(status["schema_version"], 5);
    assert!(
        status["image"]
            .as_str()
            .unwrap()
            .ends_with(":v12.0.2-rds-ca"),
        "{status}"
    );
    assert_eq!(status["tasks_desired"], 1);
    assert_eq!(status["last_run"]["command"], "deploy");
    assert_eq!(status["last_run"]["result"], "ok");
    assert!(status["lock"].is_null());
    assert_eq!(status["alarms"].as_array().unwrap().len(), 10);
    // The production rule: all traffic to the first target group.
    let traffic = status["traffic"].as_str().unwrap();
    assert!(
        traffic.contains(&format!("targetgroup/poolside-{}/", env.name))
            && traffic.contains("=100"),
        "{traffic}"
    );
    let human = env.poolside(&["status", "--env", &env.name]);
    human.assert_code(0);
    assert!(
        human.stdout().contains("schema version: 5"),
        "{}",
        human.stdout()
    );
}
