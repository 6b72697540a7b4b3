//! The specs of the secrets poolside generates: what is desired and what discovery
//! reads back, compared field by field. Data only; no AWS call.

use crate::model::*;
use serde::Serialize;

/// A Secrets Manager secret whose value poolside generates once, at create,
/// and never regenerates, prints or compares.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SecretSpec {
    pub name: String,
    pub description: String,
    /// How the value is made at create; not a property of the live secret.
    #[serde(skip)]
    pub value: GeneratedSecret,
    pub tags: Tags,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub enum GeneratedSecret {
    /// `{"username": ..., "password": <random>}`: a database login.
    Login { username: String },
    /// A random string of this many alphanumeric characters.
    #[default]
    Random,
}

impl Properties for SecretSpec {
    const IMMUTABLE: &'static [&'static str] = &["name"];
}
