//! The binary itself: bad configuration stops start-up with one clear
//! line, and `sign` produces headers the service and the reference accept.

use crate::helpers::*;
use sqlx::PgPool;
use std::io::Write;
use std::process::{Command, Output, Stdio};

pub(crate) fn rosterd(args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Exit code 2 and exactly one line on stderr, which must mention `needle`.
pub(crate) fn assert_config_error(out: &Output, needle: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(needle), "{needle} in {stderr}");
    stderr
}

pub(crate) const DB: (&str, &str) = ("DATABASE_URL", "postgres://rosterd@127.0.0.1:1/rosterd");

#[test]
fn short_secret_stops_start_up_without_echoing_it() {
    let out = rosterd(
        &["serve"],
        &[DB, ("AIRTABLE_USER_SYNC_SECRET", "tiny-s3cr3t")],
        b"",
    );
    let line = assert_config_error(&out, "AIRTABLE_USER_SYNC_SECRET");
    assert!(line.contains("at least 16 bytes"), "{line}");
    assert!(!line.contains("tiny-s3cr3t"), "{line}");
}

#[test]
fn bad_flag_value_stops_start_up() {
    let env = [
        DB,
        ("AIRTABLE_USER_SYNC_SECRET", SECRET),
        ("USER_WEBHOOK_SYNC_ENABLED", "maybe"),
    ];
    let line = assert_config_error(&rosterd(&["serve"], &env, b""), "USER_WEBHOOK_SYNC_ENABLED");
    assert!(line.contains("maybe"), "{line}");
    let bad_port = rosterd(&["serve", "--bind-addr", "localhost:http"], &env[..2], b"");
    assert_config_error(&bad_port, "BIND_ADDR");
}

#[test]
fn bad_overload_settings_stop_start_up() {
    for (var, value, says) in [
        ("LOOKUP_PROVISION_CONCURRENCY", "0", "at least 1"),
        ("LOOKUP_PROVISION_CONCURRENCY", "5000", "at most 1000"),
        ("LOOKUP_PROVISION_CONCURRENCY", "many", "many"),
        ("LOOKUP_QUEUE_WAIT_MS", "600000", "at most 60000"),
        ("LOOKUP_QUEUE_WAIT_MS", "-1", "-1"),
    ] {
        let env = [DB, ("AIRTABLE_USER_SYNC_SECRET", SECRET), (var, value)];
        let line = assert_config_error(&rosterd(&["serve"], &env, b""), var);
        assert!(line.contains(says), "{var}={value}: {line}");
    }
}

#[test]
fn missing_database_url_stops_start_up() {
    let out = rosterd(&["serve"], &[("AIRTABLE_USER_SYNC_SECRET", SECRET)], b"");
    assert_config_error(&out, "DATABASE_URL");
    let out = rosterd(&["migrate"], &[], b"");
    assert_config_error(&out, "DATABASE_URL");
}

#[test]
fn webhook_on_without_a_secret_stops_start_up() {
    let out = rosterd(&["serve"], &[DB], b"");
    assert_config_error(&out, "AIRTABLE_USER_SYNC_SECRET");
}

#[test]
fn malformed_role_map_stops_start_up() {
    let env = [
        DB,
        ("AIRTABLE_USER_SYNC_SECRET", SECRET),
        ("ROLE_MAP", "admins=admin,ops"),
    ];
    assert_config_error(&rosterd(&["serve"], &env, b""), "ROLE_MAP");
}

#[test]
fn unreachable_database_is_a_runtime_error_that_hides_the_url() {
    let env = [
        (
            "DATABASE_URL",
            "postgres://rosterd:hunter2-password@127.0.0.1:1/rosterd",
        ),
        ("AIRTABLE_USER_SYNC_SECRET", SECRET),
        ("DATABASE_ACQUIRE_TIMEOUT_SECS", "1"),
    ];
    let out = rosterd(&["serve"], &env, b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot connect to the database"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

fn headers_of(out: &Output) -> Vec<(String, String)> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(": ").expect("Name: value");
            (k.to_lowercase(), v.to_owned())
        })
        .collect()
}

#[sqlx::test]
async fn sign_output_is_accepted_by_the_service(db: PgPool) {
    let app = TestApp::spawn(db).await;
    let body = serde_json::to_vec(&upsert_event(
        "user.created",
        "evt_cli",
        "2026-11-22T10:00:00Z",
        "recA",
        "a@x.io",
    ))
    .unwrap();
    for (scheme, secret) in [("plain", SECRET), ("standard", WHSEC)] {
        let headers = headers_of(&rosterd(
            &["sign", "--secret", secret, "--scheme", scheme],
            &[],
            &body,
        ));
        let refs: Vec<(&str, String)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let resp = app.post_inbound(&body, &refs).await;
        assert_eq!(resp.status(), 200, "{scheme}");
    }
}

#[test]
fn sign_standard_matches_the_reference_and_reads_the_env_secret() {
    let body = br#"{"hello":"world"}"#;
    let out = rosterd(
        &[
            "sign",
            "--scheme",
            "standard",
            "--id",
            "msg_fixed",
            "--timestamp",
            "1700000000",
        ],
        &[("AIRTABLE_USER_SYNC_SECRET", WHSEC)],
        body,
    );
    let h = headers_of(&out);
    let expected = standardwebhooks::Webhook::new(WHSEC)
        .unwrap()
        .sign("msg_fixed", 1_700_000_000, body)
        .unwrap();
    assert_eq!(
        h,
        [
            ("webhook-id".to_string(), "msg_fixed".to_string()),
            ("webhook-timestamp".into(), "1700000000".into()),
            ("webhook-signature".into(), expected),
        ]
    );
    let bad = rosterd(&["sign", "--secret", "short"], &[], body);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--secret"));
}

#[test]
fn bad_scim_tokens_stop_start_up_without_echoing_them() {
    for (value, says) in [
        ("okta:short-token-0123456789", "at least 32 characters"),
        ("no-name-given-0123456789abcdef0123456789", "name:token"),
        (
            "a:0123456789abcdef0123456789abcdef,a:0123456789abcdef0123456789abcdeX",
            "a",
        ),
    ] {
        let env = [
            DB,
            ("AIRTABLE_USER_SYNC_SECRET", SECRET),
            ("SCIM_TOKENS", value),
        ];
        let line = assert_config_error(&rosterd(&["serve"], &env, b""), "SCIM_TOKENS");
        assert!(line.contains(says), "{value}: {line}");
        assert!(!line.contains("0123456789"), "{line}");
    }
}

/// `rosterd invite resend|revoke EMAIL`: the person's latest invitation;
/// without SMTP the resend prints the link once. Bad input changes nothing.
#[sqlx::test]
async fn invite_resend_and_revoke_from_the_shell(
    _p: sqlx::postgres::PgPoolOptions,
    opts: sqlx::postgres::PgConnectOptions,
) {
    let db = crate::helpers::migrated(&opts).await;
    let url = crate::helpers::url_of(&opts);
    sqlx::query(
        "insert into invitations (user_id, email, expires_at)
         values (gen_random_uuid(), 'ada@acme.example', now() + interval '1 day')",
    )
    .execute(&db)
    .await
    .unwrap();
    let on = [
        ("DATABASE_URL", url.as_str()),
        ("INVITATIONS_ENABLED", "true"),
        ("INVITE_BASE_URL", "https://rosterd.acme.example"),
        ("INVITE_REDIRECT_URL", "https://app.acme.example/"),
    ];
    let state = || async {
        sqlx::query_as::<_, (String, i32)>("select state, round from invitations")
            .fetch_one(&db)
            .await
            .unwrap()
    };

    // Refused: a malformed email, invitations off, nobody with that email.
    assert_config_error(
        &rosterd(&["invite", "resend", "not-an-email"], &on, b""),
        "EMAIL",
    );
    let off = [("DATABASE_URL", url.as_str())];
    assert_config_error(
        &rosterd(&["invite", "revoke", "ada@acme.example"], &off, b""),
        "INVITATIONS_ENABLED",
    );
    let nobody = rosterd(&["invite", "revoke", "grace@acme.example"], &on, b"");
    assert_eq!(nobody.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("has no invitation"));
    assert_eq!(state().await, ("pending".into(), 1), "nothing changed");

    let resent = rosterd(&["invite", "resend", "ADA@acme.example"], &on, b"");
    let out = String::from_utf8_lossy(&resent.stdout);
    assert!(resent.status.success(), "{out}");
    assert!(
        out.contains(
            "link (shown once; send it to the person): https://rosterd.acme.example/invite/"
        ),
        "{out}"
    );
    assert_eq!(state().await, ("pending".into(), 2));
    let revoked = rosterd(&["invite", "revoke", "ada@acme.example"], &on, b"");
    assert!(revoked.status.success());
    assert_eq!(state().await, ("revoked".into(), 2));
    let twice = rosterd(&["invite", "revoke", "ada@acme.example"], &on, b"");
    assert_eq!(twice.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&twice.stderr).contains("only pending invitations can be revoked")
    );
    let actor: String =
        sqlx::query_scalar("select actor from audit_log where action = 'invitation.revoke'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(actor.starts_with("cli"), "{actor}");
}
