//! The workspace's layering and the house rules a reviewer would otherwise
//! check by eye: which crate may depend on which (as `cargo metadata` reads
//! the manifests), that the domain stays free of I/O, and that source files
//! keep to the conventions in `docs/architecture.md` (no SQL built with
//! `format!`, no state spelt as a string where the domain has a type,
//! comments that stand alone, long files that say why they are long).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The workspace root (two levels above this package).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// Each workspace package's normal (non-dev, non-build) dependencies.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

fn ours(deps: &BTreeSet<String>) -> BTreeSet<&str> {
    deps.iter()
        .map(String::as_str)
        .filter(|d| d.starts_with("heliograph-"))
        .collect()
}

#[test]
fn each_crate_depends_only_on_the_layers_below_it() {
    let all = dependencies();
    let allowed: &[(&str, &[&str])] = &[
        ("heliograph-domain", &[]),
        ("heliograph-jobs", &[]),
        ("heliograph-store", &["heliograph-domain"]),
        ("heliograph-auth", &["heliograph-domain"]),
        ("heliograph-notify", &["heliograph-domain"]),
        ("heliograph-web", &["heliograph-domain"]),
        ("heliograph-runtime", &["heliograph-domain"]),
    ];
    for (package, may) in allowed {
        let deps = ours(&all[*package]);
        let extra: Vec<_> = deps.iter().filter(|d| !may.contains(d)).collect();
        assert!(
            extra.is_empty(),
            "{package} may depend on {may:?} of ours, but also depends on {extra:?}"
        );
    }
    // The worker renders pages only to export them, and then with the
    // api's own code (`public_pages`), so that the bytes it publishes are
    // the api's: never with heliograph-web directly.
    let worker = ours(&all["heliograph-worker"]);
    assert!(
        !worker.contains("heliograph-web"),
        "the worker renders pages only through heliograph-api's public_pages: it must not depend on heliograph-web"
    );
}

#[test]
fn the_domain_has_no_io_dependency() {
    let all = dependencies();
    let io = [
        "sqlx",
        "tokio",
        "redis",
        "reqwest",
        "lettre",
        "actix-web",
        "apalis",
        "hyper",
    ];
    let found: Vec<_> = all["heliograph-domain"]
        .iter()
        .filter(|d| io.contains(&d.as_str()))
        .collect();
    assert!(found.is_empty(), "heliograph-domain depends on {found:?}");
}

/// Every `.rs` file under `crates/` and `services/`, with its text.
fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    for top in ["crates", "services"] {
        walk(&root().join(top), &mut out);
    }
    assert!(out.len() > 50, "found only {} source files", out.len());
    out
}

/// Test code: integration tests, and modules named or marked as tests.
fn is_test(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    path.components().any(|c| c.as_os_str() == "tests")
        || name == "tests.rs"
        || name.ends_with("_tests.rs")
}

/// The test kit names databases in DDL (`create database …`), where no
/// parameter can stand for an identifier; it serves tests only.
fn is_test_infrastructure(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == "testkit")
}

#[test]
fn no_sql_is_built_with_format() {
    let offenders: Vec<_> = sources()
        .into_iter()
        .filter(|(p, _)| !is_test(p) && !is_test_infrastructure(p))
        .filter(|(_, text)| text.contains("AssertSqlSafe"))
        .map(|(path, _)| path)
        .collect();
    assert!(
        offenders.is_empty(),
        "dynamic SQL is built with sqlx::QueryBuilder and bound parameters, not format!: {offenders:?}"
    );
}

#[test]
fn states_are_compared_as_types_not_strings() {
    let spelt = [
        "kind == \"maintenance\"",
        "kind == \"incident\"",
        "scope == \"read_write\"",
        "scope == \"read\"",
        "status == \"pending\"",
        "status == \"sent\"",
        "status == \"dead\"",
        "role == \"owner\"",
    ];
    let mut offenders = Vec::new();
    for (path, text) in sources().into_iter().filter(|(p, _)| !is_test(p)) {
        for needle in spelt {
            if text.contains(needle) {
                offenders.push(format!("{}: {needle}", path.display()));
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:#?}");
}

#[test]
fn comments_stand_alone() {
    let outside = [
        "shared/",
        "DESIGN.md",
        "STYLE.md",
        "dependencies.md",
        "statuspage-api.md",
        "issue #",
        "Issue #",
    ];
    let mut offenders = Vec::new();
    for (path, text) in sources() {
        for (n, line) in text.lines().enumerate() {
            let comment = line.trim_start();
            if !comment.starts_with("//") {
                continue;
            }
            if let Some(needle) = outside.iter().find(|needle| comment.contains(*needle)) {
                offenders.push(format!("{}:{}: {needle}", path.display(), n + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "comments name files outside the repository or issue numbers: {offenders:#?}"
    );
}

#[test]
fn modules_say_what_they_own_and_long_files_say_why() {
    let mut unexplained = Vec::new();
    let mut undocumented = Vec::new();
    for (path, text) in sources().into_iter().filter(|(p, _)| !is_test(p)) {
        let opening: Vec<&str> = text
            .lines()
            .take_while(|l| l.starts_with("//!") || l.trim().is_empty())
            .collect();
        if !opening.iter().any(|l| l.starts_with("//!")) {
            undocumented.push(path.display().to_string());
        }
        if text.lines().count() > 700 {
            let says_why = opening
                .iter()
                .any(|l| l.contains("long because") || l.contains("700 lines"));
            if !says_why {
                unexplained.push(path.display().to_string());
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "modules without an opening //! comment: {undocumented:#?}"
    );
    assert!(
        unexplained.is_empty(),
        "files over 700 lines whose opening comment does not say why they are long: {unexplained:#?}"
    );
}
