//! What the worker benchmarks (benches/provision.rs, benches/invitations.rs)
//! share: their command-line arguments, and a fresh database per level on
//! the same connection settings as the service's worker pool.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

pub fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// Drops and creates `name` on the `DATABASE_URL` server, migrated.
pub async fn fresh_db(url: &str, name: &str, connections: u32) -> PgPool {
    let admin = PgPool::connect(url).await.expect("DATABASE_URL reachable");
    sqlx::query(&format!("drop database if exists {name}"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query(&format!("create database {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    // The same connection settings as the service's worker pool.
    let opts = rosterd::db::worker_options(url.parse::<PgConnectOptions>().unwrap().database(name));
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .connect_with(opts)
        .await
        .unwrap();
    rosterd::db::MIGRATOR.run(&pool).await.unwrap();
    pool
}
