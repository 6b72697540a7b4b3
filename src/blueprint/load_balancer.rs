//! The front of the service: the load balancer, its two target groups (ECS
//! shifts traffic between them during a canary or linear rollout), the
//! certificate and DNS record when a zone is given, the listeners (HTTPS
//! with a TLS 1.3 policy and HTTP redirecting to it, or plain HTTP without a
//! certificate), the production rule, and the role ECS shifts traffic with.

use super::builder::{AccountFacts, Builder};
use crate::config::Config;
use crate::model::refs::Reference;
use crate::model::*;
use crate::names::{admin_port, ALTERNATE_TARGET_GROUP};
use crate::resources::spec::*;
use crate::templates::render_json;
use serde_json::json;
use std::collections::BTreeMap;

/// The TLS policy of the HTTPS listener: TLS 1.3, with 1.2 for older clients.
const TLS_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

/// What the service and the observability tier refer to.
pub(super) struct Front {
    pub load_balancer: ResourceId,
    pub target_group: ResourceId,
    pub alternate_target_group: ResourceId,
    pub serving_listener: ResourceId,
    pub production_rule: ResourceId,
}

fn id(kind: Kind, name: &str) -> ResourceId {
    ResourceId::new(kind, name)
}

pub(super) fn front(
    b: &Builder,
    config: &Config,
    account: &AccountFacts,
    network: &super::network::Network,
) -> anyhow::Result<(Vec<Desired>, Front)> {
    let public_subnets = &network.public_subnets;
    let load_balancer = id(Kind::LoadBalancer, "api");
    let internet_facing = b.desired(&load_balancer, "api", |tags| {
        Spec::LoadBalancer(LoadBalancerSpec {
            name: format!("poolside-{}", config.name),
            scheme: "internet-facing".into(),
            subnets: public_subnets.iter().map(Reference::to).collect(),
            security_groups: [Reference::to(&id(Kind::SecurityGroup, "load-balancer"))].into(),
            tags,
        })
    });
    // AWS: `InvalidSubnet` for an internet-facing load balancer until the
    // VPC's internet gateway is attached.
    let mut out = vec![internet_facing.after(&id(Kind::InternetGateway, "main"))];
    out.extend(target_groups(b, config, &network.vpc));
    let target_group = id(Kind::TargetGroup, "api");
    let certificate = certificate_and_record(b, config, &load_balancer, &mut out);
    let (listeners, serving_listener) = listeners(&load_balancer, &target_group, certificate);
    out.extend(listeners);
    let front = Front {
        load_balancer,
        target_group,
        alternate_target_group: id(Kind::TargetGroup, ALTERNATE_TARGET_GROUP),
        serving_listener,
        production_rule: id(Kind::ListenerRule, "api"),
    };
    out.push(production_rule(b, &front));
    out.push(traffic_role(b, config, account)?);
    Ok((out, front))
}

/// Two target groups: ECS moves traffic from the serving one to the other
/// during a canary or linear rollout. Both exist in every phase, so changing
/// the strategy (a phase promotion) makes nothing new.
fn target_groups(b: &Builder, config: &Config, vpc: &ResourceId) -> Vec<Desired> {
    [("api", ""), (ALTERNATE_TARGET_GROUP, "-a")]
        .into_iter()
        .map(|(name, suffix)| {
            b.desired(&id(Kind::TargetGroup, name), name, |tags| {
                Spec::TargetGroup(TargetGroupSpec {
                    // Target group names share the 32-character limit (env
                    // names are at most 20): a short suffix.
                    name: format!("poolside-{}{suffix}", config.name),
                    port: config.network.api_port.into(),
                    protocol: "HTTP".into(),
                    target_type: "ip".into(),
                    vpc: Reference::to(vpc),
                    health_check_path: "/ready".into(),
                    health_check_port: admin_port(config).to_string(),
                    health_check_interval_s: 15,
                    healthy_threshold: 2,
                    unhealthy_threshold: 3,
                    matcher: "200".into(),
                    // PostgREST answers in well under a second; AWS's default
                    // of 300 s would hold every rolling deployment up for five
                    // minutes.
                    deregistration_delay_s: 30,
                    tags,
                })
            })
        })
        .collect()
}

/// The certificate: the one given, or one poolside makes in the zone (and
/// the zone's alias record to the load balancer); `None` without either.
fn certificate_and_record(
    b: &Builder,
    config: &Config,
    load_balancer: &ResourceId,
    out: &mut Vec<Desired>,
) -> Option<String> {
    let api = &config.api;
    let certificate = match (&api.certificate_arn, &api.hosted_zone_id, &api.domain_name) {
        (Some(arn), _, _) => Some(arn.clone()),
        (None, Some(zone), Some(domain)) => {
            let certificate = id(Kind::Certificate, "api");
            out.push(b.desired(&certificate, "api", |tags| {
                Spec::Certificate(CertificateSpec {
                    domain_name: domain.clone(),
                    zone_id: zone.clone(),
                    tags,
                })
            }));
            Some(Reference::to(&certificate))
        }
        _ => None,
    };
    if let (Some(zone), Some(domain)) = (&api.hosted_zone_id, &api.domain_name) {
        out.push(Desired {
            id: id(Kind::DnsRecord, "api"),
            spec: Spec::DnsRecord(DnsRecordSpec {
                zone_id: zone.clone(),
                name: domain.clone(),
                alias_target: Reference::to_attribute(load_balancer, "dns_name"),
                alias_zone: Reference::to_attribute(load_balancer, "canonical_zone"),
                owner: format!("poolside:env={}", config.name),
            }),
            after: vec![],
        });
    }
    certificate
}

/// HTTPS, and HTTP redirecting to it; or, without a certificate (the local
/// environment), plain HTTP, and plan warns. With the listener that serves.
fn listeners(
    load_balancer: &ResourceId,
    target_group: &ResourceId,
    certificate: Option<String>,
) -> (Vec<Desired>, ResourceId) {
    let forward = ListenerAction::Forward {
        target_group: Reference::to(target_group),
    };
    match &certificate {
        Some(certificate) => {
            let redirect = ListenerAction::Redirect {
                port: "443".into(),
                protocol: "HTTPS".into(),
                status_code: "HTTP_301".into(),
            };
            let listeners = vec![
                listener(load_balancer, "http", 80, "HTTP", None, redirect),
                listener(
                    load_balancer,
                    "https",
                    443,
                    "HTTPS",
                    Some(certificate),
                    forward,
                ),
            ];
            (listeners, id(Kind::Listener, "https"))
        }
        None => {
            let listeners = vec![listener(load_balancer, "http", 80, "HTTP", None, forward)];
            (listeners, id(Kind::Listener, "http"))
        }
    }
}

fn listener(
    load_balancer: &ResourceId,
    name: &str,
    port: i32,
    protocol: &str,
    certificate: Option<&String>,
    action: ListenerAction,
) -> Desired {
    Desired {
        id: id(Kind::Listener, name),
        spec: Spec::Listener(ListenerSpec {
            load_balancer: Reference::to(load_balancer),
            port,
            protocol: protocol.into(),
            certificate: certificate.cloned(),
            ssl_policy: certificate.map(|_| TLS_POLICY.to_string()),
            action,
        }),
        after: vec![],
    }
}

/// The production rule: all paths, by weight between the two groups. ECS
/// names it in the service and changes its weights while it shifts.
fn production_rule(b: &Builder, front: &Front) -> Desired {
    b.desired(&front.production_rule, "api", |tags| {
        Spec::ListenerRule(ListenerRuleSpec {
            listener: Reference::to(&front.serving_listener),
            priority: 1,
            path_pattern: "/*".into(),
            target_groups: vec![
                Reference::to(&front.target_group),
                Reference::to(&front.alternate_target_group),
            ],
            tags,
        })
    })
}

/// The role ECS assumes to shift the API's traffic between the groups.
fn traffic_role(b: &Builder, config: &Config, account: &AccountFacts) -> anyhow::Result<Desired> {
    let env = &config.name;
    let ecs_trust = render_json("ecs-infrastructure-trust-policy.json.j2", json!({}))?;
    let role = id(Kind::Role, "ecs-load-balancers");
    Ok(b.desired(&role, "ecs-load-balancers", |tags| {
        Spec::Role(RoleSpec {
            name: format!("poolside-{env}-ecs-load-balancers"),
            description: format!(
                "poolside {env}: ECS shifts the API's traffic between its two target groups"
            ),
            trust_policy: ecs_trust,
            inline_policies: BTreeMap::new(),
            managed_policies: [crate::names::load_balancers_infrastructure_policy(
                &account.partition,
            )]
            .into(),
            permissions_boundary: config.permissions_boundary(),
            tags,
        })
    }))
}
