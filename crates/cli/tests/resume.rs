//! `retroprop train --resume`: a run stopped after 2 epochs and resumed to 5 leaves the
//! checkpoint a 5-epoch run writes in one go, byte for byte, and the same metrics.

use std::path::{Path, PathBuf};

mod common;
use common::retroprop;

use common::ok;

fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("retroprop-resume-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// metrics.csv without its two timing columns (7 and 8 of 10).
fn metrics(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    text.lines()
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            assert_eq!(cells.len(), 10, "{l}");
            [&cells[..6], &cells[8..]].concat().join(",")
        })
        .collect()
}

fn resume_matches_one_go(name: &str, flags: &[&str]) {
    let (whole, parts) = (
        fresh(&format!("{name}-whole")),
        fresh(&format!("{name}-parts")),
    );
    let args = |epochs: &'static str, out: &Path| -> Vec<String> {
        let mut a: Vec<String> = ["train", "--epochs", epochs, "--out"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.push(out.to_str().unwrap().to_string());
        a.extend(flags.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>| ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    run(args("5", &whole));
    run(args("2", &parts));
    // more threads for the second half: the bits do not depend on the thread count
    ok(&[
        "train",
        "--epochs",
        "5",
        "--threads",
        "2",
        "--resume",
        parts.to_str().unwrap(),
    ]);
    let (a, b) = (
        std::fs::read(whole.join("model.ckpt")).unwrap(),
        std::fs::read(parts.join("model.ckpt")).unwrap(),
    );
    assert!(
        a == b,
        "{name}: the resumed checkpoint differs from the one-go run"
    );
    assert_eq!(metrics(&whole), metrics(&parts), "{name}");
    let best = |dir: &Path| std::fs::read(dir.join("best.ckpt")).ok();
    assert!(
        best(&whole) == best(&parts),
        "{name}: the best checkpoints differ"
    );
    assert_eq!(metrics(&parts).len(), 6, "{name}: header and five epochs");
    for dir in [whole, parts] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn a_resumed_mlp_run_is_byte_identical_to_one_run() {
    resume_matches_one_go(
        "mlp",
        &["--limit", "600", "--hidden", "8", "--lr-step", "2"],
    );
}

#[test]
fn a_resumed_adamw_run_with_clipping_and_a_cosine_schedule_is_byte_identical_to_one_run() {
    resume_matches_one_go(
        "adamw",
        &[
            "--limit",
            "600",
            "--hidden",
            "8",
            "--optimizer",
            "adamw",
            "--clip-norm",
            "1",
            "--schedule",
            "cosine",
            "--warmup",
            "1",
        ],
    );
}

#[test]
fn a_resumed_resnet_run_with_augmentation_and_validation_is_byte_identical_to_one_run() {
    resume_matches_one_go(
        "resnet",
        &[
            "--model",
            "resnet",
            "--limit",
            "160",
            "--batch-size",
            "32",
            // a schedule that does not depend on the total: one-cycle over 2 epochs is not the
            // first part of one-cycle over 5
            "--schedule",
            "step",
            "--lr",
            "0.05",
            "--augment",
            "--val-split",
            "0.25",
            "--threads",
            "1",
        ],
    );
}

#[test]
fn a_resumed_cnn_run_is_byte_identical_to_one_run() {
    resume_matches_one_go(
        "cnn",
        &["--model", "cnn", "--limit", "240", "--threads", "1"],
    );
}

#[test]
fn resume_keeps_the_runs_settings_and_says_what_is_missing() {
    let dir = fresh("refusals");
    let d = dir.to_str().unwrap();
    ok(&[
        "train", "--epochs", "1", "--limit", "300", "--hidden", "4", "--out", d,
    ]);
    let err = |args: &[&str]| {
        let out = retroprop(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let text = err(&["train", "--resume", d]);
    assert!(text.contains("give --epochs"), "{text}");
    let text = err(&["train", "--resume", d, "--epochs", "1"]);
    assert!(text.contains("more epochs than 1"), "{text}");
    let text = err(&["train", "--resume", d, "--epochs", "3", "--lr", "0.1"]);
    assert!(text.contains("--lr"), "{text}");
    let missing = dir.join("nothing-here");
    let text = err(&[
        "train",
        "--resume",
        missing.to_str().unwrap(),
        "--epochs",
        "3",
    ]);
    assert!(text.contains("model.ckpt"), "{text}");
    let _ = std::fs::remove_dir_all(dir);
}
