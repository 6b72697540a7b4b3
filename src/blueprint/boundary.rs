//! The permissions boundary of the roles poolside makes, in an environment
//! that acts as the customer's role: the most any of them may ever do,
//! whatever policies they are given. The customer's administrator makes it
//! (`poolside onboarding`), and the operator policy lets poolside make and
//! change only roles that carry it, so holding the operator role cannot
//! become holding more.
//!
//! Contract: pure; the union of what the blueprint's roles need, with the
//! environment's secrets, log groups and load balancer named by pattern.

use super::builder::AccountFacts;
use super::service::execution_policy;
use crate::config::Config;
use serde_json::{json, Value};

/// The boundary's policy document.
pub fn roles_boundary(config: &Config, account: &AccountFacts) -> anyhow::Result<Value> {
    let (partition, region, id, env) = (
        &account.partition,
        &config.region,
        &account.account_id,
        &config.name,
    );
    let arn =
        |service: &str, rest: String| format!("arn:{partition}:{service}:{region}:{id}:{rest}");
    // The execution roles: pull, log, read the environment's secrets and
    // the master secret RDS makes.
    let mut boundary = execution_policy(
        config,
        account,
        &format!("/poolside/{env}/*"),
        &[
            arn("secretsmanager", format!("secret:poolside/{env}/*")),
            arn("secretsmanager", "secret:rds!db-*".into()),
        ],
    )?;
    // The role ECS shifts traffic with (AmazonECSInfrastructureRolePolicyForLoadBalancers):
    // any load-balancing action, on this environment's load balancer only,
    // so a new action in that AWS-managed policy is not cut off.
    let statements = boundary["Statement"].as_array_mut().expect("a policy");
    statements.push(json!({
        "Sid": "ReadLoadBalancing",
        "Effect": "Allow",
        "Action": "elasticloadbalancing:Describe*",
        "Resource": "*"
    }));
    let load_balancer = [
        format!("loadbalancer/app/poolside-{env}/*"),
        format!("listener/app/poolside-{env}/*"),
        format!("listener-rule/app/poolside-{env}/*"),
        format!("targetgroup/poolside-{env}/*"),
        format!("targetgroup/poolside-{env}-a/*"),
    ]
    .map(|rest| arn("elasticloadbalancing", rest));
    statements.push(json!({
        "Sid": "ShiftTrafficOnTheEnvironmentsLoadBalancer",
        "Effect": "Allow",
        "Action": "elasticloadbalancing:*",
        "Resource": load_balancer
    }));
    Ok(boundary)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything the blueprint's roles are given falls inside the
    /// boundary: each action of their inline policies is in it.
    #[test]
    fn the_boundary_holds_what_every_role_is_given() {
        let text = "name = \"acme\"\nregion = \"eu-west-1\"\nphase = \"limited\"\n[target]\nrole_arn = \"arn:aws:iam::111122223333:role/poolside-operator/poolside-operator-acme\"\n\
             [network]\nvpc_cidr = \"10.1.0.0/16\"\navailability_zones = [\"eu-west-1a\", \"eu-west-1b\"]\nallowed_ingress_cidrs = [\"203.0.113.0/24\"]\n\
             [database]\nschema_runner = \"ecs-task\"\n";
        let config = crate::config::parse("acme.toml", "acme", text.to_string()).unwrap();
        let account = AccountFacts::example();
        let boundary = roles_boundary(&config, &account).unwrap().to_string();
        let mut roles = 0;
        for desired in crate::blueprint::build(&config, &account).unwrap() {
            let crate::resources::spec::Spec::Role(role) = desired.spec else {
                continue;
            };
            roles += 1;
            assert_eq!(
                role.permissions_boundary.as_deref(),
                Some("arn:aws:iam::111122223333:policy/poolside-operator/poolside-operator-acme-boundary"),
                "{}",
                role.name
            );
            for policy in role.inline_policies.values() {
                for statement in policy["Statement"].as_array().unwrap() {
                    let actions = match &statement["Action"] {
                        Value::String(a) => vec![a.clone()],
                        list => list
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|a| a.as_str().unwrap().to_string())
                            .collect(),
                    };
                    for action in actions {
                        assert!(
                            boundary.contains(&format!("\"{action}\"")),
                            "{action} of {} is outside the boundary",
                            role.name
                        );
                    }
                }
            }
        }
        assert_eq!(
            roles, 4,
            "task, task-execution, schema-execution, ecs-load-balancers"
        );
        assert!(boundary.contains("secret:poolside/acme/*"));
        assert!(!boundary.contains("\"*\"]") || boundary.contains("ecr:GetAuthorizationToken"));
    }
}
