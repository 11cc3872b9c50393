//! docs/architecture.md's crate graph matches the manifests (what `cargo xtask ci` checks
//! first), so a test run already catches a dependency added without its edge.

use std::path::Path;
use std::process::Command;

#[test]
fn the_documented_crate_graph_is_the_manifests_graph() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(out.status.success());
    xtask::tidy::check(root, &String::from_utf8_lossy(&out.stdout)).unwrap();
}
