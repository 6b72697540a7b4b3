//! The schema task's log, read while the task runs: how far its index
//! builds and ANALYZE are, and whether it is still doing anything.
//!
//! Both ends of that conversation are here. In the task, a second psql
//! session reads the main session's progress every few seconds
//! ([`PROGRESS_QUERY`], run by the task's shell) and prints it on
//! [`PROGRESS_MARKER`] lines. On the deploy host, [`LogTail`] follows the
//! task's CloudWatch Logs stream and [`describe`] turns those lines into
//! what the deploy says while it waits, as the deploy-host path says it
//! from `pg_stat_progress_create_index` ([`super::index_builds`]).

use super::index_builds::Progress;
use crate::resources::Context;

/// What starts each progress line, before its `|`-separated fields.
pub const PROGRESS_MARKER: &str = "poolside: progress";

/// How often the task looks (seconds; `POOLSIDE_PROGRESS_EVERY` in its
/// environment changes it, for tests).
pub const PROGRESS_EVERY_SECONDS: u64 = 10;

/// Every how many looks a session busy with something else (a long
/// UPDATE, a lock wait) says so: once a minute.
const BUSY_EVERY_LOOKS: u32 = 6;

/// The look: one statement, for `psql -tA -F '|' -c`, with the shell's
/// `$n` (the look's number) in it. The main session is the one whose
/// application name is the task's (`PGAPPNAME=poolside-schema`).
pub fn progress_query() -> String {
    format!(
        "WITH main AS (SELECT pid, wait_event_type, wait_event, now() - query_start AS running \
           FROM pg_stat_activity WHERE application_name = 'poolside-schema' AND state = 'active'), \
         builds AS ( \
           SELECT 'index' AS what, coalesce(i.relname::text, 'on ' || t.relname::text, 'on a new table') AS name, \
                  p.phase::text AS phase, p.blocks_done AS done1, p.blocks_total AS total1, \
                  p.tuples_done AS done2, p.tuples_total AS total2 \
             FROM pg_stat_progress_create_index p JOIN main USING (pid) \
             LEFT JOIN pg_class i ON i.oid = p.index_relid LEFT JOIN pg_class t ON t.oid = p.relid \
           UNION ALL \
           SELECT 'analyze', coalesce(c.relname::text, 'a table'), p.phase::text, \
                  p.sample_blks_scanned, p.sample_blks_total, 0, 0 \
             FROM pg_stat_progress_analyze p JOIN main USING (pid) LEFT JOIN pg_class c ON c.oid = p.relid) \
         SELECT '{PROGRESS_MARKER}', * FROM builds \
         UNION ALL \
         SELECT '{PROGRESS_MARKER}', 'busy', coalesce(wait_event_type || ' ' || wait_event, ''), \
                extract(epoch FROM running)::bigint::text, 0, 0, 0, 0 \
           FROM main WHERE $n % {BUSY_EVERY_LOOKS} = 0 AND NOT EXISTS (SELECT FROM builds)"
    )
}

/// What a progress line says, for the deploy's waiting line; `None` for
/// any other line.
pub fn describe(line: &str) -> Option<String> {
    let rest = line
        .trim()
        .strip_prefix(PROGRESS_MARKER)?
        .strip_prefix('|')?;
    let fields: Vec<&str> = rest.split('|').collect();
    let [what, name, phase, done1, total1, done2, total2] = fields.as_slice() else {
        return None;
    };
    let number = |text: &str| text.trim().parse::<i64>().ok();
    match *what {
        "index" => Some(
            Progress {
                index: name.to_string(),
                phase: phase.to_string(),
                blocks_done: number(done1)?,
                blocks_total: number(total1)?,
                tuples_done: number(done2)?,
                tuples_total: number(total2)?,
            }
            .to_string(),
        ),
        "analyze" => {
            let (done, total) = (number(done1)?, number(total1)?);
            let share = match total > 0 {
                true => format!(", {}% of its sample", (done * 100 / total).min(100)),
                false => String::new(),
            };
            Some(format!("ANALYZE {name}: {phase}{share}"))
        }
        "busy" => {
            let seconds = number(phase)?;
            let waiting = match name.trim() {
                "" => String::new(),
                event => format!(", waiting on {event}"),
            };
            Some(format!(
                "a statement has run for {}{waiting}",
                minutes_and_seconds(seconds.max(0) as u64)
            ))
        }
        _ => None,
    }
}

/// "2 min 5 s", "59 s": the layer of `output` is above this one.
fn minutes_and_seconds(seconds: u64) -> String {
    match (seconds / 60, seconds % 60) {
        (0, s) => format!("{s} s"),
        (m, 0) => format!("{m} min"),
        (m, s) => format!("{m} min {s} s"),
    }
}

/// A CloudWatch Logs stream read as it grows: each [`LogTail::read`]
/// returns what was written since the last.
pub struct LogTail {
    group: String,
    stream: String,
    token: Option<String>,
}

impl LogTail {
    pub fn new(group: &str, stream: &str) -> LogTail {
        LogTail {
            group: group.to_string(),
            stream: stream.to_string(),
            token: None,
        }
    }

    /// The lines written since the last read, in order; an error saying
    /// why the stream could not be read. A stream not made yet (the
    /// container has not started) has no lines.
    pub async fn read(&mut self, cx: &Context) -> Result<Vec<String>, String> {
        let mut lines = Vec::new();
        loop {
            let out = cx
                .clients
                .logs
                .get_log_events()
                .log_group_name(&self.group)
                .log_stream_name(&self.stream)
                .start_from_head(true)
                .set_next_token(self.token.clone())
                .send()
                .await;
            let out = match out {
                Ok(out) => out,
                Err(err) => {
                    let missing = err
                        .as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception());
                    return match missing {
                        true => Ok(lines),
                        false => {
                            Err(aws_smithy_types::error::display::DisplayErrorContext(&err)
                                .to_string())
                        }
                    };
                }
            };
            lines.extend(
                out.events()
                    .iter()
                    .filter_map(|e| e.message().map(str::to_string)),
            );
            // The end of the stream is where GetLogEvents gives back the
            // token it was given; a page may be empty before that.
            let next = out.next_forward_token().map(str::to_string);
            if next.is_none() || next == self.token {
                return Ok(lines);
            }
            self.token = next;
        }
    }
}

/// The task's lines without its progress lines: what it did, for the
/// markers and for an error's tail.
pub fn without_progress(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| !l.trim().starts_with(PROGRESS_MARKER))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_read_as_the_deploy_host_says_them() {
        assert_eq!(
            describe("poolside: progress|index|bulk_body|building index: loading tuples in tree|0|0|250|1000").as_deref(),
            Some("index bulk_body: building index: loading tuples in tree, 25% of its rows")
        );
        assert_eq!(
            describe("poolside: progress|analyze|rag_documents|acquiring sample rows|40|80|0|0")
                .as_deref(),
            Some("ANALYZE rag_documents: acquiring sample rows, 50% of its sample")
        );
        assert_eq!(
            describe("poolside: progress|busy|Lock relation|125|0|0|0|0").as_deref(),
            Some("a statement has run for 2 min 5 s, waiting on Lock relation")
        );
        assert_eq!(
            describe("poolside: progress|busy||59|0|0|0|0").as_deref(),
            Some("a statement has run for 59 s")
        );
        assert_eq!(describe("poolside: applied 7"), None);
        assert_eq!(describe("poolside: progress|index|x|phase|a|b|c|d"), None);
        assert_eq!(describe("poolside: progress|later|x|phase|0|0|0|0"), None);
    }

    #[test]
    fn the_query_has_no_character_the_shells_double_quotes_would_change() {
        let query = progress_query();
        let outside_n = query.replace("$n", "");
        assert!(
            !outside_n.contains(['$', '"', '`', '\\']),
            "the task's shell would change the progress query: {query}"
        );
    }
}
