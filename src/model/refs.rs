//! References inside documents: `${kind/name}` stands for the AWS id of a
//! poolside resource and `${kind/name:attribute}` for one of its attributes
//! (`${secret/jwt}`, `${db-instance/main:address}`). Policies, the task
//! definition and the dashboard name ARNs that exist only once their resource
//! does; the blueprint writes the reference and it is filled in twice: at
//! plan time with what already exists, so a spec compares with what AWS
//! reports, and at apply time with what this run created.

use super::id::ResourceId;
use serde_json::Value;

/// One `${...}` reference.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    pub id: ResourceId,
    pub attribute: Option<String>,
}

impl Reference {
    /// A reference to `id`; an AWS id (what poolside does not manage, such
    /// as the customer's subnets) is written as itself.
    pub fn to(id: &ResourceId) -> String {
        match id.kind() {
            Some(_) => format!("${{{id}}}"),
            None => id.0.clone(),
        }
    }

    pub fn to_attribute(id: &ResourceId, attribute: &str) -> String {
        format!("${{{id}:{attribute}}}")
    }

    fn parse(inner: &str) -> Option<Reference> {
        let (id, attribute) = match inner.split_once(':') {
            Some((id, attribute)) => (id, Some(attribute.to_string())),
            None => (inner, None),
        };
        let id = ResourceId(id.to_string());
        id.kind()?;
        Some(Reference { id, attribute })
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.attribute {
            Some(a) => write!(f, "{}:{a}", self.id),
            None => write!(f, "{}", self.id),
        }
    }
}

/// Replaces each reference that `resolve` knows; leaves the others as written.
pub fn substitute(text: &str, resolve: &mut dyn FnMut(&Reference) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &after[..end];
        match Reference::parse(inner).and_then(|r| resolve(&r)) {
            Some(value) => out.push_str(&value),
            None => out.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Applies [`substitute`] to every string (keys too) of a JSON value.
pub fn substitute_json(
    value: &Value,
    resolve: &mut dyn FnMut(&Reference) -> Option<String>,
) -> Value {
    match value {
        Value::String(s) => Value::String(substitute(s, resolve)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| substitute_json(v, resolve)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (substitute(k, resolve), substitute_json(v, resolve)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Every reference in any string of a JSON value.
pub fn references_in_json(value: &Value) -> Vec<Reference> {
    let mut found = Vec::new();
    substitute_json(value, &mut |r| {
        found.push(r.clone());
        None
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_references_are_filled_in_and_unknown_ones_kept() {
        let text =
            "${secret/authenticator}:password:: and ${db-instance/main:address} and ${not a ref}";
        let filled = substitute(
            text,
            &mut |r| match (r.id.0.as_str(), r.attribute.as_deref()) {
                ("secret/authenticator", None) => {
                    Some("arn:aws:secretsmanager:x:1:secret:a-Ab12".into())
                }
                _ => None,
            },
        );
        assert_eq!(
            filled,
            "arn:aws:secretsmanager:x:1:secret:a-Ab12:password:: and ${db-instance/main:address} and ${not a ref}"
        );
        let refs = references_in_json(&Value::String(text.into()));
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[1].attribute.as_deref(), Some("address"));
    }
}
