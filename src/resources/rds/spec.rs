//! The specs of the database instance and its subnet and parameter groups: what is desired and what discovery
//! reads back, compared field by field. Data only; no AWS call.

use crate::model::*;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DbSubnetGroupSpec {
    pub name: String,
    pub description: String,
    pub subnets: BTreeSet<ResourceId>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DbParameterGroupSpec {
    pub name: String,
    pub family: String,
    pub description: String,
    /// The parameters set by poolside; the rest keep the family's defaults.
    pub parameters: BTreeMap<String, String>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DbInstanceSpec {
    pub identifier: String,
    pub engine: String,
    pub engine_version: String,
    pub instance_class: String,
    pub allocated_storage_gb: i32,
    pub storage_type: String,
    pub storage_encrypted: bool,
    pub multi_az: bool,
    pub publicly_accessible: bool,
    pub backup_retention_days: i32,
    /// Weekly, UTC, lowercase as RDS reports it.
    pub maintenance_window: String,
    /// Daily, UTC.
    pub backup_window: String,
    pub deletion_protection: bool,
    pub db_name: String,
    pub master_username: String,
    /// The master password lives in a secret RDS manages; poolside never sees it set.
    pub manage_master_password: bool,
    pub subnet_group: ResourceId,
    pub parameter_group: ResourceId,
    pub security_groups: BTreeSet<ResourceId>,
    pub tags: Tags,
}

impl Properties for DbSubnetGroupSpec {
    const IMMUTABLE: &'static [&'static str] = &["name"];

    fn logical_references(&self) -> Vec<ResourceId> {
        self.subnets.iter().cloned().collect()
    }
}

impl Properties for DbParameterGroupSpec {
    const IMMUTABLE: &'static [&'static str] = &["name", "family"];
}

impl Properties for DbInstanceSpec {
    const IMMUTABLE: &'static [&'static str] = &[
        "identifier",
        "engine",
        "storage_encrypted",
        "db_name",
        "master_username",
    ];

    fn logical_references(&self) -> Vec<ResourceId> {
        let mut refs = vec![self.subnet_group.clone(), self.parameter_group.clone()];
        refs.extend(self.security_groups.iter().cloned());
        refs
    }
}
