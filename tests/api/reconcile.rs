//! Full reconcile: exact counters over a mixed fixture, idempotence,
//! dry-run, unmanaged users, many pages, and the CLI block.

use crate::helpers::url_of;
use crate::provisioning::Harness;
use rosterd::db::RunPool;
use rosterd::provision::provider::{Profile, UserUpdate};
use rosterd::provision::reconcile::{reconcile, Report};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

/// A full reconcile of `h`'s roster, as `rosterd provision` runs it.
async fn reconcile_now(h: &Harness, dry_run: bool) -> Report {
    let mut conn = h.db.acquire().await.unwrap();
    let runs = RunPool::new(h.db.clone());
    reconcile(&mut conn, &runs, h.provider.as_ref(), dry_run)
        .await
        .unwrap()
}

fn report(c: [u64; 8]) -> Report {
    Report {
        created: c[0],
        restored: c[1],
        decommissioned: c[2],
        updated: c[3],
        unchanged: c[4],
        unmanaged: c[5],
        orphaned: c[6],
        failed: c[7],
    }
}

async fn drop_queue(h: &Harness) {
    sqlx::query("delete from provisioning_jobs")
        .execute(&h.db)
        .await
        .unwrap();
}

async fn stranger(h: &Harness, email: &str) {
    h.foreign_user(email, "Stranger").await;
}

/// One person per counter, then the queue emptied so only reconcile acts.
async fn mixed_fixture(h: &mut Harness) {
    for (rec, email) in [
        ("r2", "p2@x.io"),
        ("r3", "p3@x.io"),
        ("r4", "p4@x.io"),
        ("r5", "p5@x.io"),
        ("r6", "p6@x.io"),
    ] {
        h.send("user.created", rec, email, "active").await;
    }
    h.send("user.updated", "r6", "p6@x.io", "disabled").await;
    h.drain().await;
    // p1: in the roster, never provisioned.
    h.send("user.created", "r1", "p1@x.io", "active").await;
    // p2: banned behind our back.
    let p2 = h.user("p2@x.io").await.unwrap();
    h.provider
        .update_user(
            p2.id,
            &UserUpdate {
                profile: None,
                banned: Some(true),
            },
        )
        .await
        .unwrap();
    // p3: left the roster, account still open.
    h.send("user.deleted", "r3", "", "").await;
    // p4: metadata drifted at the provider.
    let p4 = h.user("p4@x.io").await.unwrap();
    let drift = Profile {
        email: "p4@x.io".into(),
        name: Some("Drifted".into()),
        roles: vec![],
        roster_id: "r4".into(),
    };
    h.provider
        .update_user(
            p4.id,
            &UserUpdate {
                profile: Some(drift),
                banned: None,
            },
        )
        .await
        .unwrap();
    // p7: disabled in the roster, with an account rosterd never made.
    h.send("user.created", "r7", "p7@x.io", "disabled").await;
    stranger(h, "p7@x.io").await;
    stranger(h, "outsider@x.io").await;
    drop_queue(h).await;
}

#[sqlx::test]
async fn mixed_fixture_local(db: PgPool) {
    mixed_fixture_exact_counters_then_all_unchanged(Harness::local(db)).await;
}

#[sqlx::test]
async fn mixed_fixture_supabase(db: PgPool) {
    mixed_fixture_exact_counters_then_all_unchanged(Harness::gotrue(db).await).await;
}

async fn mixed_fixture_exact_counters_then_all_unchanged(mut h: Harness) {
    mixed_fixture(&mut h).await;
    let before = h.all_users().await;

    let dry = reconcile_now(&h, true).await;
    assert_eq!(dry, report([1, 1, 1, 1, 3, 2, 0, 0]));
    assert_eq!(h.all_users().await, before, "dry run changes nothing");

    let real = reconcile_now(&h, false).await;
    assert_eq!(real, report([1, 1, 1, 1, 3, 2, 0, 0]));
    let again = reconcile_now(&h, false).await;
    assert_eq!(again, report([0, 0, 0, 0, 7, 2, 0, 0]));

    // The strangers were left exactly as they were.
    let after = h.all_users().await;
    for email in ["p7@x.io", "outsider@x.io"] {
        let was = before.iter().find(|u| u.email == email).unwrap();
        let now = after.iter().find(|u| u.email == email).unwrap();
        assert_eq!(was, now, "{email}");
    }
    assert!(!h.user("p2@x.io").await.unwrap().banned);
    assert!(h.user("p3@x.io").await.unwrap().banned);
    assert_eq!(
        h.user("p4@x.io").await.unwrap().name.as_deref(),
        Some("Ada Lovelace")
    );
}

#[sqlx::test]
async fn more_than_ten_pages_of_supabase_users_are_all_read(db: PgPool) {
    let h = Harness::gotrue(db).await;
    let g = h.gotrue.clone().unwrap();
    // 10,500 people in sync: 11 pages of 1,000, so page numbers reach 11.
    let mut rows = Vec::new();
    for i in 0..10_500 {
        let email = format!("p{i}@x.io");
        let meta = serde_json::json!({"roles": [], "roster_id": format!("rec{i}"),
                                      "managed_by": "rosterd"});
        let id = g.seed(
            uuid::Uuid::new_v4(),
            &email,
            serde_json::json!({"name": null}),
            meta,
        );
        rows.push((format!("rec{i}"), email, id));
    }
    let (ids, emails, users): (Vec<String>, Vec<String>, Vec<uuid::Uuid>) =
        rows.into_iter()
            .fold((vec![], vec![], vec![]), |mut acc, (a, b, c)| {
                acc.0.push(a);
                acc.1.push(b);
                acc.2.push(c);
                acc
            });
    sqlx::query(
        "insert into roster (id, email, profile_status, profile_at, profile_event_id, last_at,
                             last_event_id, auth_user_id)
         select id, email, 'active', now(), 'e', now(), 'e', auth
         from unnest($1::text[], $2::text[], $3::uuid[]) as t(id, email, auth)",
    )
    .bind(&ids)
    .bind(&emails)
    .bind(&users)
    .execute(&h.db)
    .await
    .unwrap();
    let r = reconcile_now(&h, false).await;
    assert_eq!(r, report([0, 0, 0, 0, 10_500, 0, 0, 0]));
    assert!(
        g.requests("GET", "/admin/users") >= 11,
        "every page requested"
    );
}

#[sqlx::test]
async fn more_than_ten_pages_of_users_are_all_read(db: PgPool) {
    let h = Harness::local(db);
    // 10,500 people already in sync: any page not read would show up as a
    // person to create.
    sqlx::raw_sql(
        "insert into auth_accounts (id, email, user_metadata, app_metadata, created_at)
         select gen_random_uuid(), 'p' || i || '@x.io', '{\"name\": null}',
                jsonb_build_object('roles', '[]'::jsonb, 'roster_id', 'rec' || i,
                                   'managed_by', 'rosterd'),
                now() - make_interval(secs => 20000 - i)
         from generate_series(1, 10500) i;
         insert into roster (id, email, profile_status, profile_at, profile_event_id, last_at,
                             last_event_id, auth_user_id)
         select 'rec' || i, a.email, 'active', now(), 'e' || i, now(), 'e' || i, a.id
         from generate_series(1, 10500) i join auth_accounts a on a.email = 'p' || i || '@x.io';",
    )
    .execute(&h.db)
    .await
    .unwrap();
    let r = reconcile_now(&h, false).await;
    assert_eq!(r, report([0, 0, 0, 0, 10_500, 0, 0, 0]));
}

fn run_provision(url: &str, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("provision")
        .args(args)
        .env_clear()
        .env("DATABASE_URL", url)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[sqlx::test]
async fn cli_prints_the_block_and_json(_p: PgPoolOptions, opts: PgConnectOptions) {
    let db = PgPoolOptions::new()
        .connect_with(opts.clone())
        .await
        .unwrap();
    let mut h = Harness::local(db);
    mixed_fixture(&mut h).await;
    let url = url_of(&opts);

    let (code, out, err) = run_provision(&url, &["--dry-run", "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"created": 1, "restored": 1, "decommissioned": 1, "updated": 1,
                           "unchanged": 3, "unmanaged": 2, "orphaned": 0, "failed": 0})
    );
    let (code, out, err) = run_provision(&url, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "  Provisioning auth users from roster\n\n  created: 1\n  restored: 1\n  decommissioned: 1\n  updated: 1\n  unchanged: 3\n  unmanaged: 2\n  orphaned: 0\n  failed: 0\n\n  Reconciliation complete\n"
    );
    let (code, out, _) = run_provision(&url, &[]);
    assert_eq!(code, 0);
    assert!(out.contains("unchanged: 7\n"), "{out}");
    // Real runs are audited (no USER in the environment: "unknown").
    let audit: Vec<(String, String)> =
        sqlx::query_as("select actor, action from audit_log order by id")
            .fetch_all(&h.db)
            .await
            .unwrap();
    let run = ("cli:unknown".to_string(), "provision.reconcile".to_string());
    assert_eq!(audit, vec![run.clone(), run]);
}

#[sqlx::test]
async fn cli_refuses_bad_provider_config(_p: PgPoolOptions, opts: PgConnectOptions) {
    let url = url_of(&opts);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .args(["provision"])
        .env_clear()
        .env("DATABASE_URL", &url)
        .env("AUTH_PROVIDER", "supabase")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SUPABASE_URL"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .args(["provision", "--dry-run"])
        .env_clear()
        .env("DATABASE_URL", &url)
        .env("AUTH_PROVIDER", "okta")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AUTH_PROVIDER"));
}

/// A user of ours that no row links any more, on an email no job will look
/// at again, is counted as orphaned (not unmanaged) and banned by the
/// reconcile; a user without the marker stays untouched.
async fn orphans_are_counted_and_banned(mut h: Harness) {
    h.send("user.created", "r1", "p1@x.io", "active").await;
    h.send("user.created", "r2", "p2@x.io", "active").await;
    h.drain_all().await;
    stranger(&h, "outsider@x.io").await;
    let p2 = h.user("p2@x.io").await.unwrap();
    // Gone from the roster by hand: no event, no job.
    sqlx::query("delete from roster where id = 'r2'")
        .execute(&h.db)
        .await
        .unwrap();
    let before = h.all_users().await;
    let dry = reconcile_now(&h, true).await;
    assert_eq!(dry, report([0, 0, 0, 0, 1, 1, 1, 0]));
    assert_eq!(h.all_users().await, before, "dry run changes nothing");
    let real = reconcile_now(&h, false).await;
    assert_eq!(real, report([0, 0, 0, 0, 1, 1, 1, 0]));
    let now = h.user("p2@x.io").await.unwrap();
    assert_eq!(now.id, p2.id);
    assert!(now.banned);
    let again = reconcile_now(&h, true).await;
    assert_eq!(again, report([0, 0, 0, 0, 1, 1, 0, 0]));
    let outsider = |users: &[rosterd::provision::provider::AuthUser]| {
        users.iter().find(|u| u.email == "outsider@x.io").cloned()
    };
    assert_eq!(outsider(&h.all_users().await), outsider(&before));
}

#[sqlx::test]
async fn orphans_local(db: PgPool) {
    orphans_are_counted_and_banned(Harness::local(db)).await;
}

#[sqlx::test]
async fn orphans_supabase(db: PgPool) {
    orphans_are_counted_and_banned(Harness::gotrue(db).await).await;
}
