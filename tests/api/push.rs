//! `rosterd push`: YAML and CSV through the apply path, prune, dry-run,
//! rejected rows with their lines, malformed files that change nothing.

use crate::helpers::*;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::path::PathBuf;

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn push(url: &str, file: &PathBuf, flags: &[&str]) -> Run {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("push")
        .arg(file)
        .args(flags)
        .env_clear()
        .env("DATABASE_URL", url)
        .env("ROLE_MAP", "admins=admin")
        .env("ROLE_DEFAULTS", "reader")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap(),
        out: String::from_utf8(out.stdout).unwrap(),
        err: String::from_utf8(out.stderr).unwrap(),
    }
}

fn fixture(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rosterd-push-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn counts(out: &str) -> Vec<(String, u64)> {
    ["created", "updated", "deleted", "unchanged", "rejected"]
        .iter()
        .map(|k| {
            let line = out
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{k}:")))
                .unwrap_or_else(|| panic!("no {k} in {out}"));
            (
                k.to_string(),
                line.split(':').nth(1).unwrap().trim().parse().unwrap(),
            )
        })
        .collect()
}

fn expect(c: [u64; 5]) -> Vec<(String, u64)> {
    ["created", "updated", "deleted", "unchanged", "rejected"]
        .iter()
        .zip(c)
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

async fn setup(opts: PgConnectOptions) -> (PgPool, String) {
    let db = PgPoolOptions::new()
        .connect_with(opts.clone())
        .await
        .unwrap();
    rosterd::db::MIGRATOR.run(&db).await.unwrap();
    (db, url_of(&opts))
}

const YAML: &str = "\
- id: recA
  email: Ada@Example.com
  name: Ada Lovelace
  groups: [engineering, admins]
- id: recB
  email: grace@example.com
  name: Grace Hopper
  status: disabled
- id: recC
  email: not-an-email
- id: recD
  email: linus@example.com
- id: recA
  email: ada2@example.com
";

#[sqlx::test]
async fn yaml_push_applies_rejects_with_lines_and_is_idempotent(
    _p: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let (db, url) = setup(opts).await;
    let file = fixture("roster.yaml", YAML);
    let r = push(&url, &file, &[]);
    assert_eq!(
        r.code, 1,
        "rejected rows make the exit code non-zero: {}",
        r.err
    );
    assert!(r.out.starts_with("  Pushing roster from "), "{}", r.out);
    assert_eq!(counts(&r.out), expect([3, 0, 0, 0, 2]));
    assert!(
        r.out
            .contains("line 9 (recC): user.email must be a valid email address"),
        "{}",
        r.out
    );
    assert!(
        r.out
            .contains("line 13 (recA): duplicate id, first on line 1"),
        "{}",
        r.out
    );

    let rows: Vec<(String, String, String, Vec<String>)> =
        sqlx::query_as("select id, email, status, roles from roster order by id")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            (
                "recA".into(),
                "ada@example.com".into(),
                "active".into(),
                vec!["admin".into(), "reader".into()]
            ),
            (
                "recB".into(),
                "grace@example.com".into(),
                "disabled".into(),
                vec!["reader".into()]
            ),
            (
                "recD".into(),
                "linus@example.com".into(),
                "active".into(),
                vec!["reader".into()]
            ),
        ]
    );
    let sources: Vec<String> = sqlx::query_scalar("select distinct source from inbound_events")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(sources, ["import"]);
    assert_eq!(
        db_state(&db).await.jobs.len(),
        3,
        "provisioning queued like any event"
    );

    let again = push(&url, &file, &[]);
    assert_eq!(counts(&again.out), expect([0, 0, 0, 3, 2]));
}

#[sqlx::test]
async fn csv_push_with_prune_and_dry_run(_p: PgPoolOptions, opts: PgConnectOptions) {
    let (db, url) = setup(opts).await;
    push(&url, &fixture("roster.yaml", YAML), &[]);
    let csv = fixture(
        "roster.csv",
        "id,email,name,status,groups\n\
         recA,ada@example.com,Ada King,active,engineering;admins\n\
         recB,grace@example.com,Grace Hopper,disabled,\n\
         recE,new@example.com,New Person,,ops|admins\n",
    );
    let before = db_state(&db).await;
    let dry = push(&url, &csv, &["--prune", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.err);
    assert_eq!(counts(&dry.out), expect([1, 1, 1, 1, 0]));
    assert!(dry.out.contains("Dry run: nothing was changed"));
    assert_eq!(db_state(&db).await, before, "a dry run writes nothing");

    let real = push(&url, &csv, &["--prune"]);
    assert_eq!(real.code, 0, "{}", real.err);
    assert_eq!(counts(&real.out), expect([1, 1, 1, 1, 0]));
    let rows: Vec<(String, String, Option<String>)> =
        sqlx::query_as("select id, status, name from roster order by id")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            ("recA".into(), "active".into(), Some("Ada King".into())),
            (
                "recB".into(),
                "disabled".into(),
                Some("Grace Hopper".into())
            ),
            ("recD".into(), "deleted".into(), None),
            ("recE".into(), "active".into(), Some("New Person".into())),
        ]
    );
    let groups: Vec<String> = sqlx::query_scalar("select groups from roster where id = 'recE'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(groups, ["ops", "admins"]);
}

#[sqlx::test]
async fn malformed_files_change_nothing(_p: PgPoolOptions, opts: PgConnectOptions) {
    let (db, url) = setup(opts).await;
    push(&url, &fixture("roster.yaml", YAML), &[]);
    let before = db_state(&db).await;
    for (name, text, needle) in [
        (
            "bad.yaml",
            "- id: recX\n  email: [unclosed\n",
            "not valid YAML",
        ),
        (
            "map.yaml",
            "id: recX\nemail: x@example.com\n",
            "list of people",
        ),
        ("scalars.yaml", "- recX\n- recY\n", "mapping"),
        (
            "noid.csv",
            "email,name\nx@example.com,X\n",
            "no `id` column",
        ),
        (
            "ragged.csv",
            "id,email\nrecX,x@example.com,extra\n",
            "not valid CSV",
        ),
        ("roster.json", "[]", "expected a .yaml, .yml or .csv"),
    ] {
        let r = push(&url, &fixture(name, text), &["--prune"]);
        assert_eq!(r.code, 1, "{name}");
        assert!(r.err.contains(needle), "{name}: {}", r.err);
        assert!(r.err.contains("nothing was changed"), "{name}: {}", r.err);
        assert_eq!(db_state(&db).await, before, "{name}");
    }
    let missing = push(&url, &PathBuf::from("/nonexistent/roster.yaml"), &[]);
    assert_eq!(missing.code, 1);
    assert!(missing.err.contains("cannot read"));
}

/// A big CSV is applied in batches, a row at a time from the file, with
/// progress on stderr; a malformed row at its very end changes nothing,
/// because every row is checked before the first batch is applied.
#[sqlx::test]
async fn a_big_csv_streams_and_a_late_malformed_row_changes_nothing(
    _p: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let (db, url) = setup(opts).await;
    let n = 12_345;
    let mut csv = String::from("id,email,name,groups\n");
    for i in 0..n {
        csv.push_str(&format!("rec{i:06},p{i}@bulk.example,Person {i},staff\n"));
    }
    let before = db_state(&db).await;
    let bad = push(
        &url,
        &fixture(
            "big.csv",
            &format!("{csv}recBad,bad@bulk.example,Bad,staff,extra\n"),
        ),
        &[],
    );
    assert_eq!(bad.code, 1, "{}", bad.err);
    assert!(bad.err.contains("not valid CSV"), "{}", bad.err);
    assert!(bad.err.contains("nothing was changed"), "{}", bad.err);
    assert_eq!(db_state(&db).await, before);

    let good = push(&url, &fixture("big.csv", &csv), &[]);
    assert_eq!(good.code, 0, "{}", good.err);
    assert_eq!(counts(&good.out), expect([n as u64, 0, 0, 0, 0]));
    assert!(
        good.err.contains(&format!("{n}/{n} rows")),
        "progress on stderr: {}",
        good.err
    );
    let (rows, jobs, events): (i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from roster), (select count(*) from provisioning_jobs),
                (select count(*) from inbound_events where source = 'import')",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!((rows, jobs, events), (n, n, n));
    // Pushing it again changes nothing: every row is unchanged.
    let again = push(&url, &fixture("big.csv", &csv), &[]);
    assert_eq!(counts(&again.out), expect([0, 0, 0, n as u64, 0]));
}
