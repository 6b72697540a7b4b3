//! The specs of the certificate and the API's DNS name: what is desired and what discovery
//! reads back, compared field by field. Data only; no AWS call.

use crate::model::refs::Reference;
use crate::model::*;
use serde::{Deserialize, Serialize};

/// An ACM certificate for the API's domain, validated through DNS in a
/// Route 53 zone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CertificateSpec {
    pub domain_name: String,
    /// Where the validation record goes; ACM does not report it back.
    #[serde(skip)]
    pub zone_id: String,
    pub tags: Tags,
}

/// The API's name in a Route 53 zone: an alias to the load balancer, with a
/// TXT record beside it that says which environment owns the name (Route 53
/// records take no tags).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DnsRecordSpec {
    pub zone_id: String,
    pub name: String,
    /// The load balancer's DNS name and its canonical hosted zone.
    pub alias_target: String,
    pub alias_zone: String,
    /// `poolside:env=<env>`, the TXT record's text.
    pub owner: String,
}

impl Properties for CertificateSpec {
    const IMMUTABLE: &'static [&'static str] = &["domain_name"];
}

impl Properties for DnsRecordSpec {
    const IMMUTABLE: &'static [&'static str] = &["zone_id", "name"];

    fn substitute(&self, resolve: &mut dyn FnMut(&Reference) -> Option<String>) -> Self {
        substitute_serialized(self, resolve)
    }
}
