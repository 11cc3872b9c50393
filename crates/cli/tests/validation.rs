//! `train --val-split`, `--patience`, `--augment` and `--model resnet` as a user runs them: the
//! validation figures are in metrics.csv and the JSON, the best model is kept as best.ckpt, and
//! early stopping stops where the recorded validation losses say it must.

use std::path::PathBuf;

mod common;
use common::{ok, retroprop};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("retroprop-val-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The validation losses of metrics.csv, one per epoch.
fn val_losses(dir: &std::path::Path) -> Vec<f64> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().ends_with(",val_loss,val_accuracy"));
    lines
        .map(|l| l.split(',').nth(8).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn the_best_model_is_kept_and_early_stopping_follows_the_validation_losses() {
    let out = temp_dir("early");
    // a high rate on a small MLP: the validation loss goes up and down
    let json = ok(&[
        "train",
        "--epochs",
        "8",
        "--limit",
        "600",
        "--hidden",
        "8",
        "--lr",
        "0.8",
        "--lr-step",
        "0",
        "--val-split",
        "0.2",
        "--patience",
        "2",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["settings"]["val_images"], 120);
    assert_eq!(doc["settings"]["train_images"], 480);
    let losses = val_losses(&out);
    // replay the rule: stop after 2 epochs in a row without a new best
    let (mut best, mut waited, mut stop_at) = (f64::INFINITY, 0, None);
    for (e, &l) in losses.iter().enumerate() {
        if l < best {
            (best, waited) = (l, 0);
        } else {
            waited += 1;
            if waited == 2 {
                stop_at = Some(e + 1);
                break;
            }
        }
    }
    assert_eq!(stop_at, Some(losses.len()), "{losses:?}: must stop here");
    assert!(losses.len() < 8, "these settings stop early: {losses:?}");
    assert_eq!(doc["stopped_early"], true);
    let best_epoch = losses
        .iter()
        .enumerate()
        .fold(
            (0, f64::INFINITY),
            |b, (e, &l)| if l < b.1 { (e + 1, l) } else { b },
        )
        .0;
    assert_eq!(doc["best"]["epoch"], best_epoch);
    // best.ckpt is a model that evaluates, and not the last one (which did not improve)
    let test_loss = |file: &str| {
        let path = out.join(file);
        let doc = ok(&["eval", "--json", "--checkpoint", path.to_str().unwrap()]);
        serde_json::from_str::<serde_json::Value>(&doc).unwrap()["test_loss"]
            .as_f64()
            .unwrap()
    };
    assert_ne!(test_loss("best.ckpt"), test_loss("model.ckpt"));
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn bad_validation_flags_are_refused_with_a_reason() {
    let e = retroprop(&["train", "--patience", "2", "--limit", "100"]);
    assert!(!e.status.success());
    assert!(String::from_utf8_lossy(&e.stderr).contains("--val-split"));
    for bad in ["0", "1", "1.5", "-0.1"] {
        let e = retroprop(&["train", "--val-split", bad, "--limit", "100"]);
        let err = String::from_utf8_lossy(&e.stderr).into_owned();
        assert!(
            !e.status.success() && err.contains("fraction"),
            "{bad}: {err}"
        );
    }
    let e = retroprop(&["train", "--val-split", "0.9999", "--limit", "6"]);
    let err = String::from_utf8_lossy(&e.stderr).into_owned();
    assert!(
        !e.status.success() && err.contains("none to train on"),
        "{err}"
    );
}

#[test]
fn the_resnet_trains_with_augmentation_and_its_summary_shows_its_blocks() {
    let summary = ok(&["summary", "--model", "resnet"]);
    for needle in [
        "BatchNorm2d",
        "Residual",
        "skip + 5 layers",
        "116,602",
        "64×1×1",
    ] {
        assert!(summary.contains(needle), "missing {needle}:\n{summary}");
    }
    let out = temp_dir("resnet");
    let text = ok(&[
        "train",
        "--model",
        "resnet",
        "--epochs",
        "2",
        "--limit",
        "300",
        "--augment",
        "--lr",
        "0.05",
        "--schedule",
        "step",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(text.contains("test accuracy"), "{text}");
    // the checkpoint carries the running statistics and rebuilds from its own description
    let eval = ok(&[
        "eval",
        "--checkpoint",
        out.join("model.ckpt").to_str().unwrap(),
    ]);
    assert!(eval.contains("accuracy"), "{eval}");
    let _ = std::fs::remove_dir_all(out);
}
