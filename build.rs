// sqlx's `migrate!` embeds migrations/ at compile time; without this a new
// migration file alone would not trigger a rebuild.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
