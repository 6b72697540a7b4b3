//! `poolside graph`: the diagram names every resource discovery finds, the
//! plan's diagram every resource the blueprint wants, and a resource deleted
//! by hand shows as missing from the first and to be created in the second.

use crate::support::*;
use serde_json::Value;
use std::collections::BTreeSet;

fn graph(env: &Env, extra: &[&str]) -> Value {
    let mut args = vec!["graph", "--env", &env.name, "--output", "json"];
    args.extend_from_slice(extra);
    let run = env.poolside(&args);
    run.assert_code(0);
    run.one("graph")
}

fn ids(graph: &Value, class: Option<&str>) -> BTreeSet<String> {
    graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| class.is_none_or(|c| n["class"] == c))
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_diagram_names_what_discovery_found_and_the_plan_what_deploy_would_do() {
    let env = Env::new("graph");
    env.write();
    // Before the first deploy, the plan's diagram is the blueprint, all new.
    let wanted = graph(&env, &["--plan"]);
    let desired = ids(&wanted, None);
    assert_eq!(ids(&wanted, Some("create")), desired);
    assert!(desired.len() > 20, "{desired:?}");
    env.deploy();

    // After it, discovery finds every one of them, and the Mermaid text
    // draws each with an edge to what it refers to.
    let found = graph(&env, &[]);
    assert_eq!(ids(&found, None), desired);
    let mermaid = found["diagram"].as_str().unwrap();
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    for id in &desired {
        assert!(mermaid.contains(&format!("[\"{id}")), "{id} is not drawn");
    }
    assert!(mermaid.contains(" --> "), "no edge: {mermaid}");
    let service = found["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "service/api")
        .unwrap()
        .clone();
    assert!(
        service["details"].to_string().contains("tasks running"),
        "{service}"
    );
    let dot = graph(&env, &["--format", "dot"]);
    let text = dot["diagram"].as_str().unwrap();
    assert!(text.starts_with("digraph poolside {"), "{text}");
    assert!(text.contains("\"subnet/"), "{text}");
    assert!(text.contains(" -> "), "{text}");
    // Graphviz itself reads it (localstack/install.sh installs it).
    let rendered = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .expect("graphviz's dot runs (./localstack/install.sh installs it)");
    assert!(
        rendered.status.success() && String::from_utf8_lossy(&rendered.stdout).contains("<svg"),
        "dot refused the diagram: {}\n{text}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    for id in &desired {
        assert!(
            text.contains(&format!("\"{id}\"")),
            "{id} is not in the DOT graph"
        );
    }

    // A dashboard deleted by hand: missing from what is found, planned anew.
    let aws = aws().await;
    aws.cloudwatch
        .delete_dashboards()
        .dashboard_names(format!("poolside-{}", env.name))
        .send()
        .await
        .unwrap();
    let found = ids(&graph(&env, &[]), None);
    assert!(!found.contains("dashboard/main"), "{found:?}");
    let planned = graph(&env, &["--plan"]);
    assert_eq!(
        ids(&planned, Some("create")),
        BTreeSet::from(["dashboard/main".to_string()])
    );
}
