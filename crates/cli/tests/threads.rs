//! The bits do not depend on the thread count: `retroprop train --threads N` writes the same
//! checkpoint, byte for byte, for N = 1, 2, 3, 4 and 8 (more threads than this machine's two
//! cores included), for the MLP (mini-batch and full batch: split GEMMs and element-wise
//! passes) and the CNN (whose batch loop runs on rayon's N threads).

use std::path::PathBuf;

mod common;
use common::ok;

fn checkpoint(name: &str, threads: usize, flags: &[&str]) -> Vec<u8> {
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "retroprop-threads-{name}-{threads}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let threads = threads.to_string();
    let mut args = vec![
        "train",
        "--threads",
        &threads,
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(flags);
    ok(&args);
    let bytes = std::fs::read(dir.join("model.ckpt")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

fn same_bits_at_every_thread_count(name: &str, flags: &[&str]) {
    let one = checkpoint(name, 1, flags);
    for threads in [2, 3, 4, 8] {
        assert!(
            checkpoint(name, threads, flags) == one,
            "{name}: the checkpoint trained on {threads} threads differs from the one-thread one"
        );
    }
}

#[test]
fn mlp_mini_batch() {
    same_bits_at_every_thread_count("mlp", &["--limit", "1500", "--epochs", "1"]);
}

#[test]
fn mlp_full_batch() {
    same_bits_at_every_thread_count(
        "mlp-full",
        &["--full-batch", "--limit", "1500", "--epochs", "2"],
    );
}

#[test]
fn cnn() {
    same_bits_at_every_thread_count(
        "cnn",
        &["--model", "cnn", "--limit", "160", "--epochs", "1"],
    );
}
