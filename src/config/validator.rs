//! The checker every section's validation runs in: it knows the file, so a
//! problem points at the key's value as written. The checks themselves are
//! `impl Validator` blocks next to the settings they check.

use super::source::{InvalidEnvironment, Source};

pub(super) struct Validator<'a> {
    pub source: &'a Source,
}

pub(super) type Checked<T> = Result<T, Box<InvalidEnvironment>>;

impl Validator<'_> {
    pub(super) fn fail<T>(&self, path: &str, message: impl Into<String>) -> Checked<T> {
        Err(self.source.error_at(path, message))
    }
}
