//! The specs of the model-artifacts bucket: what is desired and what discovery
//! reads back, compared field by field. Data only; no AWS call.

use crate::model::*;
use serde::Serialize;
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BucketSpec {
    pub name: String,
    pub versioning: bool,
    pub encryption: String,
    pub block_public_access: bool,
    pub policy: Option<Value>,
    pub noncurrent_version_expiration_days: Option<u32>,
    pub tags: Tags,
}

impl Properties for BucketSpec {
    const IMMUTABLE: &'static [&'static str] = &["name"];
}
