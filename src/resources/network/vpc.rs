//! The VPC, its subnets, the internet gateway, Elastic IPs and NAT
//! gateways: create, update and delete, each idempotent. Discovery is the
//! family's (`super`), batched with the rest of EC2.

use crate::model::*;
use crate::resources::aws_error::{error_code, ignore_not_found, AwsResultExt};
use crate::resources::context::Context;
use crate::resources::resource::Resource;
use crate::resources::spec::*;
use crate::resources::tags::{sync_ec2_tags, tag_spec};
use crate::resources::waits::{poll, Waits};
use anyhow::{anyhow, bail, Context as _};
use aws_sdk_ec2::types::{AttributeBooleanValue, DomainType, NatGatewayState, ResourceType};
use std::time::Duration;

/// How long to wait for a NAT gateway to become available or go away (AWS: 1–5 minutes).
const NAT_WAIT: Duration = Duration::from_secs(15 * 60);

pub async fn create_vpc(cx: &Context, spec: &VpcSpec) -> anyhow::Result<String> {
    let out = cx
        .clients
        .ec2
        .create_vpc()
        .cidr_block(&spec.cidr)
        .tag_specifications(tag_spec(ResourceType::Vpc, &spec.tags))
        .send()
        .await
        .aws("CreateVpc")?;
    let vpc_id = out
        .vpc()
        .and_then(|v| v.vpc_id())
        .ok_or_else(|| anyhow!("CreateVpc returned no id"))?
        .to_string();
    let created = VpcSpec {
        dns_support: true,
        dns_hostnames: false,
        ..spec.clone()
    };
    update_vpc(cx, &vpc_id, &created, spec).await?;
    Ok(vpc_id)
}

pub async fn update_vpc(
    cx: &Context,
    vpc_id: &str,
    old: &VpcSpec,
    new: &VpcSpec,
) -> anyhow::Result<()> {
    let flag = |value: bool| AttributeBooleanValue::builder().value(value).build();
    // One attribute per call: the API refuses both at once.
    if old.dns_support != new.dns_support {
        cx.clients
            .ec2
            .modify_vpc_attribute()
            .vpc_id(vpc_id)
            .enable_dns_support(flag(new.dns_support))
            .send()
            .await
            .aws("ModifyVpcAttribute")?;
    }
    if old.dns_hostnames != new.dns_hostnames {
        cx.clients
            .ec2
            .modify_vpc_attribute()
            .vpc_id(vpc_id)
            .enable_dns_hostnames(flag(new.dns_hostnames))
            .send()
            .await
            .aws("ModifyVpcAttribute")?;
    }
    sync_ec2_tags(cx, vpc_id, &old.tags, &new.tags).await
}

pub async fn delete_vpc(cx: &Context, vpc_id: &str) -> anyhow::Result<()> {
    let result = cx.clients.ec2.delete_vpc().vpc_id(vpc_id).send().await;
    ignore_not_found(result, "DeleteVpc")
}

pub async fn create_subnet(cx: &Context, spec: &SubnetSpec) -> anyhow::Result<String> {
    let out = cx
        .clients
        .ec2
        .create_subnet()
        .vpc_id(cx.resolve(&spec.vpc)?)
        .cidr_block(&spec.cidr)
        .availability_zone(&spec.availability_zone)
        .tag_specifications(tag_spec(ResourceType::Subnet, &spec.tags))
        .send()
        .await
        .aws("CreateSubnet")?;
    out.subnet()
        .and_then(|s| s.subnet_id())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("CreateSubnet returned no id"))
}

pub async fn delete_subnet(cx: &Context, subnet_id: &str) -> anyhow::Result<()> {
    let result = cx
        .clients
        .ec2
        .delete_subnet()
        .subnet_id(subnet_id)
        .send()
        .await;
    ignore_not_found(result, "DeleteSubnet")
}

pub async fn create_internet_gateway(
    cx: &Context,
    spec: &InternetGatewaySpec,
) -> anyhow::Result<String> {
    let out = cx
        .clients
        .ec2
        .create_internet_gateway()
        .tag_specifications(tag_spec(ResourceType::InternetGateway, &spec.tags))
        .send()
        .await
        .aws("CreateInternetGateway")?;
    let igw_id = out
        .internet_gateway()
        .and_then(|g| g.internet_gateway_id())
        .ok_or_else(|| anyhow!("CreateInternetGateway returned no id"))?
        .to_string();
    let detached = InternetGatewaySpec {
        vpc: None,
        ..spec.clone()
    };
    update_internet_gateway(cx, &igw_id, &detached, spec).await?;
    Ok(igw_id)
}

pub async fn update_internet_gateway(
    cx: &Context,
    igw_id: &str,
    old: &InternetGatewaySpec,
    new: &InternetGatewaySpec,
) -> anyhow::Result<()> {
    if old.vpc != new.vpc {
        if let Some(previous) = &old.vpc {
            cx.clients
                .ec2
                .detach_internet_gateway()
                .internet_gateway_id(igw_id)
                .vpc_id(cx.resolve(previous)?)
                .send()
                .await
                .aws("DetachInternetGateway")?;
        }
        if let Some(vpc) = &new.vpc {
            cx.clients
                .ec2
                .attach_internet_gateway()
                .internet_gateway_id(igw_id)
                .vpc_id(cx.resolve(vpc)?)
                .send()
                .await
                .aws("AttachInternetGateway")?;
        }
    }
    sync_ec2_tags(cx, igw_id, &old.tags, &new.tags).await
}

pub async fn delete_internet_gateway(
    cx: &Context,
    igw_id: &str,
    spec: &InternetGatewaySpec,
) -> anyhow::Result<()> {
    if let Some(vpc) = &spec.vpc {
        let result = cx
            .clients
            .ec2
            .detach_internet_gateway()
            .internet_gateway_id(igw_id)
            .vpc_id(cx.resolve(vpc)?)
            .send()
            .await;
        ignore_not_found(result, "DetachInternetGateway")?;
    }
    let result = cx
        .clients
        .ec2
        .delete_internet_gateway()
        .internet_gateway_id(igw_id)
        .send()
        .await;
    ignore_not_found(result, "DeleteInternetGateway")
}

pub async fn create_elastic_ip(cx: &Context, spec: &ElasticIpSpec) -> anyhow::Result<String> {
    let out = cx
        .clients
        .ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .tag_specifications(tag_spec(ResourceType::ElasticIp, &spec.tags))
        .send()
        .await
        .aws("AllocateAddress")?;
    out.allocation_id()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("AllocateAddress returned no allocation id"))
}

pub async fn release_elastic_ip(cx: &Context, allocation_id: &str) -> anyhow::Result<()> {
    let result = cx
        .clients
        .ec2
        .release_address()
        .allocation_id(allocation_id)
        .send()
        .await;
    ignore_not_found(result, "ReleaseAddress")
}

pub async fn create_nat_gateway(cx: &Context, spec: &NatGatewaySpec) -> anyhow::Result<String> {
    let out = cx
        .clients
        .ec2
        .create_nat_gateway()
        .subnet_id(cx.resolve(&spec.subnet)?)
        .allocation_id(cx.resolve(&spec.elastic_ip)?)
        .tag_specifications(tag_spec(ResourceType::Natgateway, &spec.tags))
        .send()
        .await
        .aws("CreateNatGateway")?;
    let nat_id = out
        .nat_gateway()
        .and_then(|n| n.nat_gateway_id())
        .ok_or_else(|| anyhow!("CreateNatGateway returned no id"))?
        .to_string();
    let available = poll(cx.poll_interval(), || nat_gateway_available(cx, &nat_id));
    tokio::time::timeout(NAT_WAIT, available)
        .await
        .map_err(|_| {
            anyhow!(
                "NAT gateway {nat_id} did not become available within {} minutes",
                NAT_WAIT.as_secs() / 60
            )
        })?
        .context("waiting for the NAT gateway to become available")?;
    Ok(nat_id)
}

/// One look at a new NAT gateway: `Some` once it is available. The states it
/// does not come back from fail, as the SDK's NatGatewayAvailable waiter
/// does (which backs off from 15 s to 2 minutes between looks).
async fn nat_gateway_available(cx: &Context, nat_id: &str) -> anyhow::Result<Option<()>> {
    let Some(gateway) = describe_nat_gateway(cx, nat_id).await? else {
        return Ok(None);
    };
    match gateway.state() {
        Some(NatGatewayState::Available) => Ok(Some(())),
        Some(
            state
            @ (NatGatewayState::Failed | NatGatewayState::Deleting | NatGatewayState::Deleted),
        ) => bail!(
            "NAT gateway {nat_id} is {}: {}",
            state.as_str(),
            gateway.failure_message().unwrap_or("no reason given")
        ),
        _ => Ok(None),
    }
}

/// The NAT gateway, when EC2 lists it: eventually consistent, a new one may
/// not be listed yet, and a deleted one goes after a while.
async fn describe_nat_gateway(
    cx: &Context,
    nat_id: &str,
) -> anyhow::Result<Option<aws_sdk_ec2::types::NatGateway>> {
    let out = cx
        .clients
        .ec2
        .describe_nat_gateways()
        .nat_gateway_ids(nat_id)
        .send()
        .await;
    match out {
        Ok(out) => Ok(out.nat_gateways().first().cloned()),
        Err(err) if error_code(&err) == Some("NatGatewayNotFound") => Ok(None),
        Err(err) => Err(err).aws("DescribeNatGateways"),
    }
}

pub async fn delete_nat_gateway(cx: &Context, nat_id: &str) -> anyhow::Result<()> {
    let addresses: Vec<String> = cx
        .clients
        .ec2
        .describe_nat_gateways()
        .nat_gateway_ids(nat_id)
        .send()
        .await
        .map(|out| {
            out.nat_gateways()
                .iter()
                .flat_map(|n| n.nat_gateway_addresses())
                .filter_map(|a| a.allocation_id().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let result = cx
        .clients
        .ec2
        .delete_nat_gateway()
        .nat_gateway_id(nat_id)
        .send()
        .await;
    ignore_not_found(result, "DeleteNatGateway")?;
    // Its Elastic IP and subnet cannot go before it has gone: AWS keeps it
    // `deleting` for a minute or two. A steady poll notices within seconds
    // (the SDK's waiter waits 15 s and more between looks).
    let every = if cx.emulator {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    };
    let started = tokio::time::Instant::now();
    loop {
        let state = describe_nat_gateway(cx, nat_id)
            .await?
            .and_then(|n| n.state().map(|s| s.as_str().to_string()));
        match state.as_deref() {
            None | Some("deleted") => break,
            Some("failed") => bail!("NAT gateway {nat_id} failed while being deleted"),
            _ if started.elapsed() >= NAT_WAIT => bail!(
                "NAT gateway {nat_id} is still {} after {} minutes",
                state.unwrap_or_default(),
                NAT_WAIT.as_secs() / 60
            ),
            _ => tokio::time::sleep(every).await,
        }
    }
    release_association(cx, &addresses).await
}

/// AWS takes a deleted NAT gateway's Elastic IP off it; moto leaves it
/// associated, and a new NAT gateway with that address (a replacement) is
/// then refused with Resource.AlreadyAssociated. Free what is still held.
async fn release_association(cx: &Context, allocation_ids: &[String]) -> anyhow::Result<()> {
    if allocation_ids.is_empty() {
        return Ok(());
    }
    let out = cx
        .clients
        .ec2
        .describe_addresses()
        .set_allocation_ids(Some(allocation_ids.to_vec()))
        .send()
        .await
        .aws("DescribeAddresses")?;
    for association in out.addresses().iter().filter_map(|a| a.association_id()) {
        let result = cx
            .clients
            .ec2
            .disassociate_address()
            .association_id(association)
            .send()
            .await;
        match result {
            Err(err) if error_code(&err) == Some("InvalidAssociationID.NotFound") => {}
            other => {
                other.aws("DisassociateAddress")?;
            }
        }
    }
    Ok(())
}

impl Resource for VpcSpec {
    async fn create(
        &self,
        cx: &Context,
        _id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        create_vpc(cx, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        live: &Live,
        old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        update_vpc(cx, &live.physical_id, old, self).await
    }

    async fn delete(&self, cx: &Context, live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete_vpc(cx, &live.physical_id).await
    }
}

impl Resource for SubnetSpec {
    async fn create(
        &self,
        cx: &Context,
        _id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        create_subnet(cx, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        live: &Live,
        old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        sync_ec2_tags(cx, &live.physical_id, &old.tags, &self.tags).await
    }

    async fn delete(&self, cx: &Context, live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete_subnet(cx, &live.physical_id).await
    }
}

impl Resource for InternetGatewaySpec {
    async fn create(
        &self,
        cx: &Context,
        _id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        create_internet_gateway(cx, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        live: &Live,
        old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        update_internet_gateway(cx, &live.physical_id, old, self).await
    }

    async fn delete(&self, cx: &Context, live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete_internet_gateway(cx, &live.physical_id, self).await
    }
}

impl Resource for ElasticIpSpec {
    async fn create(
        &self,
        cx: &Context,
        _id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        create_elastic_ip(cx, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        live: &Live,
        old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        sync_ec2_tags(cx, &live.physical_id, &old.tags, &self.tags).await
    }

    async fn delete(&self, cx: &Context, live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        release_elastic_ip(cx, &live.physical_id).await
    }
}

impl Resource for NatGatewaySpec {
    async fn create(
        &self,
        cx: &Context,
        _id: &ResourceId,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<String> {
        create_nat_gateway(cx, self).await
    }

    async fn update(
        &self,
        cx: &Context,
        live: &Live,
        old: &Self,
        _waits: &Waits<'_>,
    ) -> anyhow::Result<()> {
        sync_ec2_tags(cx, &live.physical_id, &old.tags, &self.tags).await
    }

    async fn delete(&self, cx: &Context, live: &Live, _waits: &Waits<'_>) -> anyhow::Result<()> {
        delete_nat_gateway(cx, &live.physical_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::context;
    use aws_sdk_ec2::operation::describe_nat_gateways::DescribeNatGatewaysOutput;
    use aws_sdk_ec2::types::NatGateway;
    use aws_smithy_mocks::mock;

    fn gateway(state: NatGatewayState) -> DescribeNatGatewaysOutput {
        DescribeNatGatewaysOutput::builder()
            .nat_gateways(
                NatGateway::builder()
                    .nat_gateway_id("nat-0123")
                    .state(state)
                    .failure_message("Elastic IP address eipalloc-0123 is already associated")
                    .build(),
            )
            .build()
    }

    /// A NAT gateway `pending` for a minute or two is noticed within one
    /// steady interval once it is available.
    #[tokio::test(start_paused = true)]
    async fn a_new_nat_gateway_is_looked_at_every_ten_seconds_until_available() {
        let states = mock!(aws_sdk_ec2::Client::describe_nat_gateways)
            .sequence()
            .output(|| gateway(NatGatewayState::Pending))
            .times(9)
            .output(|| gateway(NatGatewayState::Available))
            .build();
        let cx = context(|c| c.ec2 = crate::mocked!(aws_sdk_ec2, [&states]));
        let started = tokio::time::Instant::now();
        poll(cx.poll_interval(), || {
            nat_gateway_available(&cx, "nat-0123")
        })
        .await
        .unwrap();
        assert_eq!(states.num_calls(), 10);
        assert_eq!(started.elapsed(), Duration::from_secs(90));
    }

    /// A gateway that failed says why, as EC2 reports it.
    #[tokio::test(start_paused = true)]
    async fn a_failed_nat_gateway_ends_the_wait_with_its_reason() {
        let states = mock!(aws_sdk_ec2::Client::describe_nat_gateways)
            .then_output(|| gateway(NatGatewayState::Failed));
        let cx = context(|c| c.ec2 = crate::mocked!(aws_sdk_ec2, [&states]));
        let err = poll(cx.poll_interval(), || {
            nat_gateway_available(&cx, "nat-0123")
        })
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "NAT gateway nat-0123 is failed: Elastic IP address eipalloc-0123 is already associated"
        );
    }
}
