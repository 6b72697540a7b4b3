//! `poolside fleet`: several environments read at once, one row each; one
//! whose endpoint is down shows its error in its row and the others go on;
//! selection, drift found in one, and the exit codes.

use crate::support::*;
use serde_json::Value;

fn rows(run: &Run) -> Vec<Value> {
    run.json("environment")
}

#[tokio::test]
async fn the_fleet_reads_every_environment_and_reports_a_broken_one_in_its_row() {
    // a runs an older release than b, the one environment in phase full.
    let mut a = Env::new("fleeta");
    a.api_extra = "image_tag = \"v12.0.1\"\n".into();
    a.write();
    let mut b = Env::new("fleetb");
    b.phase = "full";
    b.write();
    a.deploy();
    let b_deployed = b.deploy();
    // b's image as `poolside image push` leaves it; a's is not in its
    // repository (the emulator's ECR holds only what is put there).
    let aws = aws().await;
    let b_repository = crate::promote::push_stand_in_image(&aws, &b_deployed, 'b').await;
    let b_digest = crate::promote::digest_of(&aws, &b_repository, "v12.0.2-rds-ca")
        .await
        .unwrap();
    // One directory holds the fleet: b's file next to a's, and a copy of
    // a's whose endpoint nothing listens on.
    std::fs::copy(b.file(), a.dir().join(format!("{}.toml", b.name))).unwrap();
    let broken = format!("{}x", a.name);
    let text = std::fs::read_to_string(a.file())
        .unwrap()
        .replace(
            &format!("name = \"{}\"", a.name),
            &format!("name = \"{broken}\""),
        )
        .replace(&a.endpoint, "http://127.0.0.1:9");
    std::fs::write(a.dir().join(format!("{broken}.toml")), text).unwrap();

    let all = a.poolside(&["fleet", "status", "--output", "json"]);
    all.assert_code(1);
    let listed = rows(&all);
    let names: Vec<&str> = listed
        .iter()
        .map(|r| r["environment"].as_str().unwrap())
        .collect();
    assert_eq!(names, [a.name.as_str(), broken.as_str(), b.name.as_str()]);
    for row in [&listed[0], &listed[2]] {
        assert!(row["error"].is_null(), "{row}");
        assert_eq!(row["status"]["in_sync"], true, "{row}");
        assert!(row["status"]["image"].as_str().is_some(), "{row}");

        // pgvector and pg_cron as installed, next to the engine version.
        let extensions = &row["status"]["extensions"];
        assert!(
            extensions["vector"].is_string() && extensions["pg_cron"].is_string(),
            "{row}"
        );
        assert!(
            row["status"]["database_engine"]["version"].is_string(),
            "{row}"
        );
    }
    assert!(
        listed[1]["error"].as_str().unwrap().contains("127.0.0.1:9"),
        "{}",
        listed[1]
    );
    let summary = all.one("fleet");
    assert_eq!(
        (summary["environments"].as_u64(), summary["errors"].as_u64()),
        (Some(3), Some(1))
    );
    // The release by digest too, as ECR lists it; none when it lists none.
    assert_eq!(listed[2]["status"]["image_digest"], b_digest.as_str());
    assert!(
        listed[0]["status"]["image_digest"].is_null(),
        "{}",
        listed[0]
    );
    // Version skew: b's release is the newest in full; a runs another.
    let newest = summary["newest_full_release"].as_str().unwrap();
    assert!(newest.ends_with(":v12.0.2-rds-ca"), "{summary}");
    assert_eq!(listed[2]["status"]["image"], newest);
    assert_eq!(
        (listed[0]["skew"].as_bool(), listed[2]["skew"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(summary["skewed"], 1, "{summary}");
    let releases = summary["releases"].as_object().unwrap();
    assert_eq!(releases.len(), 2, "{summary}");
    assert!(releases.values().all(|n| n == 1), "{summary}");
    let human = a.poolside(&["fleet", "status"]);
    let row_of = |name: &str| {
        human
            .stdout()
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{}", human.stdout()))
            .to_string()
    };
    assert!(
        row_of(&format!("{} ", a.name)).contains("v12.0.1-rds-ca (skew)"),
        "{}",
        human.stdout()
    );
    let b_row = row_of(&b.name);
    assert!(!b_row.contains("(skew)"), "{}", human.stdout());
    assert!(b_row.contains(&b_digest[..19]), "{}", human.stdout());
    assert!(
        human
            .stdout()
            .contains("1 on another release than the newest in full"),
        "{}",
        human.stdout()
    );

    // Selected: b alone is clean.
    let only_b = a.poolside(&["fleet", "status", "--select", &b.name, "--output", "json"]);
    only_b.assert_code(0);
    assert_eq!(rows(&only_b).len(), 1);

    // A dashboard of b deleted by hand: drift and plan find it there.
    aws.cloudwatch
        .delete_dashboards()
        .dashboard_names(format!("poolside-{}", b.name))
        .send()
        .await
        .unwrap();
    for view in ["drift", "plan"] {
        let run = a.poolside(&["fleet", view, "--select", "fleet*", "--output", "json"]);
        run.assert_code(1); // the broken one is selected too
        let summary = run.one("fleet");
        assert_eq!(summary["changed"], 1, "{view}: {summary}");
        let clean = a.poolside(&["fleet", view, "--select", &a.name]);
        clean.assert_code(0);
        let changed = a.poolside(&["fleet", view, "--select", &b.name]);
        changed.assert_code(2);
        assert!(changed.stdout().contains(&b.name), "{}", changed.stdout());
    }
}
