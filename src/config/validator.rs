//! The checker every section's validation runs in: it knows the file, so a
//! problem points at the key's value as written. The checks themselves are
//! `impl Validator` blocks next to the settings they check.

use super::source::{InvalidEnvironment, Source};
use ipnet::Ipv4Net;

pub(super) struct Validator<'a> {
    pub source: &'a Source,
}

pub(super) type Checked<T> = Result<T, Box<InvalidEnvironment>>;

impl Validator<'_> {
    pub(super) fn fail<T>(&self, path: &str, message: impl Into<String>) -> Checked<T> {
        Err(self.source.error_at(path, message))
    }

    pub(super) fn cidr(&self, path: &str, text: &str) -> Checked<Ipv4Net> {
        let net: Ipv4Net = match text.parse() {
            Ok(net) => net,
            Err(_) => {
                return self.fail(
                    path,
                    format!("{text:?} is not a valid IPv4 CIDR block such as \"10.0.0.0/16\""),
                )
            }
        };
        if net.trunc() != net {
            return self.fail(
                path,
                format!(
                    "{text:?} has host bits set; did you mean \"{}\"?",
                    net.trunc()
                ),
            );
        }
        Ok(net)
    }
}
