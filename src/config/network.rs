//! `[network]`: the VPC's range, the zones, the subnets carved from the
//! range, who may reach the load balancer, and the NAT gateways.

use super::file::{EnvironmentFile, NatGateways, Phase};
use super::validator::{Checked, Validator};
use ipnet::Ipv4Net;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
pub struct Network {
    pub layout: Layout,
    pub allowed_ingress_cidrs: Vec<Ipv4Net>,
    pub api_port: u16,
}

/// Whose network the environment lives in.
#[derive(Debug, Clone)]
pub enum Layout {
    /// One poolside makes, owns and deletes.
    Owned(OwnedNetwork),
    /// The customer's: poolside never changes, tags or deletes any of it.
    Existing(ExistingNetwork),
}

#[derive(Debug, Clone)]
pub struct OwnedNetwork {
    pub vpc_cidr: Ipv4Net,
    pub availability_zones: Vec<String>,
    /// One per AZ, in the order of `availability_zones`.
    pub public_subnets: Vec<Ipv4Net>,
    pub private_subnets: Vec<Ipv4Net>,
    pub nat_gateways: NatGateways,
}

#[derive(Debug, Clone)]
pub struct ExistingNetwork {
    pub vpc_id: String,
    pub public_subnet_ids: Vec<String>,
    pub private_subnet_ids: Vec<String>,
    /// Make the interface endpoints (ECR, Logs, Secrets Manager) in the
    /// private subnets; `false` when the customer has their own.
    pub create_endpoints: bool,
}

/// The keys of each layout, for the error that names what to set.
const OWNED_KEYS: [&str; 7] = [
    "vpc_cidr",
    "availability_zones",
    "public_subnet_prefix",
    "private_subnet_prefix",
    "public_subnet_cidrs",
    "private_subnet_cidrs",
    "nat_gateways",
];
const EXISTING_KEYS: [&str; 4] = [
    "vpc_id",
    "public_subnet_ids",
    "private_subnet_ids",
    "create_endpoints",
];

impl Validator<'_> {
    pub(super) fn check_network(&self, raw: &EnvironmentFile) -> Checked<Network> {
        let n = &raw.network;
        let layout = match (n.vpc_cidr.is_some(), n.vpc_id.is_some()) {
            (true, true) => {
                return self.fail(
                    "network.vpc_id",
                    "set either vpc_cidr (poolside makes the network) or vpc_id (the customer's network), not both",
                )
            }
            (false, false) => {
                return self.fail(
                    "network",
                    "set vpc_cidr and availability_zones for a network poolside makes, or vpc_id, public_subnet_ids and private_subnet_ids for the customer's",
                )
            }
            (true, false) => Layout::Owned(self.check_owned_network(raw)?),
            (false, true) => Layout::Existing(self.check_existing_network(raw)?),
        };
        let allowed = self.check_allowed_ingress(raw)?;
        let api_port = n.api_port.unwrap_or(3000);
        if api_port == 0 {
            return self.fail("network.api_port", "must be a port between 1 and 65535");
        }
        Ok(Network {
            layout,
            allowed_ingress_cidrs: allowed,
            api_port,
        })
    }

    fn check_owned_network(&self, raw: &EnvironmentFile) -> Checked<OwnedNetwork> {
        let n = &raw.network;
        if let Some(key) = self.stray_keys(raw, &EXISTING_KEYS) {
            return self.fail(
                &format!("network.{key}"),
                "belongs to the customer's network (vpc_id), not to one poolside makes (vpc_cidr)",
            );
        }
        let vpc = self.check_vpc_cidr(n.vpc_cidr.as_deref().unwrap_or_default())?;
        let Some(azs) = &n.availability_zones else {
            return self.fail(
                "network.availability_zones",
                "is missing: list the zones poolside makes a public and a private subnet in (two or more)",
            );
        };
        self.check_zones(raw, azs)?;
        let public = self.subnets(
            vpc,
            azs.len(),
            "public",
            &n.public_subnet_cidrs,
            n.public_subnet_prefix,
        )?;
        let private = self.subnets(
            vpc,
            azs.len(),
            "private",
            &n.private_subnet_cidrs,
            n.private_subnet_prefix,
        )?;
        let (public, private) = self.place_subnets(vpc, azs.len(), public, private)?;
        let nat_gateways = n.nat_gateways.unwrap_or(match raw.phase {
            Phase::Pilot => NatGateways::Shared,
            Phase::Limited | Phase::Full => NatGateways::PerAz,
        });
        Ok(OwnedNetwork {
            vpc_cidr: vpc,
            availability_zones: azs.clone(),
            public_subnets: public,
            private_subnets: private,
            nat_gateways,
        })
    }

    /// The customer's network as written; what AWS says of it is checked
    /// before any change (`ops::customer_network`).
    fn check_existing_network(&self, raw: &EnvironmentFile) -> Checked<ExistingNetwork> {
        let n = &raw.network;
        if let Some(key) = self.stray_keys(raw, &OWNED_KEYS) {
            return self.fail(
                &format!("network.{key}"),
                "belongs to a network poolside makes (vpc_cidr); with vpc_id the customer's subnets are named by public_subnet_ids and private_subnet_ids",
            );
        }
        let vpc_id = n.vpc_id.clone().unwrap_or_default();
        if !is_aws_id(&vpc_id, "vpc-") {
            return self.fail(
                "network.vpc_id",
                format!("{vpc_id:?} is not a VPC id such as \"vpc-0a1b2c3d4e5f67890\""),
            );
        }
        let mut seen = BTreeSet::new();
        let mut tiers = Vec::new();
        for (which, ids) in [
            ("public", &n.public_subnet_ids),
            ("private", &n.private_subnet_ids),
        ] {
            let key = format!("network.{which}_subnet_ids");
            let Some(ids) = ids else {
                return self.fail(&key, format!("is missing: list the customer's {which} subnets, in two or more availability zones"));
            };
            if ids.len() < 2 {
                return self.fail(&key, format!("lists {} subnet(s): the {which} tier needs subnets in two or more availability zones", ids.len()));
            }
            for (i, id) in ids.iter().enumerate() {
                let path = format!("{key}[{i}]");
                if !is_aws_id(id, "subnet-") {
                    return self.fail(
                        &path,
                        format!("{id:?} is not a subnet id such as \"subnet-0a1b2c3d4e5f67890\""),
                    );
                }
                if !seen.insert(id.clone()) {
                    return self.fail(
                        &path,
                        format!("{id} is listed twice (a subnet is public or private, once)"),
                    );
                }
            }
            tiers.push(ids.clone());
        }
        let private = tiers.pop().unwrap_or_default();
        let public = tiers.pop().unwrap_or_default();
        Ok(ExistingNetwork {
            vpc_id,
            public_subnet_ids: public,
            private_subnet_ids: private,
            create_endpoints: n.create_endpoints.unwrap_or(true),
        })
    }

    /// The first of `keys` the file sets.
    fn stray_keys(&self, raw: &EnvironmentFile, keys: &[&'static str]) -> Option<&'static str> {
        let n = &raw.network;
        keys.iter().copied().find(|key| match *key {
            "vpc_cidr" => n.vpc_cidr.is_some(),
            "availability_zones" => n.availability_zones.is_some(),
            "public_subnet_prefix" => n.public_subnet_prefix.is_some(),
            "private_subnet_prefix" => n.private_subnet_prefix.is_some(),
            "public_subnet_cidrs" => n.public_subnet_cidrs.is_some(),
            "private_subnet_cidrs" => n.private_subnet_cidrs.is_some(),
            "nat_gateways" => n.nat_gateways.is_some(),
            "vpc_id" => n.vpc_id.is_some(),
            "public_subnet_ids" => n.public_subnet_ids.is_some(),
            "private_subnet_ids" => n.private_subnet_ids.is_some(),
            "create_endpoints" => n.create_endpoints.is_some(),
            _ => false,
        })
    }

    fn check_vpc_cidr(&self, text: &str) -> Checked<Ipv4Net> {
        let vpc = self.cidr("network.vpc_cidr", text)?;
        let private_ranges: [Ipv4Net; 3] = [
            "10.0.0.0/8".parse().unwrap(),
            "172.16.0.0/12".parse().unwrap(),
            "192.168.0.0/16".parse().unwrap(),
        ];
        if !private_ranges.iter().any(|range| range.contains(&vpc)) {
            return self.fail(
                "network.vpc_cidr",
                format!("{vpc} is outside the private ranges 10.0.0.0/8, 172.16.0.0/12 and 192.168.0.0/16"),
            );
        }
        if !(16..=24).contains(&vpc.prefix_len()) {
            return self.fail(
                "network.vpc_cidr",
                format!("{vpc} must be between /16 and /24 (AWS VPC limits)"),
            );
        }

        Ok(vpc)
    }

    /// At least two zones, each once, each one of the region's.
    fn check_zones(&self, raw: &EnvironmentFile, azs: &[String]) -> Checked<()> {
        if azs.len() < 2 {
            return self.fail(
                "network.availability_zones",
                format!("needs at least 2 availability zones, found {}", azs.len()),
            );
        }
        let mut seen = BTreeSet::new();
        for (i, az) in azs.iter().enumerate() {
            let path = format!("network.availability_zones[{i}]");
            if !seen.insert(az) {
                return self.fail(&path, format!("{az:?} is listed twice"));
            }
            let suffix = az.strip_prefix(raw.region.as_str());
            let last = last_zone_letter(&raw.region);
            if let Some(letter) = suffix
                .and_then(|s| s.chars().next())
                .filter(|c| suffix.map(str::len) == Some(1) && c.is_ascii_lowercase() && *c > last)
            {
                return self.fail(
                    &path,
                    format!(
                        "{az:?} is not an availability zone of region {:?}: its zones run from {0}a to {0}{last} (zone {letter} does not exist)",
                        raw.region
                    ),
                );
            }
            if !suffix.is_some_and(|s| s.len() == 1 && s.chars().all(|c| c.is_ascii_lowercase())) {
                return self.fail(
                    &path,
                    format!(
                        "{az:?} is not an availability zone of region {:?}",
                        raw.region
                    ),
                );
            }
        }

        Ok(())
    }

    /// Who may reach the load balancer; the whole internet only when meant
    /// in phase full.
    fn check_allowed_ingress(&self, raw: &EnvironmentFile) -> Checked<Vec<Ipv4Net>> {
        let n = &raw.network;
        if n.allowed_ingress_cidrs.is_empty() {
            return self.fail(
                "network.allowed_ingress_cidrs",
                "must list at least one CIDR allowed to reach the load balancer",
            );
        }
        let mut allowed = Vec::new();
        for (i, text) in n.allowed_ingress_cidrs.iter().enumerate() {
            let path = format!("network.allowed_ingress_cidrs[{i}]");
            let net = self.cidr(&path, text)?;
            if allowed.contains(&net) {
                return self.fail(&path, format!("{net} is listed twice"));
            }
            allowed.push(net);
        }
        // The warning of every plan says it in pilot and limited; in full,
        // where 1000+ people's tokens cross it, it must be meant.
        if raw.phase == Phase::Full && !n.open_to_internet {
            if let Some(i) = allowed.iter().position(|net| net.prefix_len() == 0) {
                return self.fail(
                    &format!("network.allowed_ingress_cidrs[{i}]"),
                    format!(
                        "{} opens the load balancer to the whole internet, which phase full refuses unless it is meant: list the customer's networks, or set network.open_to_internet = true",
                        allowed[i]
                    ),
                );
            }
        }
        Ok(allowed)
    }

    /// Either explicit CIDRs (checked here) or a prefix length (placed later).
    fn subnets(
        &self,
        vpc: Ipv4Net,
        az_count: usize,
        which: &str,
        cidrs: &Option<Vec<String>>,
        prefix: Option<u8>,
    ) -> Checked<SubnetRequest> {
        let cidrs_key = format!("network.{which}_subnet_cidrs");
        let prefix_key = format!("network.{which}_subnet_prefix");
        match (cidrs, prefix) {
            (Some(_), Some(_)) => self.fail(
                &prefix_key,
                format!("set either {which}_subnet_cidrs or {which}_subnet_prefix, not both"),
            ),
            (Some(list), None) => {
                if list.len() != az_count {
                    return self.fail(&cidrs_key, format!("lists {} CIDRs but there are {az_count} availability zones; give one per zone", list.len()));
                }
                let mut nets = Vec::new();
                for (i, text) in list.iter().enumerate() {
                    let path = format!("{cidrs_key}[{i}]");
                    let net = self.cidr(&path, text)?;
                    if !vpc.contains(&net) {
                        return self.fail(&path, format!("{net} is outside the VPC CIDR {vpc}"));
                    }
                    if !(16..=28).contains(&net.prefix_len()) {
                        return self.fail(
                            &path,
                            format!("{net} must be between /16 and /28 (AWS subnet limits)"),
                        );
                    }
                    nets.push((path, net));
                }
                Ok(SubnetRequest::Explicit(nets))
            }
            (None, prefix) => {
                let default = if which == "public" {
                    vpc.prefix_len() + 4
                } else {
                    vpc.prefix_len() + 2
                };
                let prefix = prefix.unwrap_or(default.min(28));
                if prefix <= vpc.prefix_len() || prefix > 28 {
                    return self.fail(
                        &prefix_key,
                        format!(
                            "/{prefix} must be longer than the VPC's /{} and at most /28",
                            vpc.prefix_len()
                        ),
                    );
                }
                Ok(SubnetRequest::Sized {
                    prefix,
                    key: prefix_key,
                })
            }
        }
    }

    /// Places sized subnets in the free space of the VPC (largest first, so that
    /// blocks stay aligned), then checks that no two subnets overlap.
    fn place_subnets(
        &self,
        vpc: Ipv4Net,
        az_count: usize,
        public: SubnetRequest,
        private: SubnetRequest,
    ) -> Checked<(Vec<Ipv4Net>, Vec<Ipv4Net>)> {
        let mut taken: Vec<(String, Ipv4Net)> = Vec::new();
        for request in [&public, &private] {
            if let SubnetRequest::Explicit(nets) = request {
                for (path, net) in nets {
                    if let Some((other_path, other)) = taken
                        .iter()
                        .find(|(_, t)| t.contains(net) || net.contains(t))
                    {
                        return self.fail(path, format!("{net} overlaps {other} (`{other_path}`)"));
                    }
                    taken.push((path.clone(), *net));
                }
            }
        }
        let mut sized: Vec<(&str, u8)> = Vec::new();
        for (which, request) in [("public", &public), ("private", &private)] {
            if let SubnetRequest::Sized { prefix, .. } = request {
                sized.push((which, *prefix));
            }
        }
        sized.sort_by_key(|(_, prefix)| *prefix);
        let mut placed: BTreeMap<&str, Vec<Ipv4Net>> = BTreeMap::new();
        for (which, prefix) in &sized {
            let mut found = Vec::new();
            for candidate in vpc
                .subnets(*prefix)
                .expect("prefix checked against the VPC")
            {
                if found.len() == az_count {
                    break;
                }
                if taken
                    .iter()
                    .any(|(_, t)| t.contains(&candidate) || candidate.contains(t))
                {
                    continue;
                }
                found.push(candidate);
                taken.push((format!("network.{which}_subnet_prefix"), candidate));
            }
            placed.insert(which, found);
        }
        let resolve = |which: &str, request: SubnetRequest| -> Checked<Vec<Ipv4Net>> {
            match request {
                SubnetRequest::Explicit(nets) => Ok(nets.into_iter().map(|(_, n)| n).collect()),
                SubnetRequest::Sized { prefix, key } => {
                    let nets = placed.get(which).cloned().unwrap_or_default();
                    if nets.len() < az_count {
                        return self.fail(&key, format!("{az_count} /{prefix} subnets (one per availability zone) do not fit in the VPC {vpc} next to the others"));
                    }
                    Ok(nets)
                }
            }
        };
        Ok((resolve("public", public)?, resolve("private", private)?))
    }
}

enum SubnetRequest {
    Explicit(Vec<(String, Ipv4Net)>),
    Sized { prefix: u8, key: String },
}

/// `prefix` and 8 or 17 lowercase hex digits (EC2's ids).
fn is_aws_id(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix).is_some_and(|hex| {
        matches!(hex.len(), 8 | 17)
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// The last availability zone letter of a region (AWS's zone names; a letter
/// past it does not exist). No region has more than six (us-east-1, a to f).
fn last_zone_letter(region: &str) -> char {
    match region {
        "us-east-1" => 'f',
        "us-west-2" | "ca-central-1" | "ap-northeast-1" | "ap-northeast-2" => 'd',
        "us-east-2" | "us-west-1" | "eu-west-1" | "eu-west-2" | "eu-west-3" | "eu-central-1"
        | "eu-north-1" | "ap-south-1" | "ap-southeast-1" | "ap-southeast-2" | "sa-east-1" => 'c',
        _ => 'f',
    }
}
