//! JSON documents rendered from `templates/` (policies, the task definition,
//! the dashboard), so they are read and reviewed as documents.

use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use serde_json::Value;

const TEMPLATES: &[(&str, &str)] = &[
    (
        "bucket-policy.json.j2",
        include_str!("../templates/bucket-policy.json.j2"),
    ),
    (
        "ecr-lifecycle-policy.json.j2",
        include_str!("../templates/ecr-lifecycle-policy.json.j2"),
    ),
    (
        "ecs-tasks-trust-policy.json.j2",
        include_str!("../templates/ecs-tasks-trust-policy.json.j2"),
    ),
    (
        "ecs-infrastructure-trust-policy.json.j2",
        include_str!("../templates/ecs-infrastructure-trust-policy.json.j2"),
    ),
    (
        "task-execution-policy.json.j2",
        include_str!("../templates/task-execution-policy.json.j2"),
    ),
    (
        "task-definition.json.j2",
        include_str!("../templates/task-definition.json.j2"),
    ),
    (
        "schema-task-definition.json.j2",
        include_str!("../templates/schema-task-definition.json.j2"),
    ),
    (
        "dashboard.json.j2",
        include_str!("../templates/dashboard.json.j2"),
    ),
];

/// Renders a JSON template and parses the result, so a template that renders
/// to invalid JSON fails here and not at AWS.
pub fn render_json(name: &str, context: impl Serialize) -> anyhow::Result<Value> {
    let mut env = Environment::new();
    // Values are placed in quotes by the templates; `tojson` where they are
    // not. Escaping by file name would quote them twice.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    for (template_name, text) in TEMPLATES {
        env.add_template(template_name, text)?;
    }
    let rendered = env.get_template(name)?.render(context)?;
    serde_json::from_str(&rendered)
        .map_err(|e| anyhow::anyhow!("template {name} rendered invalid JSON: {e}"))
}
