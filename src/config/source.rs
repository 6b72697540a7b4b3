//! Locating keys in an environment file, so every error names the file, the
//! line and column, and the dotted key it is about.

use miette::{Diagnostic, NamedSource, SourceSpan};
use std::ops::Range;
use toml_edit::{ImDocument, Item, Table, Value};

/// One problem in one environment file, ready to show to a person.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{file}:{line}:{column}: `{key}`: {message}")]
pub struct InvalidEnvironment {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
    #[source_code]
    source_code: NamedSource<String>,
    #[label("here")]
    span: SourceSpan,
    /// The file's other problems, shown with the first (`validate` reports
    /// every section's first problem at once).
    #[related]
    pub others: Vec<InvalidEnvironment>,
}

/// The text of an environment file and its parsed layout, kept together so
/// that validation can point back at where a value was written.
pub struct Source {
    file: String,
    text: String,
    doc: Option<ImDocument<String>>,
}

impl Source {
    pub fn new(file: impl Into<String>, text: String) -> Self {
        let doc = ImDocument::parse(text.clone()).ok();
        Source {
            file: file.into(),
            text,
            doc,
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The directory of the file, against which relative paths in it are read.
    pub fn directory(&self) -> Option<&std::path::Path> {
        std::path::Path::new(&self.file).parent()
    }

    /// An error about the value at a dotted path such as `network.public_subnet_cidrs[1]`.
    /// When the path is not written in the file (a missing key), the error points
    /// at the closest table that is.
    pub fn error_at(&self, path: &str, message: impl Into<String>) -> Box<InvalidEnvironment> {
        let span = self.span_of(path).unwrap_or(0..0);
        self.error_with_span(path.to_string(), span, message.into())
    }

    /// An error from the TOML deserializer, which knows a byte span but not the key.
    pub fn error_from_toml(&self, err: &toml::de::Error) -> Box<InvalidEnvironment> {
        let span = err.span().unwrap_or(0..0);
        let message = did_you_mean(err.message().trim());
        let key = self
            .path_at(span.start)
            .or_else(|| missing_field_name(&message))
            .unwrap_or_else(|| "(top level)".to_string());
        self.error_with_span(key, span, message)
    }

    fn error_with_span(
        &self,
        key: String,
        span: Range<usize>,
        message: String,
    ) -> Box<InvalidEnvironment> {
        let (line, column) = line_column(&self.text, span.start);
        Box::new(InvalidEnvironment {
            file: self.file.clone(),
            line,
            column,
            key,
            message,
            source_code: NamedSource::new(self.file.clone(), self.text.clone()),
            span: (span.start, span.end.saturating_sub(span.start)).into(),
            others: Vec::new(),
        })
    }

    fn span_of(&self, path: &str) -> Option<Range<usize>> {
        let doc = self.doc.as_ref()?;
        let mut table_like: &Table = doc.as_table();
        let mut best: Option<Range<usize>> = None;
        let mut current: Option<&Item> = None;
        for segment in parse_path(path) {
            match segment {
                Segment::Key(name) => {
                    let item = match current {
                        None => table_like.get_key_value(name),
                        Some(Item::Table(t)) => {
                            table_like = t;
                            t.get_key_value(name)
                        }
                        Some(Item::Value(Value::InlineTable(t))) => t.get_key_value(name),
                        _ => None,
                    };
                    let Some((key, item)) = item else { break };
                    best = item.span().or_else(|| key.span()).or(best);
                    current = Some(item);
                }
                Segment::Index(index) => {
                    let Some(Item::Value(Value::Array(array))) = current else {
                        break;
                    };
                    let Some(value) = array.get(index) else { break };
                    best = value.span().or(best);
                    // Array elements are leaves for our purposes.
                    break;
                }
            }
        }
        best
    }

    /// The dotted path of the innermost key whose key or value covers `offset`.
    fn path_at(&self, offset: usize) -> Option<String> {
        let doc = self.doc.as_ref()?;
        path_in_table(doc.as_table(), offset, String::new())
    }
}

fn path_in_table(table: &Table, offset: usize, prefix: String) -> Option<String> {
    for (name, _) in table.iter() {
        let (key, item) = table.get_key_value(name)?;
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        if let Item::Table(child) = item {
            if let Some(found) = path_in_table(child, offset, path.clone()) {
                return Some(found);
            }
        }
        let covers = |r: Option<Range<usize>>| r.is_some_and(|r| r.contains(&offset));
        if covers(key.span()) {
            return Some(path);
        }
        if let Item::Value(Value::Array(array)) = item {
            for (index, value) in array.iter().enumerate() {
                if covers(value.span()) {
                    return Some(format!("{path}[{index}]"));
                }
            }
        }
        if let Item::Value(Value::InlineTable(inline)) = item {
            for (inner, value) in inline.iter() {
                if covers(value.span()) {
                    return Some(format!("{path}.{inner}"));
                }
            }
        }
        if covers(item.span()) {
            return Some(path);
        }
    }
    None
}

fn missing_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn parse_path(path: &str) -> Vec<Segment<'_>> {
    let mut segments = Vec::new();
    for part in path.split('.') {
        match part.split_once('[') {
            Some((name, rest)) => {
                segments.push(Segment::Key(name));
                if let Ok(index) = rest.trim_end_matches(']').parse() {
                    segments.push(Segment::Index(index));
                }
            }
            None => segments.push(Segment::Key(part)),
        }
    }
    segments
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// What [`prune`] did to get past one deserialization error.
pub enum Pruned {
    /// An unknown key, left out.
    Removed,
    /// An unknown value, replaced by the first allowed one.
    Replaced,
    /// A misspelled key, read under the known one (its dotted path now).
    Renamed(String),
}

/// Gets past serde's error `message` about the key at `path`, so the rest
/// of the file can be read: an unknown key is read as the known key it
/// misspells (`suggested`, when that one is not written too) or left out,
/// an unknown enum value is replaced by the first value the message
/// allows. `None` for any other error (it is reported alone).
pub fn prune(
    document: &mut toml_edit::DocumentMut,
    path: &str,
    message: &str,
    suggested: Option<&str>,
) -> Option<Pruned> {
    let segments: Vec<&str> = path.split('.').collect();
    let (last, parents) = segments.split_last()?;
    if parents.iter().chain([last]).any(|s| s.contains('[')) {
        return None;
    }
    let mut table: &mut dyn toml_edit::TableLike = document.as_table_mut();
    for parent in parents {
        table = table.get_mut(parent)?.as_table_like_mut()?;
    }
    if message.starts_with("unknown field `") {
        let item = table.remove(last)?;
        if let Some(known) = suggested.filter(|known| !table.contains_key(known)) {
            table.insert(known, item);
            let renamed = parents
                .iter()
                .chain([&known])
                .copied()
                .collect::<Vec<_>>()
                .join(".");
            return Some(Pruned::Renamed(renamed));
        }
        return Some(Pruned::Removed);
    }
    if message.starts_with("unknown variant `") {
        let (_, expected) = message.split_once("expected ")?;
        let allowed = expected.split('`').nth(1)?;
        *table.get_mut(last)? = toml_edit::value(allowed);
        return Some(Pruned::Replaced);
    }
    None
}

/// serde's "unknown field `x`, expected one of `a`, `b`" gains the closest
/// known name, when one is close.
fn did_you_mean(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_string();
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    let nearest = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|known| (edit_distance(unknown, known), known))
        .filter(|(distance, known)| *distance <= 2.max(known.len() / 4))
        .min();
    match nearest {
        Some((_, known)) => format!("{message}; did you mean `{known}`?"),
        None => message.to_string(),
    }
}

/// Levenshtein distance.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"x\"\n[network]\nvpc_cidr = \"10.0.0.0/8\"\nazs = [\"a\", \"b\"]\n";

    #[test]
    fn error_points_at_the_value_of_a_nested_key() {
        let source = Source::new("x.toml", TEXT.to_string());
        let err = source.error_at("network.vpc_cidr", "too large");
        assert_eq!((err.line, err.column), (3, 12));
        assert_eq!(
            err.to_string(),
            "x.toml:3:12: `network.vpc_cidr`: too large"
        );
    }

    #[test]
    fn error_points_at_an_array_element() {
        let source = Source::new("x.toml", TEXT.to_string());
        let err = source.error_at("network.azs[1]", "duplicate");
        assert_eq!((err.line, err.column), (4, 13));
    }

    #[test]
    fn offset_maps_back_to_the_key() {
        let source = Source::new("x.toml", TEXT.to_string());
        let offset = TEXT.find("10.0").unwrap();
        assert_eq!(source.path_at(offset).as_deref(), Some("network.vpc_cidr"));
        let offset = TEXT.find("\"b\"").unwrap();
        assert_eq!(source.path_at(offset).as_deref(), Some("network.azs[1]"));
    }
}
