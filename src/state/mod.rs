//! What poolside keeps about its own runs, in a state bucket of the account
//! and region (`poolside-state-<account>-<region>`, made on first use:
//! versioned, encrypted, public access blocked, TLS only):
//!
//! - **the lock** of each environment, `locks/<env>.json`, taken by every
//!   mutating command with a conditional create (`If-None-Match: *`), so two
//!   operators on two machines cannot both hold it. The holder renews its
//!   lease while it runs (a conditional overwrite on its own ETag); a lease
//!   that expired (its holder crashed) may be taken over, by a conditional
//!   overwrite on the ETag that was read, and the takeover is recorded;
//! - **the history** of each environment, `history/<env>/<key>.json`, one
//!   record per deploy, destroy or unlock, keyed so that S3 lists the newest
//!   first.
//!
//! S3 has offered conditional writes since 2024 and conditional deletes
//! since 2025; moto implements them both (tested here). A lease is judged by
//! the clock of the machine that reads it: machines whose clocks are minutes
//! apart could take over a live lock early, so the lease is generous.
//!
//! `store.rs` is the bucket, `lock.rs` the lock, `history.rs` the history
//! and the remembered domains.

mod history;
mod lock;
mod store;

pub use history::*;
pub use lock::*;
pub use store::Store;

#[cfg(test)]
mod tests {
    use super::lock::*;
    use super::store::now_s;
    use super::*;
    use aws_sdk_s3::primitives::ByteStream;
    use std::sync::Mutex;
    use std::time::Duration;

    fn holder(renewed_at: u64) -> LockInfo {
        LockInfo {
            lock_id: "0123456789abcdef".into(),
            environment: "pilot".into(),
            who: "arn:aws:iam::111122223333:user/alice".into(),
            host: "laptop".into(),
            command: "deploy".into(),
            pid: 4242,
            started_at: renewed_at,
            renewed_at,
            lease_seconds: 120,
            took_over: None,
            pid_scope: None,
            process_start: None,
        }
    }

    fn s3_error(status: u16, code: &str) -> aws_smithy_runtime_api::http::Response {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap(),
            aws_smithy_types::body::SdkBody::from(format!(
                "<Error><Code>{code}</Code><Message>{code}</Message><RequestId>r</RequestId></Error>"
            )),
        )
    }

    fn store(rules: &[&aws_smithy_mocks::Rule]) -> Store {
        Store {
            s3: crate::mocked!(aws_sdk_s3, rules.iter().copied()),
            bucket: "poolside-state-111122223333-eu-west-1".into(),
            owner: "111122223333".into(),
            emulator: false,
        }
    }

    /// S3 answers 409 when a concurrent conditional write to the key won:
    /// that is another holder, named in the error, not a failure.
    #[tokio::test]
    async fn a_concurrent_writer_that_won_is_named_as_the_holder() {
        use aws_sdk_s3::operation::get_object::GetObjectOutput;
        use aws_smithy_mocks::mock;
        let lost = mock!(aws_sdk_s3::Client::put_object)
            .match_requests(|r| r.if_none_match() == Some("*"))
            .then_http_response(|| s3_error(409, "ConditionalRequestConflict"));
        let read = mock!(aws_sdk_s3::Client::get_object).then_output(|| {
            GetObjectOutput::builder()
                .e_tag("\"abc\"")
                .body(ByteStream::from(
                    serde_json::to_vec(&holder(now_s())).unwrap(),
                ))
                .build()
        });
        let err = Lock::acquire(
            &store(&[&lost, &read]),
            "pilot",
            "deploy",
            "arn:me",
            Duration::ZERO,
        )
        .await
        .err()
        .expect("the lock is held");
        let text = err.to_string();
        assert!(
            text.contains(
                "is locked by arn:aws:iam::111122223333:user/alice on laptop (deploy, pid 4242)"
            ),
            "{text}"
        );
        assert!(text.contains("--lock-id 0123456789abcdef"), "{text}");
    }

    /// An expired lease is taken over with a write conditional on the ETag
    /// that was read, so two takers cannot both win.
    #[tokio::test]
    async fn an_expired_lease_is_taken_over_on_the_etag_that_was_read() {
        use aws_sdk_s3::operation::get_object::GetObjectOutput;
        use aws_sdk_s3::operation::put_object::PutObjectOutput;
        use aws_smithy_mocks::mock;
        let held = mock!(aws_sdk_s3::Client::put_object)
            .match_requests(|r| r.if_none_match() == Some("*"))
            .then_http_response(|| s3_error(412, "PreconditionFailed"));
        let read = mock!(aws_sdk_s3::Client::get_object).then_output(|| {
            GetObjectOutput::builder()
                .e_tag("\"old\"")
                .body(ByteStream::from(
                    serde_json::to_vec(&holder(1_000)).unwrap(),
                ))
                .build()
        });
        let taken = mock!(aws_sdk_s3::Client::put_object)
            .match_requests(|r| r.if_match() == Some("\"old\""))
            .then_output(|| PutObjectOutput::builder().e_tag("\"new\"").build());
        let lock = Lock::acquire(
            &store(&[&held, &read, &taken]),
            "pilot",
            "deploy",
            "arn:me",
            Duration::ZERO,
        )
        .await
        .unwrap();
        assert_eq!(
            lock.info.took_over.as_ref().unwrap().lock_id,
            "0123456789abcdef"
        );
        assert_eq!(taken.num_calls(), 1);
        lock.renewal.abort();
    }

    /// S3's 409 on a renewal means "another conditional write was in
    /// flight: read and retry", not "lost": the lock is still this run's, so
    /// it keeps its lease with the ETag read back.
    #[tokio::test]
    async fn a_409_on_renewal_is_retried_with_a_fresh_etag() {
        use aws_sdk_s3::operation::get_object::GetObjectOutput;
        use aws_sdk_s3::operation::put_object::PutObjectOutput;
        use aws_smithy_mocks::mock;
        let conflict = mock!(aws_sdk_s3::Client::put_object)
            .match_requests(|r| r.if_match() == Some("\"mine\""))
            .then_http_response(|| s3_error(409, "ConditionalRequestConflict"));
        let read = mock!(aws_sdk_s3::Client::get_object).then_output(|| {
            GetObjectOutput::builder()
                .e_tag("\"fresh\"")
                .body(ByteStream::from(
                    serde_json::to_vec(&holder(now_s())).unwrap(),
                ))
                .build()
        });
        let renewed = mock!(aws_sdk_s3::Client::put_object)
            .match_requests(|r| {
                r.if_match() == Some("\"fresh\"")
                    && r.expected_bucket_owner() == Some("111122223333")
            })
            .then_output(|| PutObjectOutput::builder().e_tag("\"next\"").build());
        let store = store(&[&conflict, &read, &renewed]);
        let etag = Mutex::new("\"mine\"".to_string());
        let mut info = holder(now_s());
        let key = lock_key("pilot");
        assert_eq!(
            renew_once(&store, &key, &mut info, &etag).await,
            Renewal::Again
        );
        assert_eq!(*etag.lock().unwrap(), "\"fresh\"");
        assert_eq!(
            renew_once(&store, &key, &mut info, &etag).await,
            Renewal::Renewed
        );
        assert_eq!(*etag.lock().unwrap(), "\"next\"");
    }

    /// After `poolside unlock`, S3 answers the renewal's If-Match with 404:
    /// the lock is gone, and the run must stop, not renew forever.
    #[tokio::test]
    async fn a_404_on_renewal_means_the_lock_was_removed() {
        use aws_smithy_mocks::mock;
        let gone =
            mock!(aws_sdk_s3::Client::put_object).then_http_response(|| s3_error(404, "NoSuchKey"));
        let store = store(&[&gone]);
        let etag = Mutex::new("\"mine\"".to_string());
        let outcome = renew_once(&store, &lock_key("pilot"), &mut holder(now_s()), &etag).await;
        let Renewal::Lost(why) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(why.contains("was removed"), "{why}");
    }

    /// A renewal refused because another holder took the lock over names it.
    #[tokio::test]
    async fn a_lock_taken_over_is_lost_and_names_the_new_holder() {
        use aws_sdk_s3::operation::get_object::GetObjectOutput;
        use aws_smithy_mocks::mock;
        let refused = mock!(aws_sdk_s3::Client::put_object)
            .then_http_response(|| s3_error(412, "PreconditionFailed"));
        let read = mock!(aws_sdk_s3::Client::get_object).then_output(|| {
            let mut other = holder(now_s());
            other.lock_id = "fedcba9876543210".into();
            other.host = "ci-runner".into();
            GetObjectOutput::builder()
                .e_tag("\"theirs\"")
                .body(ByteStream::from(serde_json::to_vec(&other).unwrap()))
                .build()
        });
        let store = store(&[&refused, &read]);
        let etag = Mutex::new("\"mine\"".to_string());
        let outcome = renew_once(&store, &lock_key("pilot"), &mut holder(now_s()), &etag).await;
        let Renewal::Lost(why) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(
            why.contains("taken over") && why.contains("ci-runner"),
            "{why}"
        );
    }

    /// A state bucket name owned by another account answers 403: the error
    /// says so instead of a bare AccessDenied.
    #[tokio::test]
    async fn a_state_bucket_of_another_account_is_named_as_such() {
        use aws_smithy_mocks::mock;
        let forbidden = mock!(aws_sdk_s3::Client::head_bucket)
            .match_requests(|r| r.expected_bucket_owner() == Some("111122223333"))
            .then_http_response(|| {
                aws_smithy_runtime_api::http::Response::new(
                    aws_smithy_runtime_api::http::StatusCode::try_from(403).unwrap(),
                    aws_smithy_types::body::SdkBody::empty(),
                )
            });
        let err = store(&[&forbidden]).head().await.unwrap_err().to_string();
        assert!(err.contains("belongs to another AWS account"), "{err}");
        assert!(
            err.contains("poolside-state-111122223333-eu-west-1"),
            "{err}"
        );
    }

    #[test]
    fn history_keys_sort_newest_first() {
        let older = history_key("p", 1_700_000_000_000, "a");
        let newer = history_key("p", 1_800_000_000_000, "b");
        assert!(newer < older, "{newer} should sort before {older}");
    }

    #[test]
    fn a_lease_expires_after_its_seconds_without_renewal() {
        let info = LockInfo {
            lock_id: "1".into(),
            environment: "p".into(),
            who: "arn:aws:iam::1:user/a".into(),
            host: "h".into(),
            command: "deploy".into(),
            pid: 1,
            started_at: 1000,
            renewed_at: 1000,
            lease_seconds: 120,
            took_over: None,
            pid_scope: None,
            process_start: None,
        };
        assert!(!info.expired(1120));
        assert!(info.expired(1121));
    }

    #[test]
    fn a_holder_is_gone_at_once_only_where_its_pid_can_be_checked() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut info = holder(now_s());
        info.host = hostname();
        info.pid = child.id();
        info.pid_scope = crate::process::pid_scope();
        info.process_start = crate::process::start_time(child.id());
        assert!(!info.holder_gone_from_this_host(), "it runs");
        // Another machine, container or an older poolside: the lease decides.
        for unknowable in [
            LockInfo {
                host: "another-host".into(),
                ..info.clone()
            },
            LockInfo {
                pid_scope: Some("another-boot/pid:[1]".into()),
                ..info.clone()
            },
            LockInfo {
                pid_scope: None,
                ..info.clone()
            },
        ] {
            child.kill().unwrap_or(());
            assert!(!unknowable.holder_gone_from_this_host(), "{unknowable:?}");
        }
        child.wait().unwrap();
        assert!(info.holder_gone_from_this_host(), "its process is gone");
        // Its pid runs a process that started at another time: gone too.
        info.pid = std::process::id();
        info.process_start = crate::process::start_time(info.pid).map(|t| t + 1);
        assert!(info.holder_gone_from_this_host(), "the pid was reused");
        info.process_start = crate::process::start_time(info.pid);
        assert!(
            !info.holder_gone_from_this_host(),
            "the pid is its holder's"
        );
    }
}
