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
            "flow.yaml",
            "[{id: recX, email: x@example.com}]\n",
            "not a flow list",
        ),
        (
            "late.yaml",
            "- id: recX\n  email: x@example.com\nid: recY\n",
            "line 3: the YAML must be a list of people",
        ),
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

/// A big roster: the `bad` file (a malformed row near its end) changes
/// nothing, because every row is checked before the first batch is
/// applied, and its error contains `needle`; the `good` one of `n` rows is
/// applied in batches with progress on stderr, and pushing it again
/// changes nothing.
async fn push_big(
    db: &PgPool,
    url: &str,
    name: &str,
    (good, bad): (&str, &str),
    n: i64,
    needle: &str,
) {
    let before = db_state(db).await;
    let r = push(url, &fixture(name, bad), &[]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(r.err.contains(needle), "{}", r.err);
    assert!(r.err.contains("nothing was changed"), "{}", r.err);
    assert_eq!(db_state(db).await, before);

    let file = fixture(name, good);
    let r = push(url, &file, &[]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(counts(&r.out), expect([n as u64, 0, 0, 0, 0]));
    assert!(
        r.err.contains(&format!("{n}/{n} rows")),
        "progress on stderr: {}",
        r.err
    );
    let (rows, jobs, events): (i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from roster), (select count(*) from provisioning_jobs),
                (select count(*) from inbound_events where source = 'import')",
    )
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!((rows, jobs, events), (n, n, n));
    let again = push(url, &file, &[]);
    assert_eq!(again.code, 0, "{}", again.err);
    assert_eq!(counts(&again.out), expect([0, 0, 0, n as u64, 0]));
}

/// A big CSV, its malformed row at the very end.
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
    let bad = format!("{csv}recBad,bad@bulk.example,Bad,staff,extra\n");
    push_big(&db, &url, "big.csv", (&csv, &bad), n, "not valid CSV").await;
}

#[sqlx::test]
async fn yaml_push_reads_markers_comments_and_nested_lists(
    _p: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let (db, url) = setup(opts).await;
    let yaml = "\
# exported from HR
---
- id: recA
  email: ada@example.com
  # the analytical engine team
  groups:
    - engineering

    - admins
  name: >-
    Ada
    Lovelace

# former staff
- id: recB
  email: grace@example.com
  status: disabled
- {id: recC, email: linus@example.com, groups: [ops]}
...
";
    let r = push(&url, &fixture("roster.yml", yaml), &[]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert_eq!(counts(&r.out), expect([3, 0, 0, 0, 0]));
    let rows: Vec<(String, Option<String>, String, Vec<String>)> =
        sqlx::query_as("select id, name, status, groups from roster order by id")
            .fetch_all(&db)
            .await
            .unwrap();
    let groups = |g: &[&str]| g.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        rows,
        [
            (
                "recA".into(),
                Some("Ada Lovelace".into()),
                "active".into(),
                groups(&["engineering", "admins"])
            ),
            ("recB".into(), None, "disabled".into(), groups(&[])),
            ("recC".into(), None, "active".into(), groups(&["ops"])),
        ]
    );
}

/// A YAML file streams like a CSV, a person at a time.
#[sqlx::test]
async fn a_big_yaml_streams_and_a_late_malformed_item_changes_nothing(
    _p: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let (db, url) = setup(opts).await;
    let n = 12_345;
    let person = |i: i64| {
        format!("- id: rec{i:06}\n  email: p{i}@bulk.example\n  name: Person {i}\n  groups:\n    - staff\n")
    };
    let header = "---\n# bulk\n";
    // Two people before the end; each takes 5 lines after the header's 2.
    let bad_at = n - 2;
    let bad_line = 2 + 5 * bad_at + 1;
    let mut good = String::from(header);
    let mut bad = String::from(header);
    for i in 0..n {
        if i == bad_at {
            bad.push_str("- id: recBad\n  email: [unclosed\n");
        }
        good.push_str(&person(i));
        bad.push_str(&person(i));
    }
    let needle = format!("not valid YAML in the person on line {bad_line}: ");
    push_big(&db, &url, "big.yaml", (&good, &bad), n, &needle).await;
    let last: (Vec<String>, String) =
        sqlx::query_as("select groups, name from roster where id = 'rec012344'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(
        last,
        (vec!["staff".to_string()], "Person 12344".to_string())
    );
}

/// Rows that end short of the count taken of them (the file changed
/// between its two reads) prune nothing: the missing people are not gone.
#[sqlx::test]
async fn rows_short_of_their_count_prune_nothing(db: PgPool) {
    use rosterd::roster::import::{import, Row};
    let roles = config().roles;
    let rules = rosterd::event::EventRules::default();
    let row = |line, id: &str| Row {
        line,
        fields: serde_json::json!({"id": id, "email": format!("{id}@example.com")})
            .as_object()
            .unwrap()
            .clone(),
    };
    let both = vec![row(1, "recA"), row(2, "recB")];
    let report = import(&db, &roles, &rules, both, 2, true, false)
        .await
        .unwrap();
    assert_eq!(report.created, 2);
    let before = db_state(&db).await;

    let err = import(&db, &roles, &rules, vec![row(1, "recA")], 2, true, false)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("changed while it was read"),
        "{err}"
    );
    assert_eq!(db_state(&db).await, before, "recB is still there");
}
