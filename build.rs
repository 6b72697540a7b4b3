//! Embeds the SQL migrations (`sql/migrations/NNNN_name.sql`) in the binary,
//! so the schema a build applies is the schema it was built and tested with.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    embed_git_commit();
    let dir = Path::new("sql/migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut migrations = Vec::new();
    for entry in std::fs::read_dir(dir).expect("sql/migrations exists") {
        let path = entry.expect("readable sql/migrations").path();
        println!("cargo:rerun-if-changed={}", path.display());
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(stem) = file.strip_suffix(".sql") else {
            panic!("sql/migrations/{file}: only .sql files belong here");
        };
        let Some((version, name)) = stem.split_once('_') else {
            panic!("sql/migrations/{file}: name it NNNN_description.sql");
        };
        let version: i64 = version
            .parse()
            .unwrap_or_else(|_| panic!("sql/migrations/{file}: {version:?} is not a number"));
        migrations.push((version, name.to_string(), file));
    }
    migrations.sort();
    for pair in migrations.windows(2) {
        assert!(
            pair[0].0 != pair[1].0,
            "sql/migrations: {} and {} have the same version",
            pair[0].2,
            pair[1].2
        );
    }
    let mut out = String::from("/// (version, description, file name, SQL), in order.\npub const MIGRATIONS: &[(i64, &str, &str, &str)] = &[\n");
    // Paths relative to the manifest, resolved when the crate compiles: a
    // target dir shared between checkouts (CI's fresh clones) must not keep
    // pointing at another checkout's files.
    for (version, name, file) in &migrations {
        writeln!(
            out,
            "    ({version}, {name:?}, {file:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/sql/migrations/{file}\"))),"
        )
        .unwrap();
    }
    out.push_str("];\n");
    let target = Path::new(&std::env::var("OUT_DIR").unwrap()).join("migrations.rs");
    std::fs::write(target, out).unwrap();
}

/// `poolside --version` names the commit it was built from (`unknown` outside
/// a git checkout, `+dirty` with uncommitted changes).
fn embed_git_commit() {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let suffix = if dirty { "+dirty" } else { "" };
    println!("cargo:rustc-env=POOLSIDE_GIT_COMMIT={commit}{suffix}");
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={head}");
    }
    if let Some(refs) = git(&["rev-parse", "--git-path", "refs"]) {
        println!("cargo:rerun-if-changed={refs}");
    }
    if let Some(index) = git(&["rev-parse", "--git-path", "index"]) {
        println!("cargo:rerun-if-changed={index}");
    }
}
