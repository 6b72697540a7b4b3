//! What every tier of the blueprint shares: the account's facts, the ports,
//! and the builder that gives each resource poolside's tags.

use crate::config::Config;
use crate::model::*;
use crate::resources::spec::*;

/// Facts about the account that the blueprint needs (learned once per run).
#[derive(Clone, Debug)]
pub struct AccountFacts {
    pub account_id: String,
    pub partition: String,
    /// `pl-...`: the region's S3 prefix list, if EC2 lists one.
    pub s3_prefix_list: Option<String>,
}

#[cfg(test)]
impl AccountFacts {
    /// The account the unit tests plan in (no S3 prefix list found).
    pub fn example() -> AccountFacts {
        AccountFacts {
            account_id: "111122223333".into(),
            partition: "aws".into(),
            s3_prefix_list: None,
        }
    }
}

pub(super) const DATABASE_PORT: u16 = 5432;
pub(super) const HTTPS_PORT: u16 = 443;
pub(super) const HTTP_PORT: u16 = 80;

/// The AWS services tasks reach through interface endpoints in the private subnets.
pub const INTERFACE_ENDPOINTS: [(&str, &str); 4] = [
    ("ecr-api", "ecr.api"),
    ("ecr-dkr", "ecr.dkr"),
    ("logs", "logs"),
    ("secretsmanager", "secretsmanager"),
];

pub(super) struct Builder<'a> {
    pub config: &'a Config,
}

impl Builder<'_> {
    /// A resource with poolside's tags, the user's tags and a readable Name.
    pub fn desired(
        &self,
        id: &ResourceId,
        name_suffix: &str,
        spec: impl FnOnce(Tags) -> Spec,
    ) -> Desired {
        Desired {
            id: id.clone(),
            spec: spec(self.tags(id, name_suffix)),
            after: vec![],
        }
    }

    pub fn tags(&self, id: &ResourceId, name_suffix: &str) -> Tags {
        let mut tags = self.config.tags.clone();
        tags.insert(TAG_ENV.into(), self.config.name.clone());
        tags.insert(TAG_ID.into(), id.0.clone());
        tags.insert(
            "Name".into(),
            format!("poolside-{}-{name_suffix}", self.config.name),
        );
        tags
    }
}
