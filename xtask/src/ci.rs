//! `cargo xtask ci`: everything CI runs, cheapest first, each step a command a developer can
//! run alone. `.ci/run` installs the toolchain components and calls this.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use crate::cargo;

/// One step: a name and the command it runs.
struct Step {
    name: &'static str,
    command: Command,
}

fn step(name: &'static str, args: &[&str]) -> Step {
    let mut command = cargo();
    command.args(args);
    Step { name, command }
}

/// The repository root (xtask's parent directory).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the repository")
        .to_path_buf()
}

const DOWNSTREAM: &str = "examples/downstream/Cargo.toml";

/// The steps, in order.
fn steps() -> Vec<Step> {
    let target = root().join("target");
    let downstream = |name, args: &[&str]| {
        // `--manifest-path` right after the subcommand, before any `--`
        let (sub, rest) = args.split_first().expect("a subcommand");
        let mut s = step(name, &[sub, "--manifest-path", DOWNSTREAM]);
        s.command.args(rest);
        // the workspace's target directory: its compiled dependencies are shared
        s.command.env("CARGO_TARGET_DIR", &target);
        s
    };
    let mut docs = step("docs", &["doc", "--workspace", "--no-deps"]);
    docs.command.env("RUSTDOCFLAGS", "-D warnings");
    let mut fuzz = Command::new("bash");
    fuzz.args(["fuzz/run.sh", "20"]);
    let mut mpi = Command::new("bash");
    mpi.arg(".ci/distributed.sh");
    vec![
        step("format", &["fmt", "--all", "--", "--check"]),
        downstream("format (downstream example)", &["fmt", "--", "--check"]),
        step(
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        step("tests (the README's command)", &["test", "--workspace"]),
        docs,
        step("verify", &["xtask", "verify", "--no-color"]),
        step(
            "example: a custom network composed downstream",
            &[
                "run",
                "-q",
                "-p",
                "retroprop-models",
                "--example",
                "custom_network",
            ],
        ),
        downstream(
            "downstream crate: clippy",
            &["clippy", "--all-targets", "-q", "--", "-D", "warnings"],
        ),
        downstream(
            "downstream crate: its layer registered, trained, saved, loaded",
            &["test", "-q"],
        ),
        downstream("downstream crate: its program", &["run", "-q"]),
        Step {
            name: "fuzz targets, 20 s each (skipped without cargo-fuzz)",
            command: fuzz,
        },
        Step {
            name: "distributed training over MPI on loopback (.ci/distributed.sh)",
            command: mpi,
        },
    ]
}

/// Runs `cargo metadata` and the tidy checks.
fn tidy() -> Result<(), String> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root())
        .output()
        .map_err(|e| format!("could not run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    xtask::tidy::check(&root(), &String::from_utf8_lossy(&out.stdout))
}

/// The training smoke test: the homework MLP, one epoch on 10 000 MNIST images, must beat
/// 85 % test accuracy (chance is 10 %).
fn smoke() -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("retroprop-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = cargo()
        .args(["run", "-q", "--release", "-p", "retroprop", "--"])
        .args([
            "train", "--limit", "10000", "--epochs", "1", "--json", "--out",
        ])
        .arg(dir.join("run"))
        .current_dir(root())
        .output()
        .map_err(|e| format!("could not run the program: {e}"))?;
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        return Err(format!(
            "retroprop train failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("retroprop train --json printed no JSON: {e}"))?;
    let accuracy = doc["test_accuracy"].as_f64().ok_or("no test_accuracy")?;
    eprintln!("xtask ci: test accuracy after one epoch on 10 000 images: {accuracy} (chance 0.1)");
    if accuracy > 0.85 {
        Ok(())
    } else {
        Err(format!("accuracy {accuracy} is not above 0.85"))
    }
}

/// Runs every step; stops at the first failure.
pub fn run() -> Result<ExitCode, String> {
    let started = std::time::Instant::now();
    let elapsed = || format!("{:.0} s", started.elapsed().as_secs_f64());
    eprintln!("xtask ci: tidy — docs/architecture.md against cargo metadata");
    if let Err(e) = tidy() {
        eprintln!("xtask ci: step `tidy` failed: {e}");
        return Ok(ExitCode::FAILURE);
    }
    let mut steps = steps();
    let (before_smoke, after_smoke) = steps.split_at_mut(10);
    for s in before_smoke {
        if !run_step(s)? {
            return Ok(ExitCode::FAILURE);
        }
    }
    eprintln!("xtask ci: training smoke test ({})", elapsed());
    if let Err(e) = smoke() {
        eprintln!("xtask ci: step `smoke` failed: {e}");
        return Ok(ExitCode::FAILURE);
    }
    for s in after_smoke {
        if !run_step(s)? {
            return Ok(ExitCode::FAILURE);
        }
    }
    eprintln!("xtask ci: all steps passed in {}", elapsed());
    Ok(ExitCode::SUCCESS)
}

fn run_step(s: &mut Step) -> Result<bool, String> {
    eprintln!("xtask ci: {}", s.name);
    let status = s
        .command
        .current_dir(root())
        .status()
        .map_err(|e| format!("could not run `{}`: {e}", s.name))?;
    if !status.success() {
        eprintln!("xtask ci: step `{}` failed ({status})", s.name);
    }
    Ok(status.success())
}
