//! The specs of the ECR repository: what is desired and what discovery
//! reads back, compared field by field. Data only; no AWS call.

use crate::model::*;
use serde::Serialize;
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RepositorySpec {
    pub name: String,
    pub scan_on_push: bool,
    pub immutable_tags: bool,
    pub lifecycle_policy: Option<Value>,
    pub tags: Tags,
}

impl Properties for RepositorySpec {
    const IMMUTABLE: &'static [&'static str] = &["name"];
}
