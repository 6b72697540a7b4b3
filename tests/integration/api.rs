//! The API table of the design, over HTTP, against the PostgREST that deploy
//! started from the registered task definition: anonymous where the privilege
//! matrix allows it, with tokens from `poolside token` otherwise, and refused
//! where the matrix forbids it.

use crate::support::*;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

struct Api {
    base: String,
    http: Client,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("Prefer", "return=representation");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }
}

fn token(env: &Env, subject: &str) -> String {
    let run = env.poolside(&[
        "token",
        "--env",
        &env.name,
        "--role",
        "api_user",
        "--ttl",
        "1h",
        "--subject",
        subject,
    ]);
    run.assert_code(0);
    run.stdout().trim().to_string()
}

#[tokio::test]
async fn the_api_table_answers_over_http_as_the_privilege_matrix_says() {
    let env = Env::new("api");
    env.write();
    let run = env.deploy();
    let api = Api {
        base: run.one("outputs")["api_url"].as_str().unwrap().to_string(),
        http: Client::new(),
    };
    let alice = token(&env, "alice");
    let bob = token(&env, "bob");

    // Anonymous: hello only.
    assert_eq!(
        api.get("/rpc/hello", None).await,
        (StatusCode::OK, json!("hello world"))
    );
    for path in [
        "/messages",
        "/rag_documents",
        "/conversations",
        "/training_jobs",
        "/model_metrics",
    ] {
        let (status, _) = api.get(path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "anonymous GET {path}");
    }
    for (path, body) in [
        ("/messages", json!({"content": "anonymous"})),
        ("/rag_documents", json!({"title": "t", "content": "c"})),
        ("/conversations", json!({"prompt": "p", "response": "r"})),
        ("/rpc/search_documents", json!({"query": "rust"})),
        ("/rpc/schedule_training", json!({})),
    ] {
        let (status, _) = api.post(path, None, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "anonymous POST {path}");
    }

    // A token signed with another key is refused.
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"role": "api_user", "sub": "mallory", "exp": 4_000_000_000u64}),
        &jsonwebtoken::EncodingKey::from_secret(
            b"not-the-environments-secret-not-the-environments",
        ),
    )
    .unwrap();
    let (status, _) = api.get("/messages", Some(&forged)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Messages: everyone with a token reads all, writes as themselves.
    assert_eq!(api.get("/rpc/hello", Some(&alice)).await.0, StatusCode::OK);
    let (status, created) = api
        .post(
            "/messages",
            Some(&alice),
            json!({"content": "hello from alice"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created[0]["author"], "alice");
    let (status, _) = api
        .post(
            "/messages",
            Some(&alice),
            json!({"content": "as bob", "author": "bob"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "writing as someone else");
    let (status, seen) = api.get("/messages", Some(&bob)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen.as_array().unwrap().len(), 1);

    // Conversations are private to their owner.
    let (status, body) = api
        .post(
            "/conversations",
            Some(&alice),
            json!({"prompt": "how do I borrow?", "response": "with &", "quality": 0.9}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        api.get("/conversations", Some(&alice))
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api.get("/conversations", Some(&bob)).await,
        (StatusCode::OK, json!([]))
    );

    // Documents, embedded by the job, found by meaning-ish search.
    for (title, content) in [
        (
            "Postgres vacuum",
            "autovacuum reclaims dead tuples and keeps tables lean",
        ),
        (
            "Rust borrowing",
            "ownership and borrowing rules of the rust borrow checker",
        ),
        (
            "Kubernetes pods",
            "a pod groups containers that share a network namespace",
        ),
    ] {
        let (status, body) = api
            .post(
                "/rag_documents",
                Some(&bob),
                json!({"title": title, "content": content}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    assert_eq!(
        api.get("/rag_documents", Some(&alice))
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // What the generate-embeddings job does every 30 minutes, run now.
    let mut master = env.postgres.master().await;
    sqlx::query("SELECT platform.generate_embeddings()")
        .execute(&mut master)
        .await
        .unwrap();
    let (status, found) = api
        .post(
            "/rpc/search_documents",
            Some(&alice),
            json!({"query": "rust borrow checker ownership", "match_count": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found[0]["title"], "Rust borrowing", "{found}");

    // Training: scheduled through the function, read-only as tables.
    let (status, job) = api
        .post(
            "/rpc/schedule_training",
            Some(&alice),
            json!({"base_model": "poolside-base", "min_quality": 0.5}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(
        (job["requested_by"].clone(), job["state"].clone()),
        (json!("alice"), json!("pending"))
    );
    let (status, jobs) = api.get("/training_jobs", Some(&bob)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jobs[0]["id"], job["id"]);
    let (status, _) = api
        .post(
            "/training_jobs",
            Some(&alice),
            json!({"base_model": "x", "min_quality": 0.1}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "training jobs are written by functions only"
    );
    assert_eq!(
        api.get("/model_metrics", Some(&alice)).await.0,
        StatusCode::OK
    );
    let (status, _) = api
        .post(
            "/model_metrics",
            Some(&alice),
            json!({"name": "loss", "value": 0.1}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "metrics are written by jobs only"
    );
}
