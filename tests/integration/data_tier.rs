//! The data tier against moto (RDS, Secrets Manager) and a real PostgreSQL
//! with pg_cron and pgvector: the environment's own cluster stands in for its
//! RDS instance, reached through `database.connect_host/connect_port`.

use crate::support::{aws, Env, MASTER_PASSWORD, MASTER_USER};
use serde_json::Value;
use sqlx::{ConnectOptions, Connection, PgConnection, Row};
use std::collections::BTreeMap;

/// The RDS instance as the emulator describes it.
async fn instance(aws: &crate::support::Aws, identifier: &str) -> aws_sdk_rds::types::DbInstance {
    aws.rds
        .describe_db_instances()
        .db_instance_identifier(identifier)
        .send()
        .await
        .unwrap()
        .db_instances()[0]
        .clone()
}

const MIGRATION_FILES: [&str; 5] = [
    "sql/migrations/0001_extensions_and_roles.sql",
    "sql/migrations/0002_tables.sql",
    "sql/migrations/0003_embeddings_and_search.sql",
    "sql/migrations/0004_jobs.sql",
    "sql/migrations/0005_privileges.sql",
];

/// sql/jobs.toml's, and poolside's own retention job (database.cron_history_days, 7 by default).
const JOBS: [(&str, &str, &str); 5] = [
    (
        "process-training-jobs",
        "0 * * * *",
        "SELECT platform.process_training_jobs()",
    ),
    (
        "generate-embeddings",
        "*/30 * * * *",
        "SELECT platform.generate_embeddings()",
    ),
    (
        "cleanup-metrics",
        "0 2 * * *",
        "SELECT platform.cleanup_metrics()",
    ),
    (
        "weekly-fine-tune",
        "0 3 * * 0",
        "SELECT platform.weekly_fine_tune()",
    ),
    (
        "purge-cron-history",
        "30 4 * * *",
        "DELETE FROM cron.job_run_details WHERE end_time < now() - interval '7 days'",
    ),
];

fn files(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| m["file"].as_str().unwrap().to_string())
        .collect()
}

fn job_changes(report: &Value) -> Vec<(String, String)> {
    report["jobs_changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["name"].as_str().unwrap().to_string(),
                j["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Our jobs as pg_cron holds them: name -> (schedule, command, database, active).
async fn cron_jobs(conn: &mut PgConnection) -> BTreeMap<String, (String, String, String, bool)> {
    sqlx::query("SELECT jobname, schedule, command, database, active FROM cron.job WHERE jobname IS NOT NULL")
        .fetch_all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.get::<String, _>("jobname"),
                (r.get("schedule"), r.get("command"), r.get("database"), r.get("active")),
            )
        })
        .collect()
}

async fn secret_value(name: &str) -> String {
    aws()
        .await
        .secrets
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap()
        .to_string()
}

/// Connects as `authenticator` with the password from its secret, as PostgREST does.
async fn as_authenticator(env: &Env) -> PgConnection {
    let login: Value =
        serde_json::from_str(&secret_value(&format!("poolside/{}/authenticator", env.name)).await)
            .unwrap();
    env.postgres
        .options(
            login["username"].as_str().unwrap(),
            login["password"].as_str().unwrap(),
            &env.postgres.database,
        )
        .connect()
        .await
        .expect("authenticator logs in with the password in its secret")
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_from_empty_builds_the_data_tier_and_a_second_deploy_changes_nothing() {
    let mut env = Env::new("data");
    env.write();
    let first = env.deploy();
    let report = first.one("data_tier");
    assert_eq!(report["database_created"], true, "{report}");
    assert_eq!(files(&report["migrations_applied"]), MIGRATION_FILES);
    // Migrations ran: PostgREST is told to reload its schema cache.
    assert_eq!(report["schema_reloaded"], true);
    assert_eq!(report["authenticator_password_set"], true);
    assert_eq!(
        job_changes(&report),
        JOBS.iter()
            .map(|(name, _, _)| (name.to_string(), "scheduled".to_string()))
            .collect::<Vec<_>>()
    );

    // RDS, as moto reports it.
    let aws = aws().await;
    let identifier = format!("poolside-{}", env.name);
    let db = instance(&aws, &identifier).await;
    assert_eq!(db.engine(), Some("postgres"));
    // The default is a major version; moto cannot list minors, so it gets "16".
    assert_eq!(db.engine_version(), Some("16"));
    assert_eq!(db.db_instance_class(), Some("db.t4g.medium"));
    assert_eq!(db.allocated_storage(), Some(20));
    assert_eq!(db.storage_encrypted(), Some(true));
    assert_eq!(db.publicly_accessible(), Some(false));
    assert_eq!(db.multi_az(), Some(false));
    assert_eq!(db.backup_retention_period(), Some(7));
    // The windows are the file's defaults, not RDS's random choice.
    assert_eq!(
        db.preferred_maintenance_window(),
        Some("sun:05:00-sun:06:00")
    );
    assert_eq!(db.preferred_backup_window(), Some("03:00-04:00"));
    assert_eq!(db.deletion_protection(), Some(false));
    assert_eq!(db.db_name(), Some(env.postgres.database.as_str()));
    assert_eq!(db.master_username(), Some("poolside_admin"));
    let master_secret = db
        .master_user_secret()
        .and_then(|s| s.secret_arn())
        .unwrap();
    assert!(
        master_secret.contains(":secretsmanager:"),
        "{master_secret}"
    );
    let group = db.db_parameter_groups()[0]
        .db_parameter_group_name()
        .unwrap();
    assert_eq!(group, format!("poolside-{}-postgres16", env.name));
    let database_sg = aws
        .ec2
        .describe_security_groups()
        .filters(crate::support::env_filter(&env.name))
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:poolside:id")
                .values("sg/database")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .security_groups()[0]
        .group_id()
        .unwrap()
        .to_string();
    let db_sgs: Vec<&str> = db
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .collect();
    assert_eq!(db_sgs, [database_sg.as_str()]);
    let tags: BTreeMap<&str, &str> = db
        .tag_list()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert_eq!(tags.get("poolside:env"), Some(&env.name.as_str()));
    assert_eq!(tags.get("poolside:id"), Some(&"db-instance/main"));

    let subnet_group = aws
        .rds
        .describe_db_subnet_groups()
        .db_subnet_group_name(&identifier)
        .send()
        .await
        .unwrap()
        .db_subnet_groups()[0]
        .clone();
    let mut group_subnets: Vec<String> = subnet_group
        .subnets()
        .iter()
        .map(|s| s.subnet_identifier().unwrap().to_string())
        .collect();
    group_subnets.sort();
    let outputs = first.one("outputs");
    let mut private: Vec<String> = outputs["private_subnet_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    private.sort();
    assert_eq!(group_subnets, private);

    let parameters: BTreeMap<String, String> = aws
        .rds
        .describe_db_parameters()
        .db_parameter_group_name(group)
        .source("user")
        .send()
        .await
        .unwrap()
        .parameters()
        .iter()
        .map(|p| {
            (
                p.parameter_name().unwrap().to_string(),
                p.parameter_value().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        parameters["shared_preload_libraries"],
        "pg_stat_statements,pg_cron"
    );
    assert!(
        !parameters.contains_key("cron.use_background_workers"),
        "RDS refuses to modify cron.use_background_workers"
    );
    assert_eq!(parameters["cron.database_name"], env.postgres.database);
    assert_eq!(parameters["rds.force_ssl"], "1");

    // The secrets: generated, referenced by ARN, never printed.
    let authenticator = secret_value(&format!("poolside/{}/authenticator", env.name)).await;
    let login: Value = serde_json::from_str(&authenticator).unwrap();
    assert_eq!(login["username"], "authenticator");
    let password = login["password"].as_str().unwrap();
    assert_eq!(password.len(), 64);
    let jwt = secret_value(&format!("poolside/{}/jwt", env.name)).await;
    assert_eq!(jwt.len(), 64);
    assert_ne!(jwt, password);
    let printed = format!("{}{}", first.stdout(), first.stderr());
    for secret in [password, jwt.as_str(), MASTER_PASSWORD] {
        assert!(!printed.contains(secret), "a secret value was printed");
    }
    assert!(outputs["jwt_secret_arn"]
        .as_str()
        .unwrap()
        .contains(":secret:"));
    assert!(outputs["authenticator_secret_arn"]
        .as_str()
        .unwrap()
        .contains(":secret:"));

    // Inside the database: the ledger, the jobs, the authenticator's login.
    let mut master = env.postgres.master().await;
    let ledger: Vec<(i64, String, bool)> = sqlx::query_as(
        "SELECT version, description, success FROM _sqlx_migrations ORDER BY version",
    )
    .fetch_all(&mut master)
    .await
    .unwrap();
    assert_eq!(
        ledger,
        [
            (1, "extensions_and_roles".to_string(), true),
            (2, "tables".to_string(), true),
            (3, "embeddings_and_search".to_string(), true),
            (4, "jobs".to_string(), true),
            (5, "privileges".to_string(), true),
        ]
    );
    let jobs = cron_jobs(&mut master).await;
    let expected: BTreeMap<String, (String, String, String, bool)> = JOBS
        .iter()
        .map(|(name, schedule, command)| {
            (
                name.to_string(),
                (
                    schedule.to_string(),
                    command.to_string(),
                    env.postgres.database.clone(),
                    true,
                ),
            )
        })
        .collect();
    assert_eq!(jobs, expected);
    let extensions: Vec<String> =
        sqlx::query_scalar("SELECT extname::text FROM pg_extension ORDER BY 1")
            .fetch_all(&mut master)
            .await
            .unwrap();
    assert!(
        extensions.contains(&"vector".to_string()) && extensions.contains(&"pg_cron".to_string())
    );
    as_authenticator(&env).await.close().await.unwrap();

    // Again: nothing to do, in AWS or in the database.
    let second = env.deploy();
    assert_eq!(second.mutating_calls(), 0, "{}", second.stdout());
    let report = second.one("data_tier");
    assert_eq!(report["database_created"], false);
    assert_eq!(files(&report["migrations_applied"]), Vec::<String>::new());
    assert_eq!(report["schema_reloaded"], false);
    assert_eq!(report["authenticator_password_set"], false);
    assert_eq!(job_changes(&report), vec![]);
    assert_eq!(cron_jobs(&mut master).await, expected);
    // Each read once: the schema step, the local PostgREST and verification
    // reuse what discovery read (measured before: 2, 2, 2 and 4 calls), and
    // a secret is read once (the master login, the authenticator's, the JWT key).
    for (service, operation, once) in [
        ("RDS", "DescribeDBInstances", 1),
        ("ECS", "DescribeServices", 1),
        ("CloudWatch", "DescribeAlarms", 1),
        ("Secrets Manager", "GetSecretValue", 3),
    ] {
        assert_eq!(second.calls_of(service, operation), once, "{operation}");
    }

    // New windows are an in-place change of the instance, planned as such.
    env.database_extra =
        "maintenance_window = \"Sat:22:00-Sat:23:00\"\nbackup_window = \"01:00-01:30\"\n".into();
    env.write();
    let planned = env.plan();
    planned.assert_code(2);
    let plan = planned.one("plan");
    let changes = plan["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{plan}");
    assert_eq!(changes[0]["id"], "db-instance/main");
    assert_eq!(changes[0]["action"], "update");
    let changed: Vec<(&str, &str)> = changes[0]["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["property"].as_str().unwrap(),
                p["after"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        changed,
        [
            ("backup_window", "01:00-01:30"),
            ("maintenance_window", "sat:22:00-sat:23:00")
        ]
    );
    env.deploy();
    let db = instance(&aws, &identifier).await;
    assert_eq!(
        db.preferred_maintenance_window(),
        Some("sat:22:00-sat:23:00")
    );
    assert_eq!(db.preferred_backup_window(), Some("01:00-01:30"));
    env.plan().assert_code(0);

    // A window that includes the moment of the plan: RDS applies what it
    // has pending at once, which plan says.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let at = |secs: u64| {
        let day = ["thu", "fri", "sat", "sun", "mon", "tue", "wed"][((secs / 86_400) % 7) as usize];
        let minutes = (secs % 86_400) / 60;
        format!("{day}:{:02}:{:02}", minutes / 60, minutes % 60)
    };
    let backup_hour = ((now % 86_400) / 3600 + 12) % 24;
    env.database_extra = format!(
        "maintenance_window = \"{}-{}\"\nbackup_window = \"{backup_hour:02}:00-{backup_hour:02}:30\"\n",
        at(now - 600),
        at(now + 3000)
    );
    env.write();
    let planned = env.plan();
    planned.assert_code(2);
    let warnings = planned.one("plan")["warnings"].to_string();
    assert!(warnings.contains("includes the current time"), "{warnings}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hand_changed_schedule_is_restored_and_other_peoples_jobs_are_left_alone() {
    let env = Env::new("cron");
    env.write();
    env.deploy();
    let mut master = env.postgres.master().await;
    // By hand: one of ours rescheduled and paused, a job of someone else's,
    // and a job poolside scheduled once that is no longer declared.
    sqlx::query("SELECT cron.alter_job((SELECT jobid FROM cron.job WHERE jobname = 'cleanup-metrics'), schedule => '15 4 * * *', active => false)")
        .execute(&mut master)
        .await
        .unwrap();
    sqlx::query("SELECT cron.schedule('someone-elses', '0 5 * * *', 'SELECT 1')")
        .execute(&mut master)
        .await
        .unwrap();
    sqlx::query("SELECT cron.schedule('retired-job', '0 6 * * *', 'SELECT 2')")
        .execute(&mut master)
        .await
        .unwrap();
    sqlx::query("INSERT INTO platform.scheduled_jobs (name) VALUES ('retired-job')")
        .execute(&mut master)
        .await
        .unwrap();

    let run = env.deploy();
    let mut changes = job_changes(&run.one("data_tier"));
    changes.sort();
    assert_eq!(
        changes,
        [
            ("cleanup-metrics".to_string(), "corrected".to_string()),
            ("retired-job".to_string(), "unscheduled".to_string()),
        ]
    );
    let jobs = cron_jobs(&mut master).await;
    let cleanup = &jobs["cleanup-metrics"];
    assert_eq!((cleanup.0.as_str(), cleanup.3), ("0 2 * * *", true));
    assert!(!jobs.contains_key("retired-job"));
    assert_eq!(
        jobs["someone-elses"].0, "0 5 * * *",
        "a foreign job was touched"
    );
    let owned: Vec<String> =
        sqlx::query_scalar("SELECT name FROM platform.scheduled_jobs ORDER BY 1")
            .fetch_all(&mut master)
            .await
            .unwrap();
    assert_eq!(owned.len(), JOBS.len(), "{owned:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migration_changed_after_it_was_applied_is_refused_by_name() {
    let env = Env::new("edit");
    env.write();
    env.deploy();
    let mut master = env.postgres.master().await;
    // What an edited file looks like to the ledger: a different checksum.
    sqlx::query("UPDATE _sqlx_migrations SET checksum = sha384('edited') WHERE version = 3")
        .execute(&mut master)
        .await
        .unwrap();
    let run = env.poolside(&["deploy", "--env", &env.name, "--yes", "--output", "json"]);
    run.assert_code(1);
    let stderr = run.stderr();
    assert!(
        stderr.contains(
            "sql/migrations/0003_embeddings_and_search.sql was changed after it was applied"
        ),
        "{stderr}"
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&mut master)
        .await
        .unwrap();
    assert_eq!(count, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_migration_leaves_the_database_and_the_ledger_as_they_were() {
    let env = Env::new("fail");
    env.write();
    // The database exists with a table that migration 0002 is about to create,
    // so 0002 fails partway (after creating its first tables).
    {
        let mut admin = env
            .postgres
            .options(MASTER_USER, MASTER_PASSWORD, "postgres")
            .connect()
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {}", env.postgres.database))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    let mut master = env.postgres.master().await;
    sqlx::raw_sql("CREATE SCHEMA api; CREATE TABLE api.training_jobs (id int)")
        .execute(&mut master)
        .await
        .unwrap();

    let run = env.poolside(&["deploy", "--env", &env.name, "--yes", "--output", "json"]);
    run.assert_code(1);
    let stderr = run.stderr();
    assert!(
        stderr.contains("sql/migrations/0002_tables.sql failed and was rolled back"),
        "{stderr}"
    );
    assert!(
        stderr.contains("relation \"training_jobs\" already exists"),
        "{stderr}"
    );
    let ledger: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY 1")
        .fetch_all(&mut master)
        .await
        .unwrap();
    assert_eq!(ledger, [1], "only 0001 is recorded");
    // 0002 created api.messages before it failed; the rollback took it away.
    let messages: Option<String> = sqlx::query_scalar("SELECT to_regclass('api.messages')::text")
        .fetch_one(&mut master)
        .await
        .unwrap();
    assert_eq!(messages, None);

    // With the obstacle gone, the next deploy carries on from 0002.
    sqlx::query("DROP TABLE api.training_jobs")
        .execute(&mut master)
        .await
        .unwrap();
    let run = env.deploy();
    assert_eq!(
        files(&run.one("data_tier")["migrations_applied"]),
        MIGRATION_FILES[1..]
    );
}

/// Runs `sql` as `role` inside a transaction that is rolled back, the way
/// PostgREST runs a request: as authenticator, `SET LOCAL ROLE`, with claims.
async fn as_role(
    conn: &mut PgConnection,
    role: &str,
    subject: Option<&str>,
    sql: &str,
) -> Result<(), String> {
    let mut tx = conn.begin().await.unwrap();
    sqlx::query(&format!("SET LOCAL ROLE {role}"))
        .execute(&mut *tx)
        .await
        .unwrap();
    if let Some(subject) = subject {
        sqlx::query("SELECT set_config('request.jwt.claims', $1, true)")
            .bind(format!(r#"{{"sub":"{subject}","role":"{role}"}}"#))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let result = sqlx::query(sql)
        .execute(&mut *tx)
        .await
        .map(drop)
        .map_err(|e| e.to_string());
    tx.rollback().await.unwrap();
    result
}

#[tokio::test(flavor = "multi_thread")]
async fn the_privilege_matrix_holds_role_by_role() {
    let env = Env::new("roles");
    env.write();
    env.deploy();
    let mut master = env.postgres.master().await;
    sqlx::query("INSERT INTO api.conversations (owner, prompt, response, quality) VALUES ('bob', 'p', 'r', 0.9)")
        .execute(&mut master)
        .await
        .unwrap();
    sqlx::query("INSERT INTO api.messages (author, content) VALUES ('bob', 'from bob')")
        .execute(&mut master)
        .await
        .unwrap();
    let mut conn = as_authenticator(&env).await;

    // authenticator itself: nothing.
    let own = sqlx::query("SELECT * FROM api.messages")
        .execute(&mut conn)
        .await;
    assert!(
        own.is_err(),
        "authenticator must have no privileges of its own"
    );

    let allowed = [
        ("web_anon", "SELECT api.hello()"),
        ("api_user", "SELECT api.hello()"),
        ("api_user", "SELECT * FROM api.messages"),
        (
            "api_user",
            "INSERT INTO api.messages (content) VALUES ('hi')",
        ),
        ("api_user", "SELECT * FROM api.conversations"),
        (
            "api_user",
            "INSERT INTO api.conversations (prompt, response, quality) VALUES ('p', 'r', 0.8)",
        ),
        (
            "api_user",
            "INSERT INTO api.rag_documents (title, content) VALUES ('t', 'c')",
        ),
        ("api_user", "SELECT * FROM api.rag_documents"),
        (
            "api_user",
            "SELECT * FROM api.search_documents('anything', 3)",
        ),
        ("api_user", "SELECT * FROM api.schedule_training()"),
        ("api_user", "SELECT * FROM api.training_jobs"),
        ("api_user", "SELECT * FROM api.model_metrics"),
    ];
    let denied = [
        ("web_anon", "SELECT * FROM api.messages"),
        (
            "web_anon",
            "INSERT INTO api.messages (content) VALUES ('hi')",
        ),
        ("web_anon", "SELECT * FROM api.rag_documents"),
        ("web_anon", "SELECT * FROM api.search_documents('x', 1)"),
        ("web_anon", "SELECT * FROM api.schedule_training()"),
        ("web_anon", "SELECT * FROM api.training_jobs"),
        ("web_anon", "SELECT * FROM api.model_metrics"),
        (
            "api_user",
            "INSERT INTO api.training_jobs (base_model, min_quality) VALUES ('m', 0.5)",
        ),
        (
            "api_user",
            "UPDATE api.training_jobs SET state = 'failed', error = 'x', finished_at = now()",
        ),
        (
            "api_user",
            "INSERT INTO api.model_metrics (name, value) VALUES ('m', 1)",
        ),
        ("api_user", "DELETE FROM api.model_metrics"),
        ("api_user", "SELECT platform.process_training_jobs()"),
        ("api_user", "SELECT platform.generate_embeddings()"),
        ("api_user", "SELECT * FROM platform.training_examples"),
        (
            "api_user",
            "INSERT INTO api.messages (author, content) VALUES ('mallory', 'forged')",
        ),
        ("api_user", "SELECT * FROM cron.job"),
    ];
    let mut failures = Vec::new();
    for (role, sql) in allowed {
        if let Err(e) = as_role(&mut conn, role, Some("alice"), sql).await {
            failures.push(format!("{role} should be allowed `{sql}`: {e}"));
        }
    }
    for (role, sql) in denied {
        if as_role(&mut conn, role, Some("alice"), sql).await.is_ok() {
            failures.push(format!("{role} must be denied `{sql}`"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Row-level security: alice sees no conversation of bob's and cannot change his message.
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE api_user")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(r#"SELECT set_config('request.jwt.claims', '{"sub":"alice"}', true)"#)
        .execute(&mut *tx)
        .await
        .unwrap();
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM api.conversations")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(visible, 0, "alice must not see bob's conversations");
    let changed = sqlx::query("UPDATE api.messages SET content = 'edited' WHERE author = 'bob'")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 0, "alice must not change bob's message");
    let job: (String, String) =
        sqlx::query_as("SELECT state::text, requested_by FROM api.schedule_training('m', 0.5)")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(job, ("pending".to_string(), "alice".to_string()));
    tx.rollback().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn search_ranks_the_document_sharing_the_query_words_first_through_the_hnsw_index() {
    let env = Env::new("search");
    env.write();
    env.deploy();
    let mut db = env.postgres.master().await;
    sqlx::query(
        "INSERT INTO api.rag_documents (title, content, source) VALUES
           ('Borrow checker', 'Rust ownership, borrowing and lifetimes explained', 'docs'),
           ('Autovacuum', 'Tuning autovacuum for large PostgreSQL tables', 'wiki'),
           ('Pod scheduling', 'How Kubernetes schedules pods onto nodes', 'k8s'),
           ('Release notes', 'What changed in the last release of the assistant', 'blog')",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let embedded: i32 = sqlx::query_scalar("SELECT platform.generate_embeddings()")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(embedded, 4);

    for (query, expected) in [
        (
            "how do lifetimes and borrowing work in rust",
            "Borrow checker",
        ),
        ("autovacuum tuning", "Autovacuum"),
        ("kubernetes pods", "Pod scheduling"),
    ] {
        let rows: Vec<(String, f64)> =
            sqlx::query_as("SELECT title, similarity FROM api.search_documents($1, 3)")
                .bind(query)
                .fetch_all(&mut db)
                .await
                .unwrap();
        assert_eq!(rows[0].0, expected, "{query}: {rows:?}");
        assert!(rows[0].1 > rows[1].1, "{query}: {rows:?}");
    }

    // The function is inlined, so its ORDER BY ... LIMIT can use the index.
    // With four rows a sequential scan is cheaper; take that choice away.
    let mut tx = db.begin().await.unwrap();
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .unwrap();
    let plan: Vec<String> =
        sqlx::query_scalar("EXPLAIN SELECT * FROM api.search_documents('autovacuum tuning', 3)")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    tx.rollback().await.unwrap();
    let plan = plan.join("\n");
    assert!(
        plan.contains("Index Scan using rag_documents_embedding_hnsw"),
        "{plan}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_job_function_does_its_work() {
    let env = Env::new("jobs");
    env.write();
    env.deploy();
    let mut db = env.postgres.master().await;

    // generate_embeddings: only documents without one, in batches.
    sqlx::query("INSERT INTO api.rag_documents (title, content) SELECT 'doc ' || i, 'text number ' || i FROM generate_series(1, 5) AS i")
        .execute(&mut db)
        .await
        .unwrap();
    let first: i32 = sqlx::query_scalar("SELECT platform.generate_embeddings(3)")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let second: i32 = sqlx::query_scalar("SELECT platform.generate_embeddings(3)")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let third: i32 = sqlx::query_scalar("SELECT platform.generate_embeddings(3)")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!((first, second, third), (3, 2, 0));
    let missing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api.rag_documents WHERE embedding IS NULL OR embedded_at IS NULL",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(missing, 0);
    // A changed text is embedded again.
    sqlx::query("UPDATE api.rag_documents SET content = 'rewritten' WHERE title = 'doc 1'")
        .execute(&mut db)
        .await
        .unwrap();
    let again: i32 = sqlx::query_scalar("SELECT platform.generate_embeddings()")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(again, 1);

    // process_training_jobs: one job that finds data, one that cannot.
    sqlx::query(
        "INSERT INTO api.conversations (owner, prompt, response, quality) VALUES
           ('a', 'how to sort', 'use sort', 0.9),
           ('a', 'what is rust', 'a language', 0.8),
           ('b', 'bad answer', 'nonsense', 0.2)",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let good: i64 = sqlx::query_scalar("SELECT id FROM api.schedule_training('base', 0.7)")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let hopeless: i64 = sqlx::query_scalar("SELECT id FROM api.schedule_training('base', 0.95)")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let processed: i32 = sqlx::query_scalar("SELECT platform.process_training_jobs()")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(processed, 2);
    let states: Vec<(i64, String, Option<String>, bool, bool)> = sqlx::query_as(
        "SELECT id, state::text, error, started_at IS NOT NULL, finished_at IS NOT NULL FROM api.training_jobs ORDER BY id",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(states[0], (good, "succeeded".into(), None, true, true));
    assert_eq!(states[1].0, hopeless);
    assert_eq!(states[1].1, "failed");
    assert!(
        states[1]
            .2
            .as_deref()
            .unwrap()
            .contains("no conversations with quality >= 0.95"),
        "{states:?}"
    );
    let examples: i64 =
        sqlx::query_scalar("SELECT count(*) FROM platform.training_examples WHERE job_id = $1")
            .bind(good)
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(examples, 2);
    let metrics: BTreeMap<String, f64> = sqlx::query_as::<_, (String, f64)>(
        "SELECT name, value FROM api.model_metrics WHERE job_id = $1",
    )
    .bind(good)
    .fetch_all(&mut db)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(metrics["dataset_examples"], 2.0);
    assert!(
        (metrics["dataset_mean_quality"] - 0.85).abs() < 1e-6,
        "{metrics:?}"
    );
    assert_eq!(metrics["dataset_words"], 10.0);
    let failed_metrics: i64 =
        sqlx::query_scalar("SELECT count(*) FROM api.model_metrics WHERE job_id = $1")
            .bind(hopeless)
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(failed_metrics, 0, "a failed job leaves no metrics");
    let idle: i32 = sqlx::query_scalar("SELECT platform.process_training_jobs()")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(idle, 0);

    // cleanup_metrics: only what is older than the retention period.
    sqlx::query("INSERT INTO api.model_metrics (name, value, recorded_at) VALUES ('old', 1, now() - interval '100 days'), ('recent', 2, now() - interval '10 days')")
        .execute(&mut db)
        .await
        .unwrap();
    let deleted: i32 = sqlx::query_scalar("SELECT platform.cleanup_metrics()")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM api.model_metrics WHERE job_id IS NULL")
            .fetch_all(&mut db)
            .await
            .unwrap();
    assert_eq!(names, ["recent"]);

    // weekly_fine_tune: queues only when enough good conversations are new.
    let none: Option<i64> = sqlx::query_scalar("SELECT platform.weekly_fine_tune(2)")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(none, None, "no conversation arrived since the last job");
    sqlx::query("INSERT INTO api.conversations (owner, prompt, response, quality) VALUES ('a', 'q1', 'a1', 0.9), ('b', 'q2', 'a2', 0.75), ('c', 'q3', 'a3', 0.1)")
        .execute(&mut db)
        .await
        .unwrap();
    let too_few: Option<i64> = sqlx::query_scalar("SELECT platform.weekly_fine_tune(3)")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(
        too_few, None,
        "only two of the three new ones are good enough"
    );
    let queued: Option<i64> = sqlx::query_scalar("SELECT platform.weekly_fine_tune(2)")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let queued = queued.expect("two good new conversations are enough");
    let state: (String, String) =
        sqlx::query_as("SELECT state::text, requested_by FROM api.training_jobs WHERE id = $1")
            .bind(queued)
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(state, ("pending".into(), "weekly-fine-tune".into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_cron_really_runs_a_job_in_the_app_database() {
    let env = Env::new("tick");
    env.write();
    env.deploy();
    let mut db = env.postgres.master().await;
    sqlx::query(
        "INSERT INTO api.rag_documents (title, content) VALUES ('tick', 'embedded by pg_cron')",
    )
    .execute(&mut db)
    .await
    .unwrap();
    // Our generate-embeddings job, moved to every minute (the next deploy would put it back).
    sqlx::query("SELECT cron.alter_job((SELECT jobid FROM cron.job WHERE jobname = 'generate-embeddings'), schedule => '* * * * *')")
        .execute(&mut db)
        .await
        .unwrap();
    // pg_cron has minute granularity: the run comes within about a minute.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(150);
    let run = loop {
        let run: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT d.status, d.return_message FROM cron.job_run_details d JOIN cron.job j USING (jobid)
             WHERE j.jobname = 'generate-embeddings' AND d.status IN ('succeeded', 'failed')
             ORDER BY d.runid DESC LIMIT 1",
        )
        .fetch_optional(&mut db)
        .await
        .unwrap();
        if let Some(run) = run {
            break run;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pg_cron did not run the job within 150 s"
        );
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    };
    assert_eq!(run.0, "succeeded", "{run:?}");
    let embedded: bool = sqlx::query_scalar(
        "SELECT embedding IS NOT NULL FROM api.rag_documents WHERE title = 'tick'",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert!(embedded, "the scheduled run embedded the document");
    let status = env.poolside(&["status", "--env", &env.name, "--output", "json"]);
    let jobs = status.one("status")["jobs"].clone();
    let ran = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "generate-embeddings")
        .unwrap_or_else(|| panic!("{jobs}"));
    assert_eq!(ran["last_status"], "succeeded", "{ran}");
    assert_eq!(status.one("status")["jobs_scheduler_running"], true);
    assert_eq!(ran["failed_last_day"], 0, "{ran}");

    // Broken by hand: its next run fails. status names it with pg_cron's
    // error, and a promotion does not move on from it.
    sqlx::query("SELECT cron.alter_job((SELECT jobid FROM cron.job WHERE jobname = 'generate-embeddings'), command => 'SELECT 1/0')")
        .execute(&mut db)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(150);
    while sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
         WHERE j.jobname = 'generate-embeddings' AND d.status = 'failed'",
    )
    .fetch_one(&mut db)
    .await
    .unwrap()
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "pg_cron did not run the broken job within 150 s"
        );
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
    let status = env.poolside(&["status", "--env", &env.name, "--output", "json"]);
    let jobs = status.one("status")["jobs"].clone();
    let failed = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "generate-embeddings")
        .unwrap();
    assert_eq!(failed["last_status"], "failed", "{failed}");
    assert_eq!(failed["failed_last_day"], 1, "{failed}");
    assert!(
        failed["last_message"]
            .as_str()
            .unwrap()
            .contains("division by zero"),
        "{failed}"
    );
    let human = env.poolside(&["status", "--env", &env.name]);
    assert!(
        human
            .stdout()
            .contains("1 failing: generate-embeddings failed at"),
        "{}",
        human.stdout()
    );
    let gated = env.poolside(&[
        "promote",
        "--env",
        &env.name,
        "--to",
        "limited",
        "--bake",
        "0s",
        "--dry-run",
        "--output",
        "json",
    ]);
    gated.assert_code(1);
    let gates = gated.one("gates");
    let jobs_gate = gates["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "jobs")
        .unwrap_or_else(|| panic!("{gates}"))
        .clone();
    assert_eq!(jobs_gate["outcome"], "failed", "{jobs_gate}");
    assert!(
        jobs_gate["detail"]
            .as_str()
            .unwrap()
            .contains("generate-embeddings failed at"),
        "{jobs_gate}"
    );
    // A look whose gates fail is recorded as a look, with what failed.
    let history = env.poolside(&[
        "history", "--env", &env.name, "--output", "json", "--limit", "1",
    ]);
    let looked = history.one("run");
    assert_eq!(looked["result"], "dry_run", "{looked}");
    assert!(
        looked["error"]
            .as_str()
            .unwrap_or_default()
            .contains("gates failed"),
        "{looked}"
    );

    // drift tells the same story: the failed run is a finding deploy does
    // not repair, with what to do; status counts it among its differences.
    let drifted = env.poolside(&["drift", "--env", &env.name, "--output", "json"]);
    drifted.assert_code(2);
    let findings = drifted.json("finding");
    let failed_run = findings
        .iter()
        .find(|f| f["resource"] == "cron-job/generate-embeddings" && f["attribute"] == "last run")
        .unwrap_or_else(|| panic!("{findings:?}"));
    assert!(
        failed_run["actual"]
            .as_str()
            .unwrap()
            .contains("division by zero"),
        "{failed_run}"
    );
    assert!(
        failed_run["remedy"]
            .as_str()
            .unwrap()
            .contains("next run succeeds"),
        "{failed_run}"
    );
    assert_eq!(status.one("status")["in_sync"], false);

    // deploy puts the job's command back: its failed run ran a command it
    // no longer has, so status, drift and the jobs gate stop counting it,
    // before the job next runs.
    env.deploy();
    let status = env.poolside(&["status", "--env", &env.name, "--output", "json"]);
    let status = status.one("status");
    let corrected = status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "generate-embeddings")
        .unwrap()
        .clone();
    assert_eq!(
        (
            corrected["last_status"].as_str(),
            corrected["last_run_superseded"].as_bool()
        ),
        (Some("failed"), Some(true)),
        "{corrected}"
    );
    let findings = env
        .poolside(&["drift", "--env", &env.name, "--output", "json"])
        .json("finding");
    assert!(
        !findings.iter().any(|f| f["attribute"] == "last run"),
        "{findings:?}"
    );

    // A job paused by hand: status says so, as plan and drift do.
    sqlx::query("SELECT cron.alter_job((SELECT jobid FROM cron.job WHERE jobname = 'generate-embeddings'), active => false)")
        .execute(&mut db)
        .await
        .unwrap();
    let human = env.poolside(&["status", "--env", &env.name]);
    assert!(
        human
            .stdout()
            .contains("paused: generate-embeddings (a deploy resumes it)"),
        "{}",
        human.stdout()
    );
}

/// Roles are server-wide: a second environment pointed at the PostgreSQL
/// that stands in for another's RDS instance (here even at the same
/// database name) is refused before it changes anything there, and the first
/// keeps its authenticator login. Once the first is destroyed, the server is
/// free for the second (pg_cron serves one database per server, so the
/// second uses the name the server's pg_cron was started for).
#[tokio::test(flavor = "multi_thread")]
async fn a_second_environment_on_one_local_postgres_is_refused_until_the_first_is_gone() {
    let first = Env::new("share-a");
    first.write();
    first.deploy();
    let second = Env::new("share-b");
    second.write();
    let text = std::fs::read_to_string(second.file())
        .unwrap()
        .replace(
            &format!("connect_port = {}", second.postgres.port),
            &format!("connect_port = {}", first.postgres.port),
        )
        .replace(
            &format!("name = \"{}\"", second.postgres.database),
            &format!("name = \"{}\"", first.postgres.database),
        );
    std::fs::write(second.file(), text).unwrap();

    let refused = second.poolside(&["deploy", "--env", &second.name, "--yes"]);
    refused.assert_code(1);
    let stderr = refused.stderr();
    assert!(
        stderr.contains(&format!(
            "already stands in for environment `{}`'s RDS instance",
            first.name
        )),
        "{stderr}"
    );
    // Without the refusal, the second deploy would have reset this password.
    as_authenticator(&first).await;

    // validate says so before anything runs, for files in one directory.
    std::fs::copy(
        second.file(),
        first.dir().join(format!("{}.toml", second.name)),
    )
    .unwrap();
    let validate = first.poolside(&["validate", "--env", &second.name]);
    validate.assert_code(0);
    assert!(
        validate.stderr().contains(&format!(
            "{}.toml also uses the PostgreSQL at 127.0.0.1:{}",
            first.name, first.postgres.port
        )),
        "{}",
        validate.stderr()
    );
    std::fs::remove_file(first.dir().join(format!("{}.toml", second.name))).unwrap();

    first
        .poolside(&["destroy", "--env", &first.name, "--yes", "--delete-data"])
        .assert_code(0);
    second
        .poolside(&["deploy", "--env", &second.name, "--yes"])
        .assert_code(0);
}

/// `database.snapshot_before_changes` (on by default in full): a change of
/// the instance class is planned with the snapshot deploy takes first, and
/// the snapshot is there, available and listed, once the class changed.
#[tokio::test]
async fn a_class_change_takes_a_snapshot_first_when_asked() {
    let mut env = Env::new("snapfirst");
    env.database_extra = "snapshot_before_changes = true\n".into();
    env.write();
    env.deploy();
    env.database_extra =
        "snapshot_before_changes = true\ninstance_class = \"db.t4g.large\"\n".into();
    env.write();
    let planned = env.plan();
    planned.assert_code(2);
    let warnings = planned.one("plan")["warnings"].to_string();
    assert!(
        warnings.contains("the instance-class change is applied at once and restarts the instance")
            && warnings.contains("deploy first takes a manual snapshot"),
        "{warnings}"
    );
    env.deploy();
    let aws = aws().await;
    let identifier = format!("poolside-{}", env.name);
    let db = instance(&aws, &identifier).await;
    assert_eq!(db.db_instance_class(), Some("db.t4g.large"));
    let listed = env.poolside(&["snapshots", "--env", &env.name, "--output", "json"]);
    listed.assert_code(0);
    let before: Vec<Value> = listed
        .json("snapshot")
        .into_iter()
        .filter(|s| s["taken_before"] == "instance-class")
        .collect();
    assert_eq!(before.len(), 1, "{}", listed.stdout());
    assert_eq!(before[0]["status"], "available", "{}", listed.stdout());
    assert!(before[0]["identifier"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{identifier}-before-instance-class-")));
    env.plan().assert_code(0);
}
