//! `poolside promote`: a pilot grows to limited only through its gates, one
//! phase at a time, and the environment file keeps its comments.

use crate::support::*;

#[tokio::test]
async fn a_healthy_pilot_is_promoted_to_limited_through_its_gates() {
    let env = Env::new("promo");
    env.write();
    let text = std::fs::read_to_string(env.file()).unwrap();
    let text = text.replacen(
        "phase = \"pilot\"",
        "# Onboarding plan: pilot for two weeks.\nphase = \"pilot\"   # grows with poolside promote",
        1,
    );
    std::fs::write(env.file(), &text).unwrap();
    env.deploy();
    let deployed_at = std::time::Instant::now();

    let skip = env.poolside(&["promote", "--env", &env.name, "--to", "full", "--yes"]);
    skip.assert_code(1);
    assert!(
        skip.stderr().contains("one phase at a time"),
        "{}",
        skip.stderr()
    );

    // Deployed seconds ago: the bake gate holds it back, and nothing changes.
    let fresh = env.poolside(&[
        "promote", "--env", &env.name, "--to", "limited", "--yes", "--bake", "1h", "--output",
        "json",
    ]);
    fresh.assert_code(1);
    let gates = fresh.one("gates");
    let outcome = |name: &str| {
        gates["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["outcome"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no gate {name}: {gates}"))
    };
    assert_eq!(outcome("bake"), "failed");
    assert_eq!(outcome("drift"), "passed");
    assert_eq!(outcome("alarms"), "passed");
    assert_eq!(outcome("api"), "passed");
    assert_eq!(std::fs::read_to_string(env.file()).unwrap(), text);

    std::thread::sleep(std::time::Duration::from_secs(2));
    let dry = env.poolside(&[
        "promote",
        "--env",
        &env.name,
        "--to",
        "limited",
        "--bake",
        "1s",
        "--dry-run",
        "--output",
        "json",
    ]);
    dry.assert_code(0);
    let planned: Vec<String> = dry.one("plan")["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        planned.contains(&"db-instance/main".to_string()),
        "{planned:?}"
    );
    assert!(planned.contains(&"cluster/main".to_string()), "{planned:?}");
    assert_eq!(std::fs::read_to_string(env.file()).unwrap(), text);
    let last_run = || {
        env.poolside(&[
            "history", "--env", &env.name, "--output", "json", "--limit", "1",
        ])
        .one("run")
    };
    // A dry run is recorded as one, having made nothing of what it planned.
    let dry_run = last_run();
    assert_eq!(dry_run["result"], "dry_run", "{dry_run}");
    assert_eq!(dry_run["plan"]["summary"]["update"], 0, "{dry_run}");
    assert!(
        dry_run["plan"]["planned"]["update"].as_u64().unwrap() > 0,
        "{dry_run}"
    );

    // The bake clock runs from the deploy that started the release: neither
    // the dry run nor a no-op deploy since resets it.
    let wait = std::time::Duration::from_secs(9).saturating_sub(deployed_at.elapsed());
    std::thread::sleep(wait);
    env.deploy();
    let promoted = env.poolside(&[
        "promote", "--env", &env.name, "--to", "limited", "--bake", "5s", "--yes", "--output",
        "json",
    ]);
    promoted.assert_code(0);
    let now = std::fs::read_to_string(env.file()).unwrap();
    assert!(now.contains("# Onboarding plan: pilot for two weeks.\nphase = \"limited\"   # grows with poolside promote"), "{now}");
    env.plan().assert_code(0);
    let status = env.poolside(&["status", "--env", &env.name, "--output", "json"]);
    assert_eq!(status.one("status")["phase"], "limited");
    let history = env.poolside(&[
        "history", "--env", &env.name, "--output", "json", "--limit", "1",
    ]);
    let last = history.one("run");
    assert_eq!(
        (last["command"].as_str(), last["result"].as_str()),
        (Some("promote"), Some("ok"))
    );
}

/// The repository's name from a deploy's outputs.
pub(crate) fn repository_of(run: &Run) -> String {
    let uri = run.one("outputs")["repository_uri"]
        .as_str()
        .unwrap()
        .to_string();
    uri.split_once('/').unwrap().1.to_string()
}

/// What `poolside image push` would leave in the deployed environment's
/// repository under `v12.0.2-rds-ca` (the emulator's ECR keeps manifests
/// only, so one is put by the SDK); `fill` tells the images apart.
pub(crate) async fn push_stand_in_image(aws: &Aws, deployed: &Run, fill: char) -> String {
    let repository = repository_of(deployed);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":2}},"layers":[]}}"#,
        fill.to_string().repeat(64)
    );
    aws.ecr
        .put_image()
        .repository_name(&repository)
        .image_manifest(&manifest)
        .image_tag("v12.0.2-rds-ca")
        .send()
        .await
        .unwrap();
    repository
}

/// The digest ECR lists for a tag in a repository.
pub(crate) async fn digest_of(aws: &Aws, repository: &str, tag: &str) -> Option<String> {
    aws.ecr
        .describe_images()
        .repository_name(repository)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(tag)
                .build(),
        )
        .send()
        .await
        .ok()
        .and_then(|out| {
            out.image_details()
                .first()?
                .image_digest()
                .map(str::to_string)
        })
}

/// The image the environment's service runs (its task definition's).
pub(crate) async fn running_image(aws: &Aws, env: &Env) -> String {
    let cluster = format!("poolside-{}", env.name);
    let services = aws
        .ecs
        .describe_services()
        .cluster(&cluster)
        .services(format!("poolside-{}-api", env.name))
        .send()
        .await
        .unwrap();
    let task_definition = services.services()[0]
        .task_definition()
        .unwrap()
        .to_string();
    aws.ecs
        .describe_task_definition()
        .task_definition(task_definition)
        .send()
        .await
        .unwrap()
        .task_definition()
        .unwrap()
        .container_definitions()[0]
        .image()
        .unwrap()
        .to_string()
}

/// A release moves from staging to production: an alarm in ALARM on the
/// source holds it back, naming the alarm, with nothing changed; then the
/// target runs the source's image by the same digest, its file names the
/// source's image_tag with its comment kept, and its history records it.
#[tokio::test]
async fn a_release_moves_from_one_environment_to_another_by_digest() {
    let staging = Env::new("stg");
    staging.write();
    let mut prod = Env::new("prd");
    prod.api_extra = "image_tag = \"v12.0.1\"   # what production ran before\n".into();
    prod.write();
    let staged = staging.deploy();
    prod.deploy();
    let aws = aws().await;

    let staging_repository = push_stand_in_image(&aws, &staged, 'a').await;
    let staged_digest = digest_of(&aws, &staging_repository, "v12.0.2-rds-ca")
        .await
        .unwrap();
    std::fs::copy(
        staging.file(),
        prod.dir().join(format!("{}.toml", staging.name)),
    )
    .unwrap();
    let before = running_image(&aws, &prod).await;
    assert!(before.ends_with(":v12.0.1-rds-ca"), "{before}");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let promote = |extra: &[&str]| {
        let mut args = vec![
            "promote",
            "--from",
            &staging.name,
            "--to",
            &prod.name,
            "--bake",
            "1s",
            "--yes",
        ];
        args.extend_from_slice(extra);
        prod.poolside(&args)
    };

    // An alarm of the source in ALARM holds the release back.
    let alarm = aws
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix(format!("poolside-{}-", staging.name))
        .send()
        .await
        .unwrap()
        .metric_alarms()[0]
        .alarm_name()
        .unwrap()
        .to_string();
    aws.cloudwatch
        .set_alarm_state()
        .alarm_name(&alarm)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("test: errors above the threshold")
        .send()
        .await
        .unwrap();
    let held = promote(&[]);
    held.assert_code(1);
    assert!(held.stderr().contains(&alarm), "{}", held.stderr());
    assert_eq!(running_image(&aws, &prod).await, before);
    assert!(std::fs::read_to_string(prod.file())
        .unwrap()
        .contains("image_tag = \"v12.0.1\""));

    aws.cloudwatch
        .set_alarm_state()
        .alarm_name(&alarm)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Ok)
        .state_reason("test: recovered")
        .send()
        .await
        .unwrap();
    let moved = promote(&["--output", "json"]);
    moved.assert_code(0);
    let prod_repository = repository_of(&moved);
    assert_eq!(
        digest_of(&aws, &prod_repository, "v12.0.2-rds-ca").await,
        Some(staged_digest),
        "the same digest in the target's repository"
    );
    let after = running_image(&aws, &prod).await;
    assert!(
        after.ends_with(&format!("{prod_repository}:v12.0.2-rds-ca")),
        "{after}"
    );
    let text = std::fs::read_to_string(prod.file()).unwrap();
    assert!(
        text.contains("image_tag = \"v12.0.2\"   # what production ran before"),
        "{text}"
    );
    let history = prod.poolside(&["history", "--env", &prod.name, "--output", "json"]);
    history.assert_code(0);
    assert_eq!(history.json("run")[0]["command"], "promote");

    // Again: the release is there and running; nothing to move.
    let again = promote(&[]);
    again.assert_code(0);
    assert!(again.stdout().contains("No changes"), "{}", again.stdout());
}
