//! What a run's AWS calls cost, counted by an interceptor on every client:
//! calls, retries and time per operation (`--stats`, the benchmark), and how
//! deep the reads before the first change were chained, i.e. how many round
//! trips a command waits through whatever the latency. Knows nothing of what
//! the calls are for.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one operation cost during a run.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct OperationStats {
    pub service: String,
    pub operation: String,
    pub calls: u64,
    pub mutating: bool,
    pub retries: u64,
    pub errors: u64,
    pub total_ms: u64,
    #[serde(skip)]
    attempts: u64,
}

/// One call, from its first attempt to its answer.
#[derive(Clone, Debug)]
struct CallSpan {
    service: String,
    operation: String,
    started: Instant,
    answered: Instant,
}

#[derive(Debug, Default)]
pub struct CallStats {
    by_operation: Mutex<BTreeMap<(String, String), OperationStats>>,
    spans: Mutex<Vec<CallSpan>>,
}

impl CallStats {
    pub fn snapshot(&self) -> StatsReport {
        let mut operations: Vec<OperationStats> = self
            .by_operation
            .lock()
            .unwrap()
            .values()
            .cloned()
            .collect();
        for op in &mut operations {
            // The first attempt of each call is not a retry.
            op.retries = op.attempts.saturating_sub(op.calls);
        }
        let deepest_reads = deepest_read_chain(&self.spans.lock().unwrap());
        StatsReport {
            total_calls: operations.iter().map(|o| o.calls).sum(),
            mutating_calls: operations
                .iter()
                .filter(|o| o.mutating)
                .map(|o| o.calls)
                .sum(),
            retries: operations.iter().map(|o| o.retries).sum(),
            read_depth: deepest_reads.len(),
            deepest_reads,
            operations,
        }
    }

    fn with(&self, metadata: &Metadata, update: impl FnOnce(&mut OperationStats)) {
        let mut map = self.by_operation.lock().unwrap();
        let key = (metadata.service().to_string(), metadata.name().to_string());
        let entry = map.entry(key).or_insert_with(|| OperationStats {
            service: metadata.service().to_string(),
            operation: metadata.name().to_string(),
            mutating: is_mutating(metadata.name()),
            ..Default::default()
        });
        update(entry);
    }
}

/// The state bucket's lock and history objects are written by every deploy
/// and destroy before anything of the environment changes: they do not end
/// its discovery.
fn changes_the_environment(span: &CallSpan) -> bool {
    is_mutating(&span.operation)
        && !(span.service == "S3"
            && matches!(span.operation.as_str(), "PutObject" | "DeleteObject"))
}

/// The longest chain of reads made before the first change, each started only
/// after the one before it had answered: under added latency, the round trips
/// the command waited through one after another (reads that overlap count
/// once). Named "Service Operation", first read first.
fn deepest_read_chain(spans: &[CallSpan]) -> Vec<String> {
    let first_change = spans
        .iter()
        .filter(|s| changes_the_environment(s))
        .map(|s| s.started)
        .min();
    let mut reads: Vec<&CallSpan> = spans
        .iter()
        .filter(|s| !is_mutating(&s.operation))
        .filter(|s| first_change.is_none_or(|change| s.started < change))
        .collect();
    reads.sort_by_key(|s| s.started);
    // depth[i]: the longest chain ending in read i; after[i]: the read before it.
    let mut depth = vec![1usize; reads.len()];
    let mut after: Vec<Option<usize>> = vec![None; reads.len()];
    for i in 0..reads.len() {
        for j in 0..i {
            if reads[j].answered <= reads[i].started && depth[j] + 1 > depth[i] {
                depth[i] = depth[j] + 1;
                after[i] = Some(j);
            }
        }
    }
    let Some(mut last) = (0..reads.len()).max_by_key(|&i| (depth[i], std::cmp::Reverse(i))) else {
        return vec![];
    };
    let mut chain = vec![last];
    while let Some(before) = after[last] {
        chain.push(before);
        last = before;
    }
    chain
        .iter()
        .rev()
        .map(|&i| format!("{} {}", reads[i].service, reads[i].operation))
        .collect()
}

#[derive(Clone, Debug, Serialize)]
pub struct StatsReport {
    pub total_calls: u64,
    pub mutating_calls: u64,
    pub retries: u64,
    /// How many reads before the first change had to wait for each other.
    pub read_depth: usize,
    /// Those reads, first first.
    pub deepest_reads: Vec<String>,
    pub operations: Vec<OperationStats>,
}

impl StatsReport {
    pub fn render(&self, wall: Duration) -> String {
        let mut table = comfy_table::Table::new();
        table
            .load_preset(comfy_table::presets::NOTHING)
            .set_header([
                "service",
                "operation",
                "calls",
                "mutating",
                "retries",
                "time",
            ]);
        for op in &self.operations {
            table.add_row([
                op.service.clone(),
                op.operation.clone(),
                op.calls.to_string(),
                if op.mutating { "yes" } else { "" }.to_string(),
                op.retries.to_string(),
                format!("{}ms", op.total_ms),
            ]);
        }
        for column in 2..6 {
            if let Some(c) = table.column_mut(column) {
                c.set_cell_alignment(comfy_table::CellAlignment::Right);
            }
        }
        format!(
            "API calls: {} ({} mutating, {} retries) in {:.2}s\n\
             Round trips before the first change: {} reads, each waiting for the one before (one such chain: {})\n{table}\n",
            self.total_calls,
            self.mutating_calls,
            self.retries,
            wall.as_secs_f64(),
            self.read_depth,
            self.deepest_reads.join(" → "),
        )
    }
}

/// Reads never change anything, nor does taking a role's credentials
/// (STS AssumeRole); every other operation is counted as mutating.
pub fn is_mutating(operation: &str) -> bool {
    const READ_PREFIXES: [&str; 5] = ["Describe", "Get", "List", "Head", "Lookup"];
    operation != "AssumeRole" && !READ_PREFIXES.iter().any(|p| operation.starts_with(p))
}

#[derive(Clone, Debug)]
pub(super) struct CallCounter(pub(super) Arc<CallStats>);

#[derive(Clone, Debug)]
struct CallStarted(Instant);

impl Storable for CallStarted {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "poolside::CallCounter"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(CallStarted(Instant::now()));
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(metadata) = cfg.load::<Metadata>() {
            self.0.with(metadata, |op| op.attempts += 1);
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let answered = Instant::now();
        let started = cfg.load::<CallStarted>().map(|s| s.0).unwrap_or(answered);
        let elapsed = answered - started;
        let failed = matches!(context.output_or_error(), Some(Err(_)));
        if let Some(metadata) = cfg.load::<Metadata>() {
            tracing::debug!(
                service = metadata.service(),
                operation = metadata.name(),
                ms = elapsed.as_millis() as u64,
                failed,
                "AWS call"
            );
            self.0.with(metadata, |op| {
                op.calls += 1;
                op.total_ms += elapsed.as_millis() as u64;
                if failed {
                    op.errors += 1;
                }
            });
            self.0.spans.lock().unwrap().push(CallSpan {
                service: metadata.service().to_string(),
                operation: metadata.name().to_string(),
                started,
                answered,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stats_table_keeps_its_columns_with_long_service_names() {
        let op = |service: &str, operation: &str| OperationStats {
            service: service.into(),
            operation: operation.into(),
            calls: 12,
            ..Default::default()
        };
        let report = StatsReport {
            total_calls: 24,
            mutating_calls: 0,
            retries: 0,
            read_depth: 0,
            deepest_reads: vec![],
            operations: vec![
                op("EC2", "DescribeVpcs"),
                op("Elastic Load Balancing v2", "DescribeTargetGroupAttributes"),
            ],
        };
        let text = report.render(Duration::from_millis(1500));
        let offsets: Vec<usize> = text
            .lines()
            .filter(|l| l.contains("Describe"))
            .map(|l| l.find("12").unwrap())
            .collect();
        assert_eq!(offsets.len(), 2);
        assert_eq!(offsets[0], offsets[1], "{text}");
    }

    #[test]
    fn reads_and_writes_are_told_apart() {
        assert!(!is_mutating("DescribeVpcs"));
        assert!(!is_mutating("GetBucketPolicy"));
        assert!(!is_mutating("HeadBucket"));
        assert!(!is_mutating("AssumeRole"));
        assert!(is_mutating("CreateVpc"));
        assert!(is_mutating("AuthorizeSecurityGroupIngress"));
        assert!(is_mutating("PutBucketPolicy"));
    }

    /// A call from `from` ms to `to` ms after `zero`.
    fn span(zero: Instant, operation: &str, from: u64, to: u64) -> CallSpan {
        let service = if operation.ends_with("Object") {
            "S3"
        } else {
            "EC2"
        };
        CallSpan {
            service: service.into(),
            operation: operation.into(),
            started: zero + Duration::from_millis(from),
            answered: zero + Duration::from_millis(to),
        }
    }

    #[test]
    fn overlapping_reads_count_once_and_a_read_that_waited_for_another_counts_again() {
        let zero = Instant::now();
        let spans = [
            span(zero, "DescribeVpcs", 0, 50),
            span(zero, "DescribeSubnets", 1, 52),
            span(zero, "DescribeRouteTables", 2, 49),
            // Needs the VPC's id: waited for DescribeVpcs.
            span(zero, "DescribeVpcAttribute", 51, 100),
            // Started before DescribeSubnets answered: it did not wait for it.
            span(zero, "DescribeSecurityGroupRules", 51, 99),
            span(zero, "DescribeNatGateways", 101, 150),
        ];
        let chain = deepest_read_chain(&spans);
        assert_eq!(
            chain,
            [
                "EC2 DescribeVpcs",
                "EC2 DescribeVpcAttribute",
                "EC2 DescribeNatGateways"
            ]
        );
    }

    #[test]
    fn the_reads_after_the_first_change_are_not_discovery_but_the_lock_is_not_a_change() {
        let zero = Instant::now();
        let spans = [
            span(zero, "GetObject", 0, 10),
            span(zero, "PutObject", 11, 20),
            span(zero, "DescribeVpcs", 21, 30),
            span(zero, "CreateVpc", 31, 40),
            span(zero, "DescribeVpcs", 41, 50),
            span(zero, "DescribeSubnets", 51, 60),
        ];
        let report_chain = deepest_read_chain(&spans);
        assert_eq!(report_chain, ["S3 GetObject", "EC2 DescribeVpcs"]);
        assert!(deepest_read_chain(&[]).is_empty());
    }
}
