//! Row-level security: what Supabase's `authenticated` role sees, the
//! `is_user_active` helper, and `serve` refusing to start while a table has
//! RLS off. The test user is a superuser, and superusers bypass RLS, so
//! every check runs after `set local role authenticated`.

use crate::helpers::*;
use crate::provisioning::Harness;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every table of ours except the roster.
const OTHER_TABLES: [&str; 10] = [
    "inbound_events",
    "provisioning_jobs",
    "provisioning_attempts",
    "auth_accounts",
    "audit_log",
    "event_replays",
    "console_sessions",
    "scim_groups",
    "invitations",
    "role_overrides",
];

/// The columns `authenticated` may read.
const OWN_COLUMNS: &str = "id, email, name, status, groups, roles, auth_user_id, updated_at";

/// A transaction acting as `authenticated` with these JWT claims (none:
/// the setting is never made). Rolled back when dropped.
async fn as_authenticated<'a>(db: &'a PgPool, claims: Option<&str>) -> Transaction<'a, Postgres> {
    let mut tx = db.begin().await.unwrap();
    sqlx::query("set local role authenticated")
        .execute(&mut *tx)
        .await
        .unwrap();
    if let Some(claims) = claims {
        sqlx::query("select set_config('request.jwt.claims', $1, true)")
            .bind(claims)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx
}

/// Roster ids visible to `authenticated` with these claims.
async fn visible_ids(db: &PgPool, claims: Option<&str>) -> Vec<String> {
    let mut tx = as_authenticated(db, claims).await;
    sqlx::query_scalar(&format!(
        "select id from (select {OWN_COLUMNS} from roster) r order by id"
    ))
    .fetch_all(&mut *tx)
    .await
    .unwrap()
}

fn assert_permission_denied<T: std::fmt::Debug>(r: Result<T, sqlx::Error>, what: &str) {
    match r {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501") => {}
        other => panic!("{what}: expected permission denied, got {other:?}"),
    }
}

/// Through the real ingest path: Ada (active), Bob (active), Cleo
/// (disabled), Dan (deleted), and an older, deleted record of Ada's; then
/// the provisioning queue drained, so every table has rows to hide.
async fn populate(db: &PgPool) {
    let app = TestApp::spawn(db.clone()).await;
    // (eventId, occurredAt, record, Some((email, status)) or None: deleted)
    let events = [
        (
            "evt_a0",
            "2026-11-20T10:00:00Z",
            "recA0",
            Some(("ada@example.com", "active")),
        ),
        ("evt_a0d", "2026-11-21T10:00:00Z", "recA0", None),
        (
            "evt_a",
            "2026-11-22T10:00:00Z",
            "recA",
            Some(("Ada@Example.com", "active")),
        ),
        (
            "evt_b",
            "2026-11-22T10:00:01Z",
            "recB",
            Some(("bob@example.com", "active")),
        ),
        (
            "evt_c",
            "2026-11-22T10:00:02Z",
            "recC",
            Some(("cleo@example.com", "disabled")),
        ),
        (
            "evt_d",
            "2026-11-22T10:00:03Z",
            "recD",
            Some(("dan@example.com", "active")),
        ),
        ("evt_dd", "2026-11-22T10:00:04Z", "recD", None),
    ];
    for (id, at, record, profile) in events {
        let e = match profile {
            Some((email, status)) => {
                let mut e = upsert_event("user.created", id, at, record, email);
                e["user"]["status"] = status.into();
                e
            }
            None => delete_event(id, at, record),
        };
        assert_eq!(app.post_signed(&e).await.status(), 200, "{e}");
    }
    Harness::local(db.clone()).drain_all().await;
    // Written by operator calls, which arrive with the admin API.
    sqlx::query("insert into audit_log (actor, action, target) values ('ops', 'replay', 'evt_a')")
        .execute(db)
        .await
        .unwrap();
    sqlx::query(
        "insert into event_replays (event_id, actor, outcome) values ('evt_a', 'ops', 'applied')",
    )
    .execute(db)
    .await
    .unwrap();
    // Written by a console sign-in.
    sqlx::query(
        "insert into console_sessions (id_hash, operator, csrf_token, expires_at)
         values (sha256('id'), 'ops', 'csrf', now() + interval '1 hour')",
    )
    .execute(db)
    .await
    .unwrap();
    // Written by an identity provider over SCIM.
    sqlx::query("insert into scim_groups (id, display_name) values (gen_random_uuid(), 'admins')")
        .execute(db)
        .await
        .unwrap();
    // Written by an operator's role override.
    sqlx::query("insert into role_overrides (user_id, preserve, updated_by) values (gen_random_uuid(), '{admin}', 'ops')")
        .execute(db)
        .await
        .unwrap();
    // Written by provisioning with invitations on.
    sqlx::query(
        "insert into invitations (user_id, email, expires_at, token_hash)
         values (gen_random_uuid(), 'ada@example.com', now() + interval '7 days', sha256('t'))",
    )
    .execute(db)
    .await
    .unwrap();
    for table in OTHER_TABLES {
        let n: i64 = sqlx::query_scalar(&format!("select count(*) from {table}"))
            .fetch_one(db)
            .await
            .unwrap();
        assert!(n > 0, "{table} has rows for the owner");
    }
}

#[sqlx::test]
async fn authenticated_sees_exactly_its_own_live_roster_row(db: PgPool) {
    populate(&db).await;
    let ada = r#"{"email":"ada@example.com","role":"authenticated"}"#;
    assert_eq!(
        visible_ids(&db, Some(ada)).await,
        ["recA"],
        "not the deleted recA0"
    );
    assert_eq!(
        visible_ids(&db, Some(r#"{"email":"ADA@Example.COM"}"#)).await,
        ["recA"]
    );
    assert_eq!(
        visible_ids(&db, Some(r#"{"email":"bob@example.com"}"#)).await,
        ["recB"]
    );
    assert_eq!(
        visible_ids(&db, Some(r#"{"email":"cleo@example.com"}"#)).await,
        ["recC"]
    );
    // A person whose only record is deleted has nothing to see.
    assert!(visible_ids(&db, Some(r#"{"email":"dan@example.com"}"#))
        .await
        .is_empty());
    for nothing in [
        None,
        Some(""),
        Some("{}"),
        Some(r#"{"email":""}"#),
        Some(r#"{"sub":"ada@example.com"}"#),
        Some(r#"{"email":"nobody@example.com"}"#),
    ] {
        assert!(visible_ids(&db, nothing).await.is_empty(), "{nothing:?}");
    }

    // The row carries what the person may read about themselves.
    let mut tx = as_authenticated(&db, Some(ada)).await;
    let (email, status, roles): (String, String, Vec<String>) =
        sqlx::query_as("select email, status, roles from roster")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(
        (email.as_str(), status.as_str()),
        ("ada@example.com", "active")
    );
    assert!(roles.contains(&"admin".to_string()), "{roles:?}");
    drop(tx);
    // rosterd's bookkeeping columns stay private, even in one's own row.
    for sql in [
        "select * from roster",
        "select profile_event_id from roster",
        "select last_at from roster",
    ] {
        let mut tx = as_authenticated(&db, Some(ada)).await;
        assert_permission_denied(sqlx::query(sql).fetch_all(&mut *tx).await, sql);
    }
}

#[sqlx::test]
async fn authenticated_can_neither_read_other_tables_nor_write(db: PgPool) {
    populate(&db).await;
    let ada = Some(r#"{"email":"ada@example.com"}"#);
    for table in OTHER_TABLES {
        let mut tx = as_authenticated(&db, ada).await;
        let r = sqlx::query(&format!("select count(*) from {table}"))
            .fetch_one(&mut *tx)
            .await;
        assert_permission_denied(r, table);
    }
    for sql in [
        "update roster set name = 'Eve' where id = 'recA'",
        "delete from roster where id = 'recA'",
        "insert into roster (id, last_at, last_event_id) values ('recE', now(), 'e')",
    ] {
        let mut tx = as_authenticated(&db, ada).await;
        assert_permission_denied(sqlx::query(sql).execute(&mut *tx).await, sql);
    }
}

/// The second line of defence: RLS on every table, with no policy but the
/// roster's, shows nothing even where a select is granted (Supabase grants
/// every role everything on new tables in `public` by default).
#[sqlx::test]
async fn a_stray_grant_still_shows_no_rows(db: PgPool) {
    populate(&db).await;
    for table in OTHER_TABLES.into_iter().chain(["roster"]) {
        let mut tx = db.begin().await.unwrap();
        sqlx::query(&format!("grant select on {table} to authenticated"))
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("set local role authenticated")
            .execute(&mut *tx)
            .await
            .unwrap();
        let n: i64 = sqlx::query_scalar(&format!("select count(*) from {table}"))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table}");
    }
}

#[sqlx::test]
async fn is_user_active_answers_for_the_holder(db: PgPool) {
    populate(&db).await;
    // Frank's newer record is disabled, his older one still active: the
    // holder (newest live row) decides.
    let mut h = Harness::local(db.clone());
    h.send("user.created", "recF0", "frank@example.com", "active")
        .await;
    h.send("user.created", "recF", "frank@example.com", "disabled")
        .await;

    let mut tx = as_authenticated(&db, Some(r#"{"email":"bob@example.com"}"#)).await;
    for (email, want) in [
        (Some("ada@example.com"), true),
        (Some("  ADA@example.COM "), true),
        (Some("bob@example.com"), true),
        (Some("cleo@example.com"), false),
        (Some("dan@example.com"), false),
        (Some("frank@example.com"), false),
        (Some("nobody@example.com"), false),
        (Some(""), false),
        (None, false),
    ] {
        let got: Option<bool> = sqlx::query_scalar("select is_user_active($1)")
            .bind(email)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(got, Some(want), "{email:?}");
    }
    drop(tx);

    let (public, authenticated): (bool, bool) = sqlx::query_as(
        "select has_function_privilege('public', 'is_user_active(text)', 'execute'),
                has_function_privilege('authenticated', 'is_user_active(text)', 'execute')",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert!(
        !public && authenticated,
        "public {public}, authenticated {authenticated}"
    );
}

/// How another app uses it: a policy of its own, evaluated as the caller.
#[sqlx::test]
async fn another_apps_policy_can_call_is_user_active(db: PgPool) {
    populate(&db).await;
    for sql in [
        "create table notes (owner_email text not null, body text not null)",
        "alter table notes enable row level security",
        "create policy notes_of_active_people on notes for select to authenticated
             using (is_user_active(owner_email))",
        "grant select on notes to authenticated",
        "insert into notes values ('ada@example.com', 'a'), ('cleo@example.com', 'c'),
                                  ('dan@example.com', 'd'), ('nobody@example.com', 'n')",
    ] {
        sqlx::query(sql).execute(&db).await.unwrap();
    }
    let mut tx = as_authenticated(&db, Some(r#"{"email":"bob@example.com"}"#)).await;
    let bodies: Vec<String> = sqlx::query_scalar("select body from notes order by body")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(bodies, ["a"]);
}

#[sqlx::test]
async fn the_start_up_checks_see_rls_off_and_rls_that_would_bind_rosterd(db: PgPool) {
    let mut conn = db.acquire().await.unwrap();
    assert!(rosterd::db::tables_without_rls(&mut conn)
        .await
        .unwrap()
        .is_empty());
    assert!(rosterd::db::tables_rls_restricts(&mut conn)
        .await
        .unwrap()
        .is_empty());

    let mut tx = db.begin().await.unwrap();
    sqlx::query("alter table audit_log disable row level security")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        rosterd::db::tables_without_rls(&mut tx).await.unwrap(),
        ["audit_log"]
    );
    tx.rollback().await.unwrap();

    // A role that is not the owner is bound by RLS on every table...
    let mut tx = as_authenticated(&db, None).await;
    let mut ours: Vec<String> = OTHER_TABLES.iter().map(|t| t.to_string()).collect();
    ours.push("roster".into());
    ours.sort();
    assert_eq!(
        rosterd::db::tables_rls_restricts(&mut tx).await.unwrap(),
        ours
    );
    tx.rollback().await.unwrap();

    // ...and so is an owner once RLS is forced on it.
    let mut tx = db.begin().await.unwrap();
    for sql in [
        "alter table roster owner to authenticated",
        "alter table audit_log owner to authenticated",
        "alter table audit_log force row level security",
        "set local role authenticated",
    ] {
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
    }
    let bound = rosterd::db::tables_rls_restricts(&mut tx).await.unwrap();
    assert!(bound.contains(&"audit_log".to_string()), "{bound:?}");
    assert!(!bound.contains(&"roster".to_string()), "{bound:?}");
}

fn serve(url: &str, port: u16, extra: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("serve")
        .env_clear()
        .env("DATABASE_URL", url)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("AIRTABLE_USER_SYNC_SECRET", SECRET)
        .env("WORKER_ENABLED", "false")
        .envs(extra.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for the process to exit on its own; kills it after the deadline.
fn exit_within(mut child: Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!(
                "rosterd still running after {limit:?}: {:?}",
                child.wait_with_output()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[sqlx::test]
async fn serve_refuses_to_start_while_a_table_has_rls_off(
    _p: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let db = migrated(&opts).await;
    sqlx::query("alter table roster disable row level security")
        .execute(&db)
        .await
        .unwrap();

    let port = free_port();
    let child = serve(&url_with_password(&opts), port, &[]);
    let out = tokio::task::spawn_blocking(move || exit_within(child, Duration::from_secs(30)))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("rosterd: RLS_CHECK: row-level security is off on table(s) roster;"),
        "{stderr}"
    );
    assert!(stderr.contains("RLS_CHECK_ENABLED=false"), "{stderr}");
    assert!(
        !stderr.contains(DB_PASSWORD) && !stderr.contains(SECRET),
        "{stderr}"
    );

    // Switched off, the same database is served.
    let mut child = serve(
        &url_with_password(&opts),
        port,
        &[("RLS_CHECK_ENABLED", "false")],
    );
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let healthy = loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
        {
            break r.status() == 200;
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = tokio::task::spawn_blocking(move || exit_within(child, Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(
        healthy,
        "served /healthz: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(term.success());
    assert_eq!(out.status.code(), Some(0));
}

/// rosterd connected as a role that does not own the tables would be bound
/// by their policies and read nothing: it refuses to start instead.
#[sqlx::test]
async fn serve_refuses_to_start_when_rls_would_bind_its_own_role(
    _p: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let db = migrated(&opts).await;
    // Enough for `serve`'s migration step to find everything applied.
    for sql in [
        "grant select on _sqlx_migrations to authenticated",
        "do $$ begin
             execute format('grant create on schema %I to authenticated', current_schema());
         end $$",
    ] {
        sqlx::query(sql).execute(&db).await.unwrap();
    }
    // The server sets the role at connection start, so every statement of
    // `serve` runs as `authenticated`.
    let url = format!("{}?options=-c%20role%3Dauthenticated", url_of(&opts));
    let child = serve(&url, free_port(), &[]);
    let out = tokio::task::spawn_blocking(move || exit_within(child, Duration::from_secs(30)))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("RLS_CHECK: row-level security applies to rosterd's own database role on table(s) audit_log, auth_accounts,"),
        "{stderr}"
    );
}
