use crate::helpers::*;
use serde_json::{json, Value};
use sqlx::PgPool;

#[sqlx::test]
async fn healthz_and_readyz_on_a_migrated_database(db: PgPool) {
    let app = TestApp::spawn(db).await;
    for path in ["/healthz", "/readyz"] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert!(resp.headers().contains_key("x-request-id"), "{path}");
    }
}

#[sqlx::test(migrations = false)]
async fn readyz_is_503_until_migrated(db: PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "not_ready");
    rosterd::db::MIGRATOR.run(&db).await.unwrap();
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[sqlx::test]
async fn readyz_is_503_when_the_database_is_gone(_db: PgPool) {
    let dead = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(1))
        .connect_lazy("postgres://rosterd@127.0.0.1:1/rosterd")
        .unwrap();
    let app = TestApp::spawn(dead).await;
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(
        health.status(),
        200,
        "liveness does not depend on the database"
    );
}

#[sqlx::test]
async fn unknown_routes_are_json_404(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let resp = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"error": "not_found"})
    );
}
