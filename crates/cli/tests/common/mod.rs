//! What the program's integration tests share: running it as a user does.

#![allow(dead_code)] // each test file uses part of it

use std::process::{Command, Output};

/// Runs `retroprop` with `args` from the crate's directory.
pub fn retroprop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_retroprop"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

/// Runs `retroprop` and requires success; returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = retroprop(args);
    assert!(
        out.status.success(),
        "retroprop {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
