//! VPC endpoints: the S3 gateway endpoint on the private route tables, and
//! interface endpoints so tasks reach ECR, Logs and Secrets Manager privately.

use crate::model::*;
use crate::resources::aws_error::{ignore_not_found, AwsResultExt};
use crate::resources::context::Context;
use crate::resources::resource::Resource;
use crate::resources::spec::*;
use crate::resources::tags::{from_ec2_tags, sync_ec2_tags, tag_spec, Names};
use crate::resources::waits::Waits;
use anyhow::anyhow;
use aws_sdk_ec2::types::{ResourceType, VpcEndpoint, VpcEndpointType};
use std::collections::{BTreeMap, BTreeSet};

pub fn convert(found: &[(ResourceId, &VpcEndpoint)], names: &Names) -> Vec<Live> {
    found
        .iter()
        .map(|(id, e)| {
            let logical = |ids: &[String]| -> BTreeSet<ResourceId> {
                ids.iter().map(|i| names.logical(i)).collect()
            };
            let groups: Vec<String> = e
                .groups()
                .iter()
                .filter_map(|g| g.group_id().map(str::to_string))
                .collect();
            Live {
                id: id.clone(),
                physical_id: e.vpc_endpoint_id().unwrap_or_default().to_string(),
                spec: Spec::VpcEndpoint(VpcEndpointSpec {
                    vpc: names.logical(e.vpc_id().unwrap_or_default()),
                    service_name: e.service_name().unwrap_or_default().to_string(),
                    endpoint_type: e
                        .vpc_endpoint_type()
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    route_tables: logical(e.route_table_ids()),
                    subnets: logical(e.subnet_ids()),
                    security_groups: logical(&groups),
                    // Private DNS does not apply to gateway endpoints (moto reports it on anyway).
                    private_dns: e.vpc_endpoint_type() == Some(&VpcEndpointType::Interface)
                        && e.private_dns_enabled().unwrap_or(false),
                    tags: from_ec2_tags(e.tags()),
                }),
                attributes: BTreeMap::new(),
            }
        })
        .collect()
}

fn resolve_all(cx: &Context, ids: &BTreeSet<ResourceId>) -> anyhow::Result<Vec<String>> {
    ids.iter().map(|i| cx.resolve(i)).collect()
}

pub async fn create(cx: &Context, spec: &VpcEndpointSpec) -> anyhow::Result<String> {
    let mut call = cx
        .clients
        .ec2
        .create_vpc_endpoint()
        .vpc_id(cx.resolve(&spec.vpc)?)
        .service_name(&spec.service_name)
        .vpc_endpoint_type(VpcEndpointType::from(spec.endpoint_type.as_str()))
        .tag_specifications(tag_spec(ResourceType::VpcEndpoint, &spec.tags));
    if spec.endpoint_type == "Gateway" {
        call = call.set_route_table_ids(Some(resolve_all(cx, &spec.route_tables)?));
    } else {
        call = call
            .set_subnet_ids(Some(resolve_all(cx, &spec.subnets)?))
            .set_security_group_ids(Some(resolve_all(cx, &spec.security_groups)?))
            .private_dns_enabled(spec.private_dns);
    }
    let out = call.send().await.aws("CreateVpcEndpoint")?;
    out.vpc_endpoint()
        .and_then(|e| e.vpc_endpoint_id())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("CreateVpcEndpoint returned no id"))
}

pub async fn update(
    cx: &Context,
    endpoint_id: &str,
    old: &VpcEndpointSpec,
    new: &VpcEndpointSpec,
) -> anyhow::Result<()> {
    let added = |a: &BTreeSet<ResourceId>, b: &BTreeSet<ResourceId>| {
        resolve_all(cx, &b.difference(a).cloned().collect())
    };
    // What is leaving may be gone from our map already; fall back to the AWS id as observed.
    let removed = |a: &BTreeSet<ResourceId>, b: &BTreeSet<ResourceId>| -> Vec<String> {
        a.difference(b)
            .map(|i| cx.resolve(i).unwrap_or_else(|_| i.0.clone()))
            .collect()
    };
    let sets_changed = old.route_tables != new.route_tables
        || old.subnets != new.subnets
        || old.security_groups != new.security_groups
        || old.private_dns != new.private_dns;
    if sets_changed {
        let mut call = cx
            .clients
            .ec2
            .modify_vpc_endpoint()
            .vpc_endpoint_id(endpoint_id);
        let non_empty = |v: Vec<String>| (!v.is_empty()).then_some(v);
        call = call
            .set_add_route_table_ids(non_empty(added(&old.route_tables, &new.route_tables)?))
            .set_remove_route_table_ids(non_empty(removed(&old.route_tables, &new.route_tables)))
            .set_add_subnet_ids(non_empty(added(&old.subnets, &new.subnets)?))
            .set_remove_subnet_ids(non_empty(removed(&old.subnets, &new.subnets)))
            .set_add_security_group_ids(non_empty(added(
                &old.security_groups,
                &new.security_groups,
            )?))
            .set_remove_security_group_ids(non_empty(removed(
                &old.security_groups,
                &new.security_groups,
            )));
        if new.endpoint_type == "Interface" && old.private_dns != new.private_dns {
            call = call.private_dns_enabled(new.private_dns);
        }
        call.send().await.aws("ModifyVpcEndpoint")?;
    }
    sync_ec2_tags(cx, endpoint_id, &old.tags, &new.tags).await
}

pub async fn delete(cx: &Context, endpoint_id: &str) -> anyhow::Result<()> {
    let result = cx
        .clients
        .ec2
        .delete_vpc_endpoints()
        .vpc_endpoint_ids(endpoint_id)
        .send()
        .await;
    ignore_not_found(result, "DeleteVpcEndpoints")
}

impl Resource for VpcEndpointSpec {
    async fn create(
        &self,
        cx: &Context,
        _id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        create(cx, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        live: &Live,
        old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        update(cx, &live.physical_id, old, self).await
    }

    async fn delete(&self, cx: &Context, live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete(cx, &live.physical_id).await
    }
}
