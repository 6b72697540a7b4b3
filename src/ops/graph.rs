//! `poolside graph`: the environment as a diagram, in Mermaid or Graphviz
//! DOT. Drawn from what discovery found (so a missing or an extra resource
//! shows), or with `--plan` from the plan (what would be created, changed,
//! replaced, deleted). Read-only.

use super::{exit, RunOptions, Session};
use crate::config::Config;
use crate::engine::plan::{Action, Plan};
use crate::model::{AwsService, Kind, ResourceId};
use crate::resources::spec::{Live, Spec};
use crate::resources::Context;
use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}

/// One box of the diagram.
struct Node {
    id: ResourceId,
    /// The lines under the id: the AWS id, and what is worth seeing.
    details: Vec<String>,
    /// `live`, `create`, `update`, `replace`, `delete`, `alarm`, `ok`...
    class: &'static str,
}

pub async fn graph(
    run: &RunOptions,
    config: Config,
    format: GraphFormat,
    from_plan: bool,
) -> anyhow::Result<ExitCode> {
    let session = Session::open(config).await?;
    let (plan, live) = session.plan_with_live().await?;
    let nodes = if from_plan {
        planned(&session, &plan, &live)
    } else {
        found(&session.cx, &live)
    };
    let edges = edges(&session, &live, &nodes);
    let drawn = match format {
        GraphFormat::Mermaid => mermaid(&nodes, &edges),
        GraphFormat::Dot => dot(&nodes, &edges),
    };
    match run.output {
        crate::output::Format::Json => crate::output::json_line(
            "graph",
            serde_json::json!({
                "format": format!("{format:?}").to_lowercase(),
                "plan": from_plan,
                "nodes": nodes.iter().map(|n| serde_json::json!({
                    "id": n.id.to_string(), "class": n.class, "details": n.details,
                })).collect::<Vec<_>>(),
                "diagram": drawn,
            }),
        ),
        crate::output::Format::Human => print!("{drawn}"),
    }
    run.print_stats(&session);
    Ok(ExitCode::from(exit::OK))
}

/// What exists, with its state where that is worth a colour.
fn found(cx: &Context, live: &[Live]) -> Vec<Node> {
    live.iter()
        .map(|l| {
            let mut details = vec![l.physical_id.clone()];
            details.extend(live_details(cx, l));
            let class = match cx.attribute(&l.id, "state").as_deref() {
                Some("ALARM") => "alarm",
                Some("INSUFFICIENT_DATA") => "insufficient",
                Some("OK") => "ok",
                _ => "live",
            };
            Node {
                id: l.id.clone(),
                details,
                class,
            }
        })
        .collect()
}

/// What discovery read that a diagram should show: the subnets' zones, the
/// service's tasks and release, the database's engine.
fn live_details(cx: &Context, l: &Live) -> Vec<String> {
    let attribute = |key: &str| cx.attribute(&l.id, key);
    match (&l.spec, l.id.kind()) {
        (Spec::Subnet(s), _) => vec![format!("{} {}", s.availability_zone, s.cidr)],
        (_, Some(Kind::Service)) => vec![format!(
            "{} of {} tasks running",
            attribute("running").unwrap_or_default(),
            attribute("desired").unwrap_or_default()
        )],
        (_, Some(Kind::TaskDefinition)) => attribute("image").into_iter().collect(),
        (Spec::DbInstance(db), _) => vec![format!(
            "{} {}",
            db.engine,
            attribute(crate::resources::rds::RUNNING_ENGINE_VERSION).unwrap_or_default()
        )],
        _ => vec![],
    }
}

/// The plan: every resource desired or found, coloured by what deploy does.
fn planned(session: &Session, plan: &Plan, live: &[Live]) -> Vec<Node> {
    let actions: BTreeMap<&ResourceId, Action> =
        plan.changes.iter().map(|c| (&c.id, c.action)).collect();
    let physical: BTreeMap<&ResourceId, &str> = live
        .iter()
        .map(|l| (&l.id, l.physical_id.as_str()))
        .collect();
    let ids: BTreeSet<&ResourceId> = session
        .desired
        .iter()
        .map(|d| &d.id)
        .chain(live.iter().map(|l| &l.id))
        .collect();
    ids.into_iter()
        .map(|id| {
            let class = match actions.get(id) {
                Some(Action::Create) => "create",
                Some(Action::Update) => "update",
                Some(Action::Replace) => "replace",
                Some(Action::Delete) => "delete",
                None => "live",
            };
            Node {
                id: id.clone(),
                details: physical
                    .get(id)
                    .map(|p| p.to_string())
                    .into_iter()
                    .collect(),
                class,
            }
        })
        .collect()
}

/// Who refers to whom, among the nodes drawn: the desired references for a
/// resource the blueprint wants, else what discovery read.
fn edges(session: &Session, live: &[Live], nodes: &[Node]) -> Vec<(ResourceId, ResourceId)> {
    let drawn: BTreeSet<&ResourceId> = nodes.iter().map(|n| &n.id).collect();
    let mut edges = BTreeSet::new();
    let specs = session
        .desired
        .iter()
        .map(|d| (&d.id, &d.spec))
        .chain(live.iter().map(|l| (&l.id, &l.spec)));
    for (id, spec) in specs {
        for to in spec.references() {
            if drawn.contains(id) && drawn.contains(&to) && *id != to {
                edges.insert((id.clone(), to));
            }
        }
    }
    edges.into_iter().collect()
}

/// The group a resource is drawn in.
fn group(id: &ResourceId) -> &'static str {
    match id.kind().map(|k| k.service()) {
        Some(AwsService::Ec2) => "Network (VPC)",
        Some(AwsService::Rds) => "Database (RDS)",
        Some(AwsService::Ecs | AwsService::ApplicationAutoScaling) => "Service (ECS)",
        Some(AwsService::Elb | AwsService::Acm | AwsService::Route53) => "Load balancer",
        Some(AwsService::S3 | AwsService::Ecr) => "Storage and registry",
        Some(AwsService::CloudWatch | AwsService::Logs) => "Observability",
        Some(AwsService::Iam | AwsService::SecretsManager) => "Identity and secrets",
        _ => "Other",
    }
}

/// Terraform's colours for a plan; alarms by state.
const CLASSES: [(&str, &str, &str); 8] = [
    ("live", "#ffffff", "#555555"),
    ("create", "#d9f7d9", "#2e8b2e"),
    ("update", "#fff4c2", "#b38f00"),
    ("replace", "#ffe0c2", "#c05a00"),
    ("delete", "#ffd6d6", "#c00000"),
    ("ok", "#d9f7d9", "#2e8b2e"),
    ("alarm", "#ffd6d6", "#c00000"),
    ("insufficient", "#eeeeee", "#888888"),
];

fn grouped(nodes: &[Node]) -> BTreeMap<&'static str, Vec<(usize, &Node)>> {
    let mut groups: BTreeMap<&'static str, Vec<(usize, &Node)>> = BTreeMap::new();
    for (n, node) in nodes.iter().enumerate() {
        groups.entry(group(&node.id)).or_default().push((n, node));
    }
    groups
}

fn mermaid(nodes: &[Node], edges: &[(ResourceId, ResourceId)]) -> String {
    let index: BTreeMap<&ResourceId, usize> = nodes
        .iter()
        .enumerate()
        .map(|(n, node)| (&node.id, n))
        .collect();
    let text = |s: &str| s.replace('"', "#quot;");
    let mut out = String::from("flowchart LR\n");
    for (g, (name, members)) in grouped(nodes).into_iter().enumerate() {
        out.push_str(&format!("  subgraph g{g}[\"{name}\"]\n"));
        for (n, node) in members {
            let mut label = text(&node.id.to_string());
            for line in &node.details {
                label.push_str(&format!("<br/>{}", text(line)));
            }
            out.push_str(&format!("    n{n}[\"{label}\"]:::{}\n", node.class));
        }
        out.push_str("  end\n");
    }
    for (from, to) in edges {
        out.push_str(&format!("  n{} --> n{}\n", index[from], index[to]));
    }
    for (class, fill, stroke) in CLASSES {
        out.push_str(&format!("  classDef {class} fill:{fill},stroke:{stroke}\n"));
    }
    out
}

fn dot(nodes: &[Node], edges: &[(ResourceId, ResourceId)]) -> String {
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let colours: BTreeMap<&str, (&str, &str)> =
        CLASSES.iter().map(|(c, f, s)| (*c, (*f, *s))).collect();
    let mut out = String::from(
        "digraph poolside {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n",
    );
    for (g, (name, members)) in grouped(nodes).into_iter().enumerate() {
        out.push_str(&format!(
            "  subgraph cluster_{g} {{\n    label=\"{name}\";\n"
        ));
        for (_, node) in members {
            let mut label = quote(&node.id.to_string());
            for line in &node.details {
                label.push_str(&format!("\\n{}", quote(line)));
            }
            let (fill, stroke) = colours[node.class];
            out.push_str(&format!(
                "    \"{}\" [label=\"{label}\", fillcolor=\"{fill}\", color=\"{stroke}\", class=\"{}\"];\n",
                quote(&node.id.to_string()),
                node.class
            ));
        }
        out.push_str("  }\n");
    }
    for (from, to) in edges {
        out.push_str(&format!(
            "  \"{}\" -> \"{}\";\n",
            quote(&from.to_string()),
            quote(&to.to_string())
        ));
    }
    out.push_str("}\n");
    out
}
