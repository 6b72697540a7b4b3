//! Route tables: the public subnets' (to the internet gateway) and one per
//! private subnet (to its zone's NAT gateway), their routes and their
//! subnet associations.

use crate::model::*;
use crate::resources::aws_error::{error_code, ignore_not_found, AwsResultExt};
use crate::resources::context::Context;
use crate::resources::resource::Resource;
use crate::resources::spec::*;
use crate::resources::tags::{from_ec2_tags, sync_ec2_tags, tag_spec, Names};
use crate::resources::waits::Waits;
use anyhow::anyhow;
use aws_sdk_ec2::types::{Filter, ResourceType};
use std::collections::{BTreeMap, BTreeSet};

pub(super) fn route_table_live(
    id: &ResourceId,
    r: &aws_sdk_ec2::types::RouteTable,
    names: &Names,
) -> Live {
    Live {
        id: id.clone(),
        physical_id: r.route_table_id().unwrap_or_default().to_string(),
        spec: Spec::RouteTable(RouteTableSpec {
            vpc: names.logical(r.vpc_id().unwrap_or_default()),
            routes: managed_routes(r.routes())
                .map(|(destination, target)| Route {
                    destination,
                    target: names.logical(&target),
                })
                .collect(),
            subnets: r
                .associations()
                .iter()
                .filter_map(|a| a.subnet_id())
                .map(|s| names.logical(s))
                .collect(),
            tags: from_ec2_tags(r.tags()),
        }),
        attributes: BTreeMap::new(),
    }
}

/// Routes poolside reconciles: not the VPC's local route, and not the
/// prefix-list routes a gateway endpoint manages itself.
fn managed_routes(
    routes: &[aws_sdk_ec2::types::Route],
) -> impl Iterator<Item = (String, String)> + '_ {
    routes.iter().filter_map(|r| {
        let destination = r.destination_cidr_block()?;
        let target = r
            .gateway_id()
            .or(r.nat_gateway_id())
            .or(r.network_interface_id())
            .or(r.vpc_peering_connection_id())
            .or(r.transit_gateway_id())
            .unwrap_or("unknown");
        (target != "local").then(|| (destination.to_string(), target.to_string()))
    })
}

pub async fn create_route_table(cx: &Context, spec: &RouteTableSpec) -> anyhow::Result<String> {
    let out = cx
        .clients
        .ec2
        .create_route_table()
        .vpc_id(cx.resolve(&spec.vpc)?)
        .tag_specifications(tag_spec(ResourceType::RouteTable, &spec.tags))
        .send()
        .await
        .aws("CreateRouteTable")?;
    let rtb_id = out
        .route_table()
        .and_then(|r| r.route_table_id())
        .ok_or_else(|| anyhow!("CreateRouteTable returned no id"))?
        .to_string();
    let empty = RouteTableSpec {
        routes: BTreeSet::new(),
        subnets: BTreeSet::new(),
        ..spec.clone()
    };
    update_route_table(cx, &rtb_id, &empty, spec).await?;
    Ok(rtb_id)
}

pub async fn update_route_table(
    cx: &Context,
    rtb_id: &str,
    old: &RouteTableSpec,
    new: &RouteTableSpec,
) -> anyhow::Result<()> {
    update_routes(cx, rtb_id, old, new).await?;
    if old.subnets != new.subnets {
        update_associations(cx, rtb_id, old, new).await?;
    }
    sync_ec2_tags(cx, rtb_id, &old.tags, &new.tags).await
}

/// Routes by destination: created, replaced when their target changed,
/// deleted when no longer wanted.
async fn update_routes(
    cx: &Context,
    rtb_id: &str,
    old: &RouteTableSpec,
    new: &RouteTableSpec,
) -> anyhow::Result<()> {
    let ec2 = &cx.clients.ec2;
    let old_by_destination: BTreeMap<&str, &Route> = old
        .routes
        .iter()
        .map(|r| (r.destination.as_str(), r))
        .collect();
    let new_by_destination: BTreeMap<&str, &Route> = new
        .routes
        .iter()
        .map(|r| (r.destination.as_str(), r))
        .collect();
    for (destination, route) in &new_by_destination {
        if old_by_destination.get(destination) == Some(route) {
            continue;
        }
        let target = cx.resolve(&route.target)?;
        let is_nat = route.target.kind() == Some(Kind::NatGateway) || target.starts_with("nat-");
        if old_by_destination.contains_key(destination) {
            let call = ec2
                .replace_route()
                .route_table_id(rtb_id)
                .destination_cidr_block(*destination);
            let call = if is_nat {
                call.nat_gateway_id(target)
            } else {
                call.gateway_id(target)
            };
            call.send().await.aws("ReplaceRoute")?;
        } else {
            let call = ec2
                .create_route()
                .route_table_id(rtb_id)
                .destination_cidr_block(*destination);
            let call = if is_nat {
                call.nat_gateway_id(target)
            } else {
                call.gateway_id(target)
            };
            call.send().await.aws("CreateRoute")?;
        }
    }
    for destination in old_by_destination
        .keys()
        .filter(|d| !new_by_destination.contains_key(*d))
    {
        let result = ec2
            .delete_route()
            .route_table_id(rtb_id)
            .destination_cidr_block(*destination)
            .send()
            .await;
        ignore_not_found(result, "DeleteRoute")?;
    }
    Ok(())
}

/// The subnets associated with the table: new ones associated, leaving
/// ones disassociated.
async fn update_associations(
    cx: &Context,
    rtb_id: &str,
    old: &RouteTableSpec,
    new: &RouteTableSpec,
) -> anyhow::Result<()> {
    let ec2 = &cx.clients.ec2;
    for subnet in new.subnets.difference(&old.subnets) {
        associate(cx, rtb_id, &cx.resolve(subnet)?).await?;
    }
    let leaving: Vec<String> = old
        .subnets
        .difference(&new.subnets)
        .map(|s| cx.resolve(s))
        .collect::<Result<_, _>>()?;
    if !leaving.is_empty() {
        for association_id in associations(cx, rtb_id, Some(&leaving)).await? {
            ec2.disassociate_route_table()
                .association_id(association_id)
                .send()
                .await
                .aws("DisassociateRouteTable")?;
        }
    }
    Ok(())
}

/// Associates a subnet, moving it over if another table holds it.
async fn associate(cx: &Context, rtb_id: &str, subnet_id: &str) -> anyhow::Result<()> {
    let ec2 = &cx.clients.ec2;
    let result = ec2
        .associate_route_table()
        .route_table_id(rtb_id)
        .subnet_id(subnet_id)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(err) if error_code(&err) == Some("Resource.AlreadyAssociated") => {
            let held_by = ec2
                .describe_route_tables()
                .filters(
                    Filter::builder()
                        .name("association.subnet-id")
                        .values(subnet_id)
                        .build(),
                )
                .send()
                .await
                .aws("DescribeRouteTables")?;
            let association_id = held_by
                .route_tables()
                .iter()
                .flat_map(|r| r.associations())
                .find(|a| a.subnet_id() == Some(subnet_id))
                .and_then(|a| a.route_table_association_id())
                .ok_or_else(|| {
                    anyhow!("subnet {subnet_id} is associated, but no association was found")
                })?;
            ec2.replace_route_table_association()
                .association_id(association_id)
                .route_table_id(rtb_id)
                .send()
                .await
                .aws("ReplaceRouteTableAssociation")?;
            Ok(())
        }
        Err(err) => Err(err).aws("AssociateRouteTable"),
    }
}

/// The subnet association ids of a route table, optionally only for some subnets.
async fn associations(
    cx: &Context,
    rtb_id: &str,
    subnets: Option<&[String]>,
) -> anyhow::Result<Vec<String>> {
    let out = cx
        .clients
        .ec2
        .describe_route_tables()
        .route_table_ids(rtb_id)
        .send()
        .await
        .aws("DescribeRouteTables")?;
    Ok(out
        .route_tables()
        .iter()
        .flat_map(|r| r.associations())
        .filter(|a| !a.main().unwrap_or(false))
        .filter(|a| {
            subnets.is_none_or(|s| a.subnet_id().is_some_and(|id| s.iter().any(|x| x == id)))
        })
        .filter_map(|a| a.route_table_association_id().map(str::to_string))
        .collect())
}

pub async fn delete_route_table(cx: &Context, rtb_id: &str) -> anyhow::Result<()> {
    for association_id in associations(cx, rtb_id, None).await? {
        let result = cx
            .clients
            .ec2
            .disassociate_route_table()
            .association_id(association_id)
            .send()
            .await;
        ignore_not_found(result, "DisassociateRouteTable")?;
    }
    let result = cx
        .clients
        .ec2
        .delete_route_table()
        .route_table_id(rtb_id)
        .send()
        .await;
    ignore_not_found(result, "DeleteRouteTable")
}

impl Resource for RouteTableSpec {
    async fn create(
        &self,
        cx: &Context,
        _id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        create_route_table(cx, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        live: &Live,
        old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        update_route_table(cx, &live.physical_id, old, self).await
    }

    async fn delete(&self, cx: &Context, live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete_route_table(cx, &live.physical_id).await
    }
}
