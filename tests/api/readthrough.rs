//! The lookup's directory side against the Airtable stand-in: roster first,
//! one upstream call per key, misses remembered, outages answered 503, and
//! `rosterd sync` over many pages.

use crate::airtable::{self, Airtable, Failure, Kind};
use crate::helpers::*;
use crate::provisioning::Harness;
use rosterd::directory::{AirtableConfig, AirtableDirectory};
use rosterd::lookup::readthrough::ReadThrough;
use rosterd::provision::provider::local::LocalProvider;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

fn directory(at: &Airtable) -> Arc<AirtableDirectory> {
    let mut cfg = AirtableConfig::new(
        airtable::BASE,
        airtable::TABLE,
        airtable::KEY.to_string().into(),
    );
    cfg.api_url = at.url().to_string();
    Arc::new(AirtableDirectory::new(cfg).unwrap())
}

async fn app(db: PgPool, at: &Airtable) -> TestApp {
    let rt = ReadThrough::new(
        directory(at),
        Duration::from_secs(60),
        Duration::from_secs(5),
        Duration::from_secs(5),
    );
    let provider = Arc::new(LocalProvider::new(db.clone()));
    TestApp::spawn_full(db, provider, Some(Arc::new(rt)), |_| {}).await
}

/// The read-through `serve` builds from a directory configuration.
fn read_through(cfg: Option<&rosterd::config::DirectoryConfig>) -> Option<Arc<ReadThrough>> {
    let cfg = cfg?;
    let client = AirtableDirectory::new(cfg.airtable.clone()).unwrap();
    ReadThrough::enabled(Arc::new(client), cfg, Duration::from_secs(1))
}

async fn body(r: reqwest::Response) -> Value {
    r.json().await.unwrap()
}

#[sqlx::test]
async fn a_known_person_never_waits_on_the_directory(db: PgPool) {
    let mut h = Harness::local(db.clone());
    h.send("user.created", "recA", "ada@x.io", "active").await;
    h.drain().await;
    let at = Airtable::start().await;
    at.fail_next(100, Failure::ServerError);
    let app = app(db, &at).await;
    for query in ["email=ada@x.io", "id=recA"] {
        let resp = app.lookup(query).await;
        assert_eq!(resp.status(), 200, "{query}");
        assert_eq!(body(resp).await["source"], "roster");
    }
    assert_eq!(
        at.total_requests(),
        0,
        "the directory is down and was never asked"
    );
}

#[sqlx::test]
async fn an_unknown_person_is_fetched_applied_and_provisioned(db: PgPool) {
    let at = Airtable::start().await;
    let rec = at.insert(json!({"Email": "New@X.io", "Name": "New Person", "Status": "active", "Groups": ["admins"]}));
    let app = app(db.clone(), &at).await;
    let resp = app.lookup("email=new@x.io").await;
    assert_eq!(resp.status(), 200);
    let b = body(resp).await;
    assert_eq!(b["source"], "directory");
    assert_eq!(
        b["user"],
        json!({"id": rec, "email": "new@x.io", "name": "New Person",
                                 "status": "active", "roles": ["admin", "reader"]})
    );
    let h = Harness::local(db);
    let made = h
        .user("new@x.io")
        .await
        .expect("provisioned before answering");
    assert_eq!(b["auth"]["userId"], json!(made.id));
    let source: String = sqlx::query_scalar("select source from inbound_events")
        .fetch_one(&h.db)
        .await
        .unwrap();
    assert_eq!(source, "readthrough");
    // Now a roster hit: no second directory call.
    let again = app.lookup("email=new@x.io").await;
    assert_eq!(body(again).await["source"], "roster");
    assert_eq!(at.requests(Kind::Filter), 1);

    // By id too.
    let other = at.insert(json!({"Email": "byid@x.io", "Status": "disabled"}));
    let resp = app.lookup(&format!("id={other}")).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        body(resp).await,
        json!({"error": "user_inactive", "status": "disabled"})
    );
    assert_eq!(at.requests(Kind::Get), 1);
}

#[sqlx::test]
async fn unknown_everywhere_is_404_and_the_miss_is_remembered(db: PgPool) {
    let at = Airtable::start().await;
    at.insert_person("someone@x.io", "Someone");
    let app = app(db, &at).await;
    for _ in 0..3 {
        let resp = app.lookup("email=nobody@x.io").await;
        assert_eq!(resp.status(), 404);
        assert_eq!(body(resp).await, json!({"error": "user_not_found"}));
    }
    assert_eq!(
        at.requests(Kind::Filter),
        1,
        "later lookups inside the TTL ask nobody"
    );
}

#[sqlx::test]
async fn directory_down_for_an_unknown_person_is_503(db: PgPool) {
    let at = Airtable::start().await;
    at.fail_next(1, Failure::Unavailable);
    let app = app(db, &at).await;
    let resp = app.lookup("email=new@x.io").await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(body(resp).await, json!({"error": "directory_unavailable"}));
    // An outage is not remembered as a miss.
    at.insert_person("new@x.io", "New");
    assert_eq!(app.lookup("email=new@x.io").await.status(), 200);
}

#[sqlx::test]
async fn twenty_concurrent_lookups_of_one_new_email_make_one_call(db: PgPool) {
    let at = Airtable::start().await;
    at.set_latency(Duration::from_millis(150));
    at.insert_person("crowd@x.io", "Crowd");
    let app = Arc::new(app(db, &at).await);
    let mut tasks = tokio::task::JoinSet::new();
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    for _ in 0..20 {
        let (app, barrier) = (app.clone(), barrier.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            app.lookup("email=crowd@x.io").await.status().as_u16()
        });
    }
    let statuses = tasks.join_all().await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(at.requests(Kind::Filter), 1);
}

#[sqlx::test]
async fn read_through_off_asks_nobody(db: PgPool) {
    let at = Airtable::start().await;
    at.insert_person("new@x.io", "New");
    // USER_READTHROUGH_FALLBACK_ENABLED=false, as serve reads it.
    let args = rosterd::config::DirectoryArgs {
        airtable_api_url: at.url().to_string(),
        airtable_base_id: Some(airtable::BASE.into()),
        airtable_table: Some(airtable::TABLE.into()),
        airtable_api_key: Some(airtable::KEY.to_string().into()),
        airtable_api_key_file: None,
        airtable_field_email: "Email".into(),
        airtable_field_name: "Name".into(),
        airtable_field_status: "Status".into(),
        airtable_field_groups: "Groups".into(),
        user_readthrough_fallback_enabled: false,
        readthrough_negative_ttl_secs: 60,
        readthrough_timeout_secs: 5,
    };
    let off = args.resolve().unwrap();
    assert!(
        off.is_some(),
        "the directory itself is configured (sync can use it)"
    );
    let readthrough = read_through(off.as_ref());
    assert!(readthrough.is_none());
    let provider = Arc::new(LocalProvider::new(db.clone()));
    let app = TestApp::spawn_full(db, provider, readthrough, |_| {}).await;
    assert_eq!(app.lookup("email=new@x.io").await.status(), 404);
    assert_eq!(at.total_requests(), 0);
    // Switched on, the same configuration asks the directory.
    let on = rosterd::config::DirectoryArgs {
        user_readthrough_fallback_enabled: true,
        ..args
    };
    assert!(read_through(on.resolve().unwrap().as_ref()).is_some());
}

#[sqlx::test]
async fn emails_built_to_break_the_formula_match_nobody_else(db: PgPool) {
    let at = Airtable::start().await;
    at.insert_person("victim@x.io", "Victim");
    at.insert_person("o'brien@x.io", "O'Brien");
    let app = app(db, &at).await;
    for hostile in [
        "x')%20%26%20TRUE()%20%26%20('@x.io",
        "x%5C')%3D'@x.io",
        "%7BEmail%7D@x.io",
        "a%22b@x.io",
    ] {
        let resp = app.lookup(&format!("email={hostile}")).await;
        let status = resp.status().as_u16();
        assert!(status == 404 || status == 400, "{hostile}: {status}");
    }
    let resp = app.lookup("email=O'Brien@x.io").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(body(resp).await["user"]["email"], "o'brien@x.io");
    assert!(
        at.invalid_formulas().is_empty(),
        "{:?}",
        at.invalid_formulas()
    );
    let rows: i64 = sqlx::query_scalar("select count(*) from roster where email = 'victim@x.io'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

/// `rosterd sync` against the stand-in, off the test's runtime (which
/// serves the stand-in).
async fn sync(db_url: &str, at: &Airtable, flags: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"));
    command
        .arg("sync")
        .args(flags)
        .env_clear()
        .env("DATABASE_URL", db_url)
        .env("AIRTABLE_API_URL", at.url())
        .env("AIRTABLE_BASE_ID", airtable::BASE)
        .env("AIRTABLE_TABLE", airtable::TABLE)
        .env("AIRTABLE_API_KEY", airtable::KEY)
        .env("ROLE_MAP", "admins=admin");
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

async fn migrated(opts: &PgConnectOptions) -> PgPool {
    let db = PgPoolOptions::new()
        .connect_with(opts.clone())
        .await
        .unwrap();
    rosterd::db::MIGRATOR.run(&db).await.unwrap();
    db
}

#[sqlx::test]
async fn sync_reads_every_page(_p: PgPoolOptions, opts: PgConnectOptions) {
    let db = migrated(&opts).await;
    let at = Airtable::start().await;
    for i in 0..350 {
        at.insert(json!({"Email": format!("p{i}@x.io"), "Name": format!("P {i}"), "Groups": "admins, ops"}));
    }
    at.insert(json!({"Email": "broken"}));
    let first = sync(&url_of(&opts), &at, &[]).await;
    let out = String::from_utf8_lossy(&first.stdout).to_string();
    assert_eq!(first.status.code(), Some(1), "one rejected record: {out}");
    assert!(out.starts_with("  Syncing roster from Airtable\n"), "{out}");
    assert!(out.contains("created: 350\n"), "{out}");
    assert!(
        out.contains("rejected: 1\n") && out.contains("user.email"),
        "{out}"
    );
    assert!(at.requests(Kind::List) >= 4, "350 records are 4 pages");
    let (n, admins): (i64, i64) =
        sqlx::query_as("select count(*), count(*) filter (where 'admin' = any(roles)) from roster")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!((n, admins), (350, 350));
}

/// The table is read to its end before anything is applied: a page that
/// fails after others were read changes nothing, and prunes nothing.
#[sqlx::test]
async fn a_sync_whose_later_page_fails_changes_nothing(_p: PgPoolOptions, opts: PgConnectOptions) {
    let db = migrated(&opts).await;
    // Someone the table does not hold: a prune would delete them.
    let mut h = Harness::local(db.clone());
    h.send("user.created", "recA", "ada@x.io", "active").await;
    h.drain().await;
    let before = db_state(&db).await;
    let at = Airtable::start().await;
    for i in 0..250 {
        at.insert_person(&format!("p{i}@x.io"), &format!("P {i}"));
    }
    at.fail_after(2, Failure::ServerError);
    // One run only: the stand-in counts requests per second across
    // processes, and each process paces only its own.
    let failed = sync(&url_of(&opts), &at, &["--prune"]).await;
    let err = String::from_utf8_lossy(&failed.stderr).to_string();
    assert_eq!(failed.status.code(), Some(1), "{err}");
    assert!(err.contains("reading the Airtable table"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(
        at.requests(Kind::List),
        3,
        "two pages read, the third failed"
    );
    assert_eq!(db_state(&db).await, before);
}
