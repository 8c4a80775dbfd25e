//! The real binary as production runs it: `rosterd serve` as a child
//! process, the CLI verbs an operator types, and the providers it can be
//! pointed at. For the black-box tests (stress, herd).

use crate::gotrue::{self, GoTrue};
use crate::helpers::*;
use rosterd::provision::provider::local::LocalProvider;
use rosterd::provision::provider::supabase::SupabaseProvider;
use rosterd::provision::provider::AuthProvider;
use serde_json::Value;
use sqlx::PgPool;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// A running `rosterd serve`, killed when dropped.
pub struct Served {
    child: Child,
    pub base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `rosterd serve` on the database at `url` with its defaults, but for the
/// test secret and login token and `vars`; ready when this returns.
pub async fn serve(url: &str, vars: Vec<(&'static str, String)>) -> Served {
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rosterd"));
    cmd.arg("serve")
        .env_clear()
        .env("DATABASE_URL", url)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("AIRTABLE_USER_SYNC_SECRET", SECRET)
        .env("LOGIN_API_TOKENS", LOGIN_TOKEN)
        .env("RUST_LOG", "warn")
        .envs(vars)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let served = Served {
        child: cmd.spawn().unwrap(),
        base: format!("http://127.0.0.1:{port}"),
    };
    wait_ready(&reqwest::Client::new(), &served.base).await;
    served
}

/// What points the binary at the GoTrue stand-in, or at the local provider.
pub fn provider_vars(gotrue: Option<&GoTrue>) -> Vec<(&'static str, String)> {
    match gotrue {
        Some(g) => vec![
            ("AUTH_PROVIDER", "supabase".into()),
            ("SUPABASE_URL", g.url().into()),
            ("SUPABASE_SERVICE_ROLE_KEY", gotrue::KEY.into()),
        ],
        None => vec![("AUTH_PROVIDER", "local".into())],
    }
}

/// A provider for the test to read what the binary wrote.
pub fn reader(gotrue: Option<&GoTrue>, db: &PgPool) -> Arc<dyn AuthProvider> {
    match gotrue {
        Some(g) => Arc::new(
            SupabaseProvider::new(
                g.url(),
                gotrue::KEY.to_string().into(),
                Duration::from_secs(10),
            )
            .unwrap(),
        ),
        None => Arc::new(LocalProvider::new(db.clone())),
    }
}

/// A CLI verb that must succeed; its standard output.
pub async fn cli(args: &[&str], url: &str, vars: Vec<(&'static str, String)>) -> Vec<u8> {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .args(args)
        .env_clear()
        .env("DATABASE_URL", url)
        .envs(vars)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "rosterd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `rosterd provision --dry-run --json`, as an operator runs it: nothing
/// to create, restore, decommission, update or adopt, and nothing failed.
pub async fn assert_no_drift(url: &str, gotrue: Option<&GoTrue>, context: &str) {
    let out = cli(
        &["provision", "--dry-run", "--json"],
        url,
        provider_vars(gotrue),
    )
    .await;
    let report: Value = serde_json::from_slice(&out).unwrap();
    for counter in [
        "created",
        "restored",
        "decommissioned",
        "updated",
        "orphaned",
        "failed",
    ] {
        assert_eq!(report[counter], 0, "{context}: dry run {report}");
    }
}
