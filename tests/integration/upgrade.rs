//! A major upgrade of PostgreSQL, through the realistic layer, which refuses
//! what RDS refuses (no AllowMajorVersionUpgrade, a version it does not
//! offer from the running one, a parameter group of the old family) and
//! reads `upgrading` while it runs: planned with the exact target RDS
//! offers, refused without --allow-major-upgrade, made with the new group
//! in the same call, and the old group deleted after.

use crate::real_aws::Proxy;
use crate::support::*;
use serde_json::Value;

fn property<'a>(change: &'a Value, name: &str) -> &'a Value {
    change["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["property"] == name)
        .unwrap_or_else(|| panic!("no {name} in {change}"))
}

async fn parameter_group_exists(name: &str) -> bool {
    aws()
        .await
        .rds
        .describe_db_parameter_groups()
        .db_parameter_group_name(name)
        .send()
        .await
        .is_ok_and(|out| !out.db_parameter_groups().is_empty())
}

#[tokio::test]
async fn a_major_upgrade_is_planned_with_rds_target_refused_without_the_flag_and_made_as_rds_requires(
) {
    let proxy = Proxy::start();
    let mut env = Env::new("upgrade");
    env.endpoint = proxy.url.clone();
    env.write();
    env.deploy();
    let old_group = format!("poolside-{}-postgres16", env.name);
    let new_group = format!("poolside-{}-postgres17", env.name);

    // "17": the newest 17 RDS offers from the 16.8 that runs.
    env.database_extra = "engine_version = \"17\"\n".into();
    env.write();
    let planned = env.plan();
    planned.assert_code(2);
    let plan = planned.one("plan");
    let changes = plan["changes"].as_array().unwrap();
    let instance = changes
        .iter()
        .find(|c| c["id"] == "db-instance/main")
        .unwrap_or_else(|| panic!("{plan}"));
    assert_eq!(instance["action"], "update", "{plan}");
    let version = property(instance, "engine_version");
    assert_eq!(
        (version["before"].as_str(), version["after"].as_str()),
        (Some("16.8"), Some("17.4"))
    );
    // The group the instance moves to, by the name it will have.
    let moves_to = property(instance, "parameter_group");
    assert_eq!(
        (moves_to["before"].as_str(), moves_to["after"].as_str()),
        (Some(old_group.as_str()), Some(new_group.as_str()))
    );
    let group = changes
        .iter()
        .find(|c| c["id"] == "db-parameter-group/main")
        .unwrap_or_else(|| panic!("{plan}"));
    assert_eq!(group["action"], "create", "{plan}");
    let warnings = plan["warnings"].to_string();
    assert!(
        !warnings.contains("is not checked"),
        "the target's extensions were not read: {warnings}"
    );
    assert!(
        warnings.contains("a major upgrade, 16.8 -> 17.4")
            && warnings.contains("--allow-major-upgrade"),
        "{warnings}"
    );

    // Without the flag: refused before any change.
    let refused = env.poolside(&[
        "deploy", "--env", &env.name, "--yes", "--output", "json", "--stats",
    ]);
    refused.assert_code(1);
    assert!(
        refused
            .stderr()
            .contains("run deploy again with --allow-major-upgrade"),
        "{}",
        refused.stderr()
    );
    assert_eq!(refused.mutating_calls(), 0);
    // history says why the deploy was refused, under its table.
    let history = env.poolside(&["history", "--env", &env.name, "--limit", "3"]);
    assert!(
        history.stdout().contains("did not succeed stopped")
            && history.stdout().contains("deploy refused: deploy of"),
        "{}",
        history.stdout()
    );
    // drift points at the deploy that makes it, not at one that refuses.
    let drifted = env.poolside(&["drift", "--env", &env.name]);
    drifted.assert_code(2);
    assert!(
        drifted.stdout().contains(&format!(
            "`poolside deploy --env {} --allow-major-upgrade` repairs",
            env.name
        )),
        "{}",
        drifted.stdout()
    );

    // A version RDS does not offer from 16.8: the plan itself refuses,
    // naming what it offers.
    env.database_extra = "engine_version = \"17.9\"\n".into();
    env.write();
    let not_offered = env.plan();
    not_offered.assert_code(1);
    assert!(
        not_offered
            .stderr()
            .contains("does not offer PostgreSQL 17.9 as an upgrade of the 16.8")
            && not_offered.stderr().contains("majors 17"),
        "{}",
        not_offered.stderr()
    );

    env.database_extra = "engine_version = \"17\"\n".into();
    env.write();
    let upgraded = env.poolside(&[
        "deploy",
        "--env",
        &env.name,
        "--yes",
        "--allow-major-upgrade",
        "--output",
        "json",
    ]);
    upgraded.assert_code(0);
    let report = upgraded.one("data_tier");
    assert_eq!(report["analyzed_after_upgrade"], true, "{report}");
    // poolside's jobs were paused before the upgrade and resumed after it.
    let paused = upgraded.one("jobs_paused_for_upgrade")["jobs"].clone();
    assert_eq!(paused.as_array().map(Vec::len), Some(5), "{paused}");
    assert_eq!(report["jobs_resumed_after_upgrade"], paused, "{report}");
    assert_eq!(report["jobs_changed"], serde_json::json!([]), "{report}");
    let played = proxy.played().await;
    for expected in [
        "upgrade_targets_listed",
        "extensions_listed",
        "major_upgrade",
    ] {
        assert!(
            played.iter().any(|p| p == expected),
            "never played {expected}: {played:?}"
        );
    }
    assert!(
        !played.iter().any(|p| p == "major_upgrade_refused"),
        "RDS would have refused: {played:?}"
    );
    let db = aws()
        .await
        .rds
        .describe_db_instances()
        .db_instance_identifier(format!("poolside-{}", env.name))
        .send()
        .await
        .unwrap()
        .db_instances()[0]
        .clone();
    assert_eq!(db.engine_version(), Some("17.4"));
    assert_eq!(
        db.db_parameter_groups()[0].db_parameter_group_name(),
        Some(new_group.as_str())
    );
    assert!(parameter_group_exists(&new_group).await);
    assert!(
        !parameter_group_exists(&old_group).await,
        "{old_group} was left behind: {}",
        upgraded
            .stdout()
            .lines()
            .filter(|l| l.contains("postgres16") || l.contains("\"plan\""))
            .collect::<Vec<_>>()
            .join("\n")
    );
    env.plan().assert_code(0);

    // A group an upgrade that jumped a major (14 to 16) could not delete
    // yet: found, though it is not the major just before, and deleted.
    let older_group = format!("poolside-{}-postgres14", env.name);
    let tag = |k: &str, v: &str| aws_sdk_rds::types::Tag::builder().key(k).value(v).build();
    aws()
        .await
        .rds
        .create_db_parameter_group()
        .db_parameter_group_name(&older_group)
        .db_parameter_group_family("postgres14")
        .description("left by an upgrade from 14")
        .tags(tag("poolside:env", &env.name))
        .tags(tag("poolside:id", "db-parameter-group/postgres14"))
        .send()
        .await
        .unwrap();
    let planned = env.plan();
    planned.assert_code(2);
    let plan = planned.one("plan");
    assert!(
        plan["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "db-parameter-group/postgres14" && c["action"] == "delete"),
        "{plan}"
    );
    env.deploy();
    assert!(!parameter_group_exists(&older_group).await);

    // A file asking for an older major: plan and deploy refuse it, naming
    // the key; drift reports it with why deploy does not repair it, status
    // counts it, and outputs, which only reads what exists, answers.
    env.database_extra = "engine_version = \"16\"\n".into();
    env.write();
    let refused = env.plan();
    refused.assert_code(1);
    assert!(
        refused.stderr().contains("database.engine_version")
            && refused.stderr().contains("cannot downgrade")
            && !refused.stderr().contains("a major upgrade"),
        "{}",
        refused.stderr()
    );
    let fleet = env.poolside(&["fleet", "plan", "--select", &env.name, "--output", "json"]);
    fleet.assert_code(1);
    assert_eq!(
        fleet.one("fleet")["errors"].as_u64(),
        Some(1),
        "{}",
        fleet.stdout()
    );
    let deploy = env.poolside(&[
        "deploy", "--env", &env.name, "--yes", "--stats", "--output", "json",
    ]);
    deploy.assert_code(1);
    assert!(
        deploy.stderr().contains("cannot downgrade"),
        "{}",
        deploy.stderr()
    );
    assert_eq!(deploy.mutating_calls(), 0);
    let drifted = env.poolside(&["drift", "--env", &env.name, "--output", "json"]);
    drifted.assert_code(2);
    let findings = drifted.json("finding");
    let version = findings
        .iter()
        .find(|f| f["resource"] == "db-instance/main" && f["attribute"] == "engine_version")
        .unwrap_or_else(|| panic!("{findings:?}"));
    assert!(
        version["remedy"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot downgrade"),
        "{version}"
    );
    let status = env.poolside(&["status", "--env", &env.name, "--output", "json"]);
    status.assert_code(0);
    assert_eq!(status.one("status")["in_sync"], false);
    env.poolside(&["outputs", "--env", &env.name])
        .assert_code(0);
}

/// With the schema task (`schema_runner = "ecs-task"`, the default on AWS),
/// through the layer that runs the task's command here as ECS would: the
/// jobs are paused before the upgrade by a run of the live schema task
/// with a command of its own, and the task after the upgrade runs ANALYZE
/// and resumes exactly those jobs.
#[tokio::test]
async fn a_major_upgrade_with_the_schema_task_pauses_the_jobs_from_inside_the_vpc() {
    let proxy = Proxy::start();
    let mut env = Env::new("upgtask");
    env.endpoint = proxy.url.clone();
    env.target_extra = "emulator_runs_tasks = true\n".into();
    env.database_extra = "schema_runner = \"ecs-task\"\n".into();
    env.write();
    let database = format!("127.0.0.1:{}", env.postgres.port);
    proxy
        .tasks(serde_json::json!({ "database": database }))
        .await;
    env.poolside(&["image", "push", "--env", &env.name])
        .assert_code(0);
    env.deploy();

    env.database_extra = "schema_runner = \"ecs-task\"\nengine_version = \"17\"\n".into();
    env.write();
    let upgraded = env.poolside(&[
        "deploy",
        "--env",
        &env.name,
        "--yes",
        "--allow-major-upgrade",
        "--output",
        "json",
    ]);
    upgraded.assert_code(0);
    let paused = upgraded.one("jobs_paused_for_upgrade")["jobs"].clone();
    assert_eq!(paused.as_array().map(Vec::len), Some(5), "{paused}");
    let report = upgraded.one("data_tier");
    assert_eq!(report["analyzed_after_upgrade"], true, "{report}");
    assert_eq!(report["jobs_resumed_after_upgrade"], paused, "{report}");
    assert_eq!(report["jobs_changed"], serde_json::json!([]), "{report}");

    // The pause ran with its own command before RDS was asked to upgrade;
    // the schema task after it was told to analyze and what to resume.
    let events = proxy.events().await;
    let position = |wanted: &dyn Fn(&Value) -> bool| events.iter().position(wanted);
    let pause = position(&|e| e["kind"] == "task_overrides_applied" && e["command"] == true)
        .unwrap_or_else(|| panic!("no task ran with a command of its own: {events:?}"));
    let upgrade = position(&|e| e["kind"] == "major_upgrade").expect("no major upgrade");
    let after = position(&|e| {
        e["kind"] == "task_overrides_applied"
            && e["command"] == false
            && e["environment"] == serde_json::json!(["POOLSIDE_ANALYZE", "POOLSIDE_RESUME"])
    })
    .unwrap_or_else(|| panic!("the schema task was not told to analyze and resume: {events:?}"));
    assert!(
        pause < upgrade && upgrade < after,
        "{pause} {upgrade} {after}"
    );
    env.plan().assert_code(0);
}
