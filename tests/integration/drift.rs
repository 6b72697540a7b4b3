//! `poolside drift`: each kind of change made by hand, through the SDK or
//! SQL, is reported (exit 2) without a mutating call; deploy repairs what
//! poolside manages; a clean environment exits 0.

use crate::support::*;
use serde_json::Value;
use std::collections::BTreeSet;

fn drift(env: &Env) -> Run {
    env.poolside(&["drift", "--env", &env.name, "--output", "json", "--stats"])
}

/// (resource, attribute) of every finding.
fn found(run: &Run) -> BTreeSet<(String, String)> {
    run.json("finding")
        .iter()
        .map(|f| {
            (
                f["resource"].as_str().unwrap().to_string(),
                f["attribute"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn finding<'a>(all: &'a [Value], resource: &str, attribute: &str) -> &'a Value {
    all.iter()
        .find(|f| f["resource"] == resource && f["attribute"] == attribute)
        .unwrap_or_else(|| panic!("no finding for {resource} {attribute}: {all:?}"))
}

#[tokio::test]
async fn drift_names_each_change_made_by_hand_and_deploy_repairs_it() {
    let env = Env::new("drift");
    env.write();
    let deployed = env.deploy();
    let clean = drift(&env);
    clean.assert_code(0);
    assert_eq!(found(&clean), BTreeSet::new());
    assert_eq!(clean.mutating_calls(), 0);

    let aws = aws().await;
    let outputs = deployed.one("outputs");
    let alarm = |name: &str| format!("poolside-{}-{name}", env.name);
    // AWS side: an alarm deleted, another's threshold changed, a rule added,
    // and a security group nobody manages in the VPC.
    aws.cloudwatch
        .delete_alarms()
        .alarm_names(alarm("api-cpu"))
        .send()
        .await
        .unwrap();
    let latency = aws
        .cloudwatch
        .describe_alarms()
        .alarm_names(alarm("db-cpu"))
        .send()
        .await
        .unwrap()
        .metric_alarms()[0]
        .clone();
    aws.cloudwatch
        .put_metric_alarm()
        .alarm_name(alarm("db-cpu"))
        .metric_name(latency.metric_name().unwrap())
        .namespace(latency.namespace().unwrap())
        .set_dimensions(Some(latency.dimensions().to_vec()))
        .set_statistic(latency.statistic().cloned())
        .period(latency.period().unwrap())
        .evaluation_periods(latency.evaluation_periods().unwrap())
        .comparison_operator(latency.comparison_operator().unwrap().clone())
        .threshold(99.0)
        .send()
        .await
        .unwrap();
    let api_group = outputs["security_group_ids"]["api"].as_str().unwrap();
    aws.ec2
        .authorize_security_group_ingress()
        .group_id(api_group)
        .ip_protocol("tcp")
        .from_port(22)
        .to_port(22)
        .cidr_ip("0.0.0.0/0")
        .send()
        .await
        .unwrap();
    let stray = aws
        .ec2
        .create_security_group()
        .group_name(format!("{}-by-hand", env.name))
        .description("made by hand")
        .vpc_id(outputs["vpc_id"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    // Database side: a job rescheduled, another paused, an unknown migration.
    let mut db = env.postgres.master().await;
    for sql in [
        "SELECT cron.alter_job(jobid, schedule => '5 5 * * *') FROM cron.job WHERE jobname = 'cleanup-metrics'",
        "SELECT cron.alter_job(jobid, active => false) FROM cron.job WHERE jobname = 'weekly-fine-tune'",
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99, 'by hand', true, '\\x00', 0)",
        "GRANT INSERT ON api.training_jobs TO api_user",
        "REVOKE EXECUTE ON FUNCTION api.hello() FROM web_anon",
    ] {
        sqlx::query(sql).execute(&mut db).await.unwrap();
    }

    let drifted = drift(&env);
    drifted.assert_code(2);
    assert_eq!(drifted.mutating_calls(), 0);
    let all = drifted.json("finding");
    let cpu = finding(&all, "alarm/api-cpu", "exists");
    assert_eq!(
        (&cpu["expected"], &cpu["actual"]),
        (&Value::Bool(true), &Value::Bool(false))
    );
    let threshold = finding(&all, "alarm/db-cpu", "threshold");
    assert_eq!(threshold["actual"], 99.0);
    assert!(found(&drifted).contains(&("sg-rules/api".to_string(), "ingress".to_string())));
    let schedule = finding(&all, "cron-job/cleanup-metrics", "schedule");
    assert_eq!(
        (schedule["expected"].as_str(), schedule["actual"].as_str()),
        (Some("0 2 * * *"), Some("5 5 * * *"))
    );
    assert_eq!(
        finding(&all, "cron-job/weekly-fine-tune", "active")["actual"],
        false
    );
    assert_eq!(
        finding(&all, "database/migrations", "version 99")["actual"],
        "applied"
    );
    let granted = finding(
        &all,
        "database/privilege/TABLE api.training_jobs",
        "INSERT to api_user",
    );
    assert_eq!(granted["actual"], "granted");
    let revoked = finding(
        &all,
        "database/privilege/FUNCTION api.hello()",
        "EXECUTE to web_anon",
    );
    assert_eq!(revoked["actual"], "not granted");
    let unmanaged = finding(&all, "vpc/main", "unmanaged resources");
    assert!(
        unmanaged["actual"]
            .as_str()
            .unwrap()
            .contains(stray.group_id().unwrap()),
        "{unmanaged}"
    );
    let human = env.poolside(&["drift", "--env", &env.name]);
    human.assert_code(2);
    assert!(
        human.stdout().contains("cron-job/cleanup-metrics"),
        "{}",
        human.stdout()
    );

    // Deploy repairs what poolside manages (an unknown migration it refuses
    // to guess about, so that one goes by hand); the stray group is only reported.
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 99")
        .execute(&mut db)
        .await
        .unwrap();
    let repaired = env.deploy();
    let restored = repaired.one("data_tier")["privileges_restored"].clone();
    assert_eq!(restored.as_array().unwrap().len(), 2, "{restored}");
    let after = drift(&env);
    after.assert_code(2);
    assert_eq!(
        found(&after),
        BTreeSet::from([("vpc/main".to_string(), "unmanaged resources".to_string())])
    );
    aws.ec2
        .delete_security_group()
        .group_id(stray.group_id().unwrap())
        .send()
        .await
        .unwrap();
    drift(&env).assert_code(0);

    // A database that cannot be read is not one that matches sql/: plan,
    // drift, status and the fleet say it is unknown, and plan fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = std::fs::read_to_string(env.file()).unwrap().replace(
        &format!("connect_port = {}", env.postgres.port),
        &format!("connect_port = {closed}"),
    );
    std::fs::write(env.file(), text).unwrap();
    let plan = env.poolside(&["plan", "--env", &env.name, "--detailed-exitcode"]);
    plan.assert_code(1);
    assert!(
        plan.stdout().contains("No changes to the AWS resources")
            && plan
                .stderr()
                .contains("the database side could not be read"),
        "{}\n{}",
        plan.stdout(),
        plan.stderr()
    );
    let unread = env.poolside(&["drift", "--env", &env.name]);
    unread.assert_code(1);
    assert!(
        unread.stdout().contains("No drift on the AWS side")
            && !unread.stdout().contains("No drift:"),
        "{}",
        unread.stdout()
    );
    let status = env.poolside(&["status", "--env", &env.name, "--output", "json"]);
    status.assert_code(0);
    let status = status.one("status");
    // Unknown, not false: nothing differs that could be read.
    assert!(status["in_sync"].is_null(), "{status}");
    assert_eq!(status["database_unreadable"], true, "{status}");
    let gated = env.poolside(&[
        "promote",
        "--env",
        &env.name,
        "--to",
        "limited",
        "--bake",
        "0s",
        "--dry-run",
        "--output",
        "json",
    ]);
    gated.assert_code(1);
    let gates = gated.one("gates");
    let drift_gate = gates["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "drift")
        .unwrap_or_else(|| panic!("{gates}"))
        .clone();
    assert_eq!(drift_gate["outcome"], "failed", "{drift_gate}");
    assert!(
        drift_gate["detail"]
            .as_str()
            .unwrap()
            .contains("could not be read"),
        "{drift_gate}"
    );
    let human = env.poolside(&["fleet", "plan", "--select", &env.name]);
    assert!(
        human
            .stdout()
            .contains("error: its database could not be read")
            && !human.stdout().contains("in sync"),
        "{}",
        human.stdout()
    );
    let fleet = env.poolside(&["fleet", "plan", "--select", &env.name, "--output", "json"]);
    assert_eq!(
        fleet.one("fleet")["errors"].as_u64(),
        Some(1),
        "{}",
        fleet.stdout()
    );
}
