//! `poolside iam-policy`: every AWS operation that a deploy from empty, a
//! no-op deploy, a plan and a destroy really make (as `--stats` records them) is in the
//! policy, through the action IAM checks for it.

use crate::support::*;
use std::collections::BTreeSet;

fn operations(run: &Run) -> BTreeSet<String> {
    run.json("stats")
        .iter()
        .flat_map(|s| s["calls"]["operations"].as_array().unwrap().clone())
        .map(|op| {
            format!(
                "{} {}",
                op["service"].as_str().unwrap(),
                op["operation"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn the_policy_covers_every_operation_deploy_plan_and_destroy_make() {
    // With a hosted zone, so the certificate and DNS operations are made too.
    let mut env = Env::new("iam");
    let aws = aws().await;
    let zone = aws
        .route53
        .create_hosted_zone()
        .name(format!("{}.poolside.test", env.name))
        .caller_reference(unique_name("zone"))
        .send()
        .await
        .unwrap()
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string();
    env.api_extra = format!(
        "domain_name = \"api.{}.poolside.test\"\nhosted_zone_id = \"{zone}\"\n",
        env.name
    );
    env.write();
    let mut made = operations(&env.deploy());
    made.extend(operations(&env.deploy()));
    let plan = env.plan();
    plan.assert_code(0);
    made.extend(operations(&plan));
    assert!(made.len() > 60, "too few operations seen: {made:?}");

    // The policy is generated before the destroy: iam-policy reads the account
    // from STS, and the environment must still be what it describes.
    let run = env.poolside(&["iam-policy", "--env", &env.name, "--output", "json"]);
    run.assert_code(0);
    let destroyed = env.poolside(&[
        "destroy",
        "--env",
        &env.name,
        "--yes",
        "--delete-data",
        "--output",
        "json",
        "--stats",
    ]);
    destroyed.assert_code(0);
    made.extend(operations(&destroyed));
    let generated = run.one("iam_policy");
    let allowed: BTreeSet<&str> = generated["policy"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap())
        .map(|a| a.as_str().unwrap())
        .collect();
    for operation in &made {
        let action = generated["operations"][operation.as_str()].as_str();
        let Some(action) = action else {
            panic!("{operation} is made but not in the policy table (src/iam_policy.rs)");
        };
        assert!(
            allowed.contains(action),
            "{operation} needs {action}, which the policy does not allow"
        );
    }
    // Named resources are this environment's.
    let text = generated["policy"].to_string();
    assert!(text.contains(&format!("role/poolside-{}-*", env.name)));
    assert!(text.contains(&format!("hostedzone/{zone}")));
    for service in ["ACM ", "Route 53 "] {
        assert!(
            made.iter().any(|op| op.starts_with(service)),
            "no {service}operation was made: {made:?}"
        );
    }
}
