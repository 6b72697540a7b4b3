//! Lints a migration before any runs: the statements that would break what
//! the running release still uses, or lock a table a live API writes to.
//! It knows SQL only as far as statement boundaries, comments and quoted
//! bodies (a function's `$$ ... $$` body is not looked into), so it accepts
//! every statement PostgreSQL does; it reads text and changes nothing.
//!
//! A table "exists" for the lint when an earlier migration created it: the
//! lint holds the same on a fresh database and on a live one, and on both
//! schema runners, which is what a migration must survive.

use regex::Regex;
use std::collections::BTreeSet;
use std::sync::LazyLock;

/// The line that lets a migration run outside a transaction, as
/// `CREATE INDEX CONCURRENTLY` must (PostgreSQL refuses it in one).
pub const NO_TRANSACTION_MARKER: &str = "-- poolside: no-transaction";

/// The line that marks a contracting migration: it drops or narrows what
/// an older release may still use (expand, then contract in a later release).
pub const CONTRACT_MARKER: &str = "-- poolside: contract";

/// What a migration must not do without saying so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Dropping or renaming a table, column, view or function: the release
    /// still running uses it. Allowed in a migration marked as contracting.
    ContractUnmarked,
    /// `CREATE INDEX` without `CONCURRENTLY` on an existing table blocks its
    /// writes for the whole build (an HNSW build on a large table: hours).
    IndexBlocksWrites,
    /// `ADD COLUMN ... NOT NULL` without a default fails on a table with rows.
    NotNullWithoutDefault,
    /// `ALTER COLUMN ... TYPE` rewrites the table under an exclusive lock.
    TypeChangeRewrites,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::ContractUnmarked => "contract-unmarked",
            Rule::IndexBlocksWrites => "index-blocks-writes",
            Rule::NotNullWithoutDefault => "not-null-without-default",
            Rule::TypeChangeRewrites => "type-change-rewrites",
        }
    }

    fn advice(self) -> String {
        match self {
            Rule::ContractUnmarked => format!(
                "drops or renames what the running release may still use: expand first, and contract in a later migration marked `{}`",
                CONTRACT_MARKER
            ),
            Rule::IndexBlocksWrites => format!(
                "builds an index on an existing table without CONCURRENTLY, which blocks its writes until the build ends: use CREATE INDEX CONCURRENTLY in a migration marked `{NO_TRANSACTION_MARKER}`"
            ),
            Rule::NotNullWithoutDefault => {
                "adds a NOT NULL column without a DEFAULT to an existing table: it fails on a table with rows; give it a default, or add it nullable, fill it, then set NOT NULL".into()
            }
            Rule::TypeChangeRewrites => {
                "changes a column's type, which rewrites the table under an exclusive lock: add a new column, fill it, and switch over".into()
            }
        }
    }
}

/// One statement that breaks a rule, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub rule: Rule,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file,
            self.line,
            self.rule.name(),
            self.rule.advice()
        )
    }
}

/// A statement with its comments removed, whitespace collapsed and
/// keywords upper-cased, and the line it starts on.
#[derive(Debug, PartialEq)]
struct Statement {
    text: String,
    line: usize,
}

/// Splits SQL at the semicolons outside comments, quotes and dollar-quoted
/// bodies. A dollar-quoted body is kept as `$$` (never linted).
fn statements(sql: &str) -> Vec<Statement> {
    let mut lexer = Lexer {
        chars: sql.chars().collect(),
        at: 0,
        line: 1,
    };
    let mut found = Vec::new();
    let (mut text, mut start) = (String::new(), None::<usize>);
    while let Some(c) = lexer.peek(0) {
        if lexer.skip_comment() {
            continue;
        }
        if !c.is_whitespace() && start.is_none() {
            start = Some(lexer.line);
        }
        match c {
            ';' => {
                lexer.advance();
                let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
                if let Some(line) = start.take().filter(|_| !collapsed.is_empty()) {
                    found.push(Statement {
                        text: collapsed,
                        line,
                    });
                }
                text.clear();
            }
            '\'' | '"' => text.push_str(&lexer.quoted(c)),
            '$' if lexer.dollar_tag().is_some() => {
                lexer.skip_dollar_body();
                text.push_str(" $$ ");
            }
            _ => {
                text.push(c);
                lexer.advance();
            }
        }
    }
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(line) = start.filter(|_| !collapsed.is_empty()) {
        found.push(Statement {
            text: collapsed,
            line,
        });
    }
    found
}

/// Where the split is in the text, counting lines.
struct Lexer {
    chars: Vec<char>,
    at: usize,
    line: usize,
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn advance(&mut self) {
        if self.peek(0) == Some('\n') {
            self.line += 1;
        }
        self.at += 1;
    }

    /// Skips a `--` or `/* */` comment at the cursor; whether there was one.
    fn skip_comment(&mut self) -> bool {
        match (self.peek(0), self.peek(1)) {
            (Some('-'), Some('-')) => {
                while self.peek(0).is_some_and(|c| c != '\n') {
                    self.advance();
                }
                true
            }
            (Some('/'), Some('*')) => {
                while self.peek(0).is_some()
                    && (self.peek(0), self.peek(1)) != (Some('*'), Some('/'))
                {
                    self.advance();
                }
                self.advance();
                self.advance();
                true
            }
            _ => false,
        }
    }

    /// A quoted text or name at the cursor, as written (doubled quotes escape).
    fn quoted(&mut self, quote: char) -> String {
        let mut text = String::from(quote);
        self.advance();
        while let Some(c) = self.peek(0) {
            text.push(c);
            self.advance();
            if c == quote {
                if self.peek(0) != Some(quote) {
                    break;
                }
                text.push(quote);
                self.advance();
            }
        }
        text
    }

    /// `$tag$` at the cursor, if a dollar quote opens there.
    fn dollar_tag(&self) -> Option<String> {
        let rest = &self.chars[self.at + 1..];
        let end = rest
            .iter()
            .position(|c| !(c.is_alphanumeric() || *c == '_'))?;
        (rest[end] == '$').then(|| self.chars[self.at..=self.at + end + 1].iter().collect())
    }

    fn skip_dollar_body(&mut self) {
        let tag: Vec<char> = self.dollar_tag().unwrap_or_default().chars().collect();
        for _ in 0..tag.len() {
            self.advance();
        }
        while self.peek(0).is_some() && !self.chars[self.at..].starts_with(&tag) {
            self.advance();
        }
        for _ in 0..tag.len() {
            self.advance();
        }
    }
}

/// A name as PostgreSQL reads it: unquoted names fold to lower case.
fn name(written: &str) -> String {
    written
        .split('.')
        .map(
            |part| match part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
                Some(quoted) => quoted.to_string(),
                None => part.to_lowercase(),
            },
        )
        .collect::<Vec<_>>()
        .join(".")
}

const NAME: &str =
    r#"((?:"[^"]+"|[A-Za-z_][A-Za-z0-9_$]*)(?:\.(?:"[^"]+"|[A-Za-z_][A-Za-z0-9_$]*))?)"#;

static CREATE_TABLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)^CREATE (?:UNLOGGED |TEMP |TEMPORARY )?TABLE (?:IF NOT EXISTS )?{NAME}"
    ))
    .unwrap()
});
static CREATE_INDEX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)^CREATE (?:UNIQUE )?INDEX (CONCURRENTLY )?.*? ON (?:ONLY )?{NAME}"
    ))
    .unwrap()
});
static ALTER_TABLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)^ALTER TABLE (?:IF EXISTS )?(?:ONLY )?{NAME} (.*)$"
    ))
    .unwrap()
});
static DROPS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^DROP (?:TABLE|VIEW|MATERIALIZED VIEW|FUNCTION|SCHEMA|TYPE)\b").unwrap()
});
static RENAMES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^ALTER (?:TABLE|VIEW|MATERIALIZED VIEW|FUNCTION|SCHEMA|TYPE)\b.* RENAME\b")
        .unwrap()
});
static DROP_COLUMN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(?:^|, )DROP (?:COLUMN )?(?:IF EXISTS )?(\S+)").unwrap());
static ADD_NOT_NULL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:^|, )ADD (?:COLUMN )?(?:IF NOT EXISTS )?([^,]*?\bNOT NULL\b[^,]*)").unwrap()
});
static TYPE_CHANGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bALTER (?:COLUMN )?\S+ (?:SET DATA )?TYPE\b").unwrap());

/// The tables a migration creates.
pub fn tables_created(sql: &str) -> BTreeSet<String> {
    statements(sql)
        .iter()
        .filter_map(|s| CREATE_TABLE.captures(&s.text))
        .map(|c| name(&c[1]))
        .collect()
}

/// Whether `table` (as written in a statement) is one of `existing`; an
/// unqualified name matches a table of that name in any schema.
fn exists(table: &str, existing: &BTreeSet<String>) -> bool {
    existing.contains(table)
        || (!table.contains('.') && existing.iter().any(|t| t.rsplit('.').next() == Some(table)))
}

/// What in `sql` (the migration `file`) breaks a rule, given the tables
/// earlier migrations created.
pub fn lint(file: &str, sql: &str, existing: &BTreeSet<String>) -> Vec<Finding> {
    let contracting = sql.lines().any(|l| l.trim() == CONTRACT_MARKER);
    let mut found = Vec::new();
    let mut flag = |line: usize, rule: Rule| {
        found.push(Finding {
            file: file.to_string(),
            line,
            rule,
        })
    };
    for statement in statements(sql) {
        let text = statement.text.as_str();
        if !contracting && (DROPS.is_match(text) || RENAMES.is_match(text)) {
            flag(statement.line, Rule::ContractUnmarked);
        }
        if let Some(index) = CREATE_INDEX.captures(text) {
            if index.get(1).is_none() && exists(&name(&index[2]), existing) {
                flag(statement.line, Rule::IndexBlocksWrites);
            }
        }
        let Some(alter) = ALTER_TABLE.captures(text) else {
            continue;
        };
        let actions = &alter[2];
        if !contracting
            && DROP_COLUMN.captures_iter(actions).any(|c| {
                !matches!(
                    c[1].to_ascii_uppercase().as_str(),
                    "CONSTRAINT" | "DEFAULT" | "NOT" | "EXPRESSION" | "IDENTITY"
                )
            })
        {
            flag(statement.line, Rule::ContractUnmarked);
        }
        if !exists(&name(&alter[1]), existing) {
            continue;
        }
        if ADD_NOT_NULL
            .captures_iter(actions)
            .any(|c| !c[1].to_ascii_uppercase().contains("DEFAULT"))
        {
            flag(statement.line, Rule::NotNullWithoutDefault);
        }
        if TYPE_CHANGE.is_match(actions) {
            flag(statement.line, Rule::TypeChangeRewrites);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn existing() -> BTreeSet<String> {
        BTreeSet::from(["api.rag_documents".to_string(), "api.users".to_string()])
    }

    fn rules(sql: &str) -> Vec<(usize, &'static str)> {
        lint("sql/migrations/0006_x.sql", sql, &existing())
            .iter()
            .map(|f| (f.line, f.rule.name()))
            .collect()
    }

    #[test]
    fn statements_split_outside_comments_quotes_and_function_bodies() {
        let sql = "-- a comment; not a statement\nCREATE TABLE a (x text DEFAULT 'a;b');\n\
                   /* block;\n comment */ CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$\n  SELECT 1; DROP TABLE a;\n$body$;\n\
                   SELECT 2";
        let found = statements(sql);
        assert_eq!(
            found,
            [
                Statement {
                    text: "CREATE TABLE a (x text DEFAULT 'a;b')".into(),
                    line: 2
                },
                Statement {
                    text: "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$".into(),
                    line: 4
                },
                Statement {
                    text: "SELECT 2".into(),
                    line: 7
                },
            ]
        );
    }

    #[test]
    fn each_rule_names_the_line_that_breaks_it() {
        let sql = "ALTER TABLE api.users ADD COLUMN team text NOT NULL;\n\
                   CREATE INDEX users_team ON api.users (team);\n\
                   ALTER TABLE api.rag_documents ALTER COLUMN title TYPE varchar(200);\n\
                   DROP TABLE api.old_things;\n\
                   ALTER TABLE api.users DROP COLUMN nickname;\n\
                   ALTER TABLE api.users RENAME COLUMN email TO mail;\n";
        assert_eq!(
            rules(sql),
            [
                (1, "not-null-without-default"),
                (2, "index-blocks-writes"),
                (3, "type-change-rewrites"),
                (4, "contract-unmarked"),
                (5, "contract-unmarked"),
                (6, "contract-unmarked"),
            ]
        );
    }

    #[test]
    fn what_is_safe_passes() {
        let sql = "CREATE TABLE api.teams (id bigint PRIMARY KEY, name text NOT NULL);\n\
                   CREATE INDEX teams_name ON api.teams (name);\n\
                   CREATE INDEX CONCURRENTLY users_email ON api.users (email);\n\
                   ALTER TABLE api.users ADD COLUMN team text NOT NULL DEFAULT 'none';\n\
                   ALTER TABLE api.users ADD COLUMN bio text;\n\
                   ALTER TABLE api.users ALTER COLUMN bio DROP DEFAULT, DROP CONSTRAINT users_bio_check;\n\
                   ALTER TABLE api.teams ALTER COLUMN name TYPE varchar(80);\n\
                   CREATE FUNCTION api.f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DROP TABLE x; END $$;\n";
        assert_eq!(rules(sql), []);
    }

    #[test]
    fn a_contracting_migration_may_drop_and_rename() {
        let sql = "-- poolside: contract\nDROP TABLE api.old_things;\nALTER TABLE api.users DROP COLUMN nickname;\n";
        assert_eq!(rules(sql), []);
    }

    #[test]
    fn a_finding_says_file_line_rule_and_what_to_do() {
        let found = lint(
            "sql/migrations/0006_x.sql",
            "\n\nCREATE UNIQUE INDEX u ON API.Users (email);",
            &existing(),
        );
        assert_eq!(found.len(), 1);
        let text = found[0].to_string();
        assert!(
            text.starts_with("sql/migrations/0006_x.sql:3: index-blocks-writes: ")
                && text.contains("CREATE INDEX CONCURRENTLY")
                && text.contains(NO_TRANSACTION_MARKER),
            "{text}"
        );
    }

    #[test]
    fn created_tables_are_named_as_postgres_folds_them() {
        let sql =
            "CREATE TABLE IF NOT EXISTS Api.Users (id int);\nCREATE TABLE \"Mixed\" (id int);";
        assert_eq!(
            tables_created(sql),
            BTreeSet::from(["api.users".to_string(), "Mixed".to_string()])
        );
    }
}
