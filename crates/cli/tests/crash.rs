//! Crash consistency: a training run killed (SIGKILL) at many moments, most of them during its
//! writes, leaves its directory holding one whole run — the previous one or the new one, never
//! a mix of their files. The program's fault-injection variable stretches each file write by
//! 40 ms so that the kills land inside the write phase, not only before or after it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const KILLS: u32 = 24;

fn train(out: &Path, epochs: &str, seed: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_retroprop"));
    cmd.args([
        "train", "--limit", "600", "--hidden", "8", "--epochs", epochs, "--seed", seed, "--out",
    ])
    .arg(out)
    .current_dir(env!("CARGO_MANIFEST_DIR"))
    .env("RETROPROP_FAULT_INJECTION_WRITE_PAUSE_MS", "40")
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    cmd
}

/// The deterministic files of a run (metrics.csv holds timings): model and curves, and the
/// number of epoch lines of metrics.csv.
fn snapshot(dir: &Path) -> Option<(Vec<u8>, Vec<u8>, usize)> {
    let model = std::fs::read(dir.join("model.ckpt")).ok()?;
    let curves = std::fs::read(dir.join("curves.svg")).ok()?;
    let metrics = std::fs::read_to_string(dir.join("metrics.csv")).ok()?;
    Some((model, curves, metrics.lines().count().saturating_sub(1)))
}

fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("retroprop-crash-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_run_killed_at_any_moment_leaves_one_whole_run() {
    let base = fresh("base");
    // the old run: 1 epoch, seed 1; the new one: 2 epochs, seed 2 (its files are deterministic)
    let old_dir = base.join("old");
    assert!(train(&old_dir, "1", "1").status().unwrap().success());
    let new_dir = base.join("new");
    let started = Instant::now();
    assert!(train(&new_dir, "2", "2").status().unwrap().success());
    let duration = started.elapsed();
    let old = snapshot(&old_dir).expect("old run");
    let new = snapshot(&new_dir).expect("new run");
    assert_eq!((old.2, new.2), (1, 2));

    let (mut saw_old, mut saw_new) = (0, 0);
    let run = base.join("run");
    // kill between 40 % and 130 % of a run's duration: the writes come at its end; then, if a
    // loaded machine slowed the runs so that one outcome never came, later (or earlier) kills
    // until it does — every kill is checked the same way
    let schedule = (0..KILLS)
        .map(|k| 0.4 + 0.9 * f64::from(k) / f64::from(KILLS - 1))
        .chain([2.0, 3.0, 5.0, 0.2, 0.1]);
    for (k, fraction) in schedule.enumerate() {
        let extra = k >= KILLS as usize;
        if extra && ((fraction > 1.0 && saw_new > 0) || (fraction < 1.0 && saw_old > 0)) {
            continue;
        }
        // start from the old run, whole
        let _ = std::fs::remove_dir_all(&run);
        std::fs::create_dir_all(&run).unwrap();
        for f in ["model.ckpt", "metrics.csv", "curves.svg"] {
            std::fs::copy(old_dir.join(f), run.join(f)).unwrap();
        }
        let at = duration.mul_f64(fraction);
        let mut child = train(&run, "2", "2").spawn().unwrap();
        std::thread::sleep(at);
        let _ = child.kill();
        let _ = child.wait();
        let found =
            snapshot(&run).unwrap_or_else(|| panic!("kill {k} at {at:?}: a file is missing"));
        if found == old {
            saw_old += 1;
        } else if found == new {
            saw_new += 1;
        } else {
            panic!(
                "kill {k} at {at:?}: the directory mixes runs (model of the {} run, curves of the {} run, {} epochs in metrics.csv)",
                if found.0 == old.0 {
                    "old"
                } else if found.0 == new.0 {
                    "new"
                } else {
                    "neither"
                },
                if found.1 == old.1 {
                    "old"
                } else if found.1 == new.1 {
                    "new"
                } else {
                    "neither"
                },
                found.2
            );
        }
    }
    // the kills spanned both outcomes
    assert!(
        saw_old > 0 && saw_new > 0,
        "old {saw_old}, new {saw_new} of {KILLS}"
    );
    assert!(duration < Duration::from_secs(60));
    let _ = std::fs::remove_dir_all(&base);
}
