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

    let promoted = env.poolside(&[
        "promote", "--env", &env.name, "--to", "limited", "--bake", "1s", "--yes", "--output",
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
