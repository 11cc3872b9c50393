//! `cargo xtask mutants`: a bounded pass of cargo-mutants over a few files of the math, for a
//! developer before a commit. The full pass (about 2 000 mutants, hours on two cores) is run in
//! shards; `.cargo/mutants.toml` scopes both to the files that hold formulas and layouts.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use crate::cargo;

/// Files mutated when none is named: the scalar functions of part 1 and the cross-entropy
/// (about 100 mutants, some minutes).
const DEFAULT_FILES: &[&str] = &[
    "crates/activations/src/pointwise.rs",
    "crates/losses/src/cross_entropy.rs",
];

/// The run stops (and reports what it tested) after this long unless `--minutes` says otherwise.
/// The first minutes go to building and testing the unmutated tree in a copy (the baseline).
const DEFAULT_MINUTES: u64 = 15;

const USAGE: &str = "usage: cargo xtask mutants [--file <path>]... [--minutes <n>]";

/// Runs cargo-mutants on the files (the default set if none), stops it after the time limit,
/// and prints the outcome counts and every surviving mutant.
pub fn run(args: &[String]) -> Result<ExitCode, String> {
    let (files, minutes) = parse(args)?;
    let installed = cargo()
        .args(["mutants", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        return Err(
            "cargo-mutants is not installed: run `cargo install cargo-mutants --locked`".into(),
        );
    }
    let out_dir = Path::new("target/xtask-mutants");
    let mut cmd = cargo();
    cmd.args(["mutants", "--workspace", "-j", "1", "--output"])
        .arg(out_dir);
    for file in &files {
        if !Path::new(file).is_file() {
            return Err(format!(
                "--file {file}: no such file (paths are from the workspace root)"
            ));
        }
        cmd.args(["--re", &format!("^{}:", regex_escape(file))]);
    }
    eprintln!(
        "xtask mutants: {} for at most {minutes} min; results in {}",
        files.join(", "),
        out_dir.join("mutants.out").display()
    );
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("could not run cargo mutants: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(minutes * 60);
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            // an interrupt lets cargo-mutants stop its build and write what it has tested
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
            eprintln!("xtask mutants: time limit of {minutes} min reached; partial results");
            break None;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    report(&out_dir.join("mutants.out"));
    // cargo-mutants exits 2 when mutants survive: that is a finding, reported above
    Ok(match status {
        Some(s) if s.success() => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

fn parse(args: &[String]) -> Result<(Vec<String>, u64), String> {
    let (mut files, mut minutes) = (Vec::new(), DEFAULT_MINUTES);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--file" => files.push(it.next().ok_or(USAGE)?.clone()),
            "--minutes" => {
                let v = it.next().ok_or(USAGE)?;
                minutes = v.parse().ok().filter(|&m| m > 0).ok_or_else(|| {
                    format!("--minutes {v}: expected a whole number of minutes ≥ 1")
                })?;
            }
            other => return Err(format!("mutants: unknown argument `{other}`\n{USAGE}")),
        }
    }
    if files.is_empty() {
        files = DEFAULT_FILES.iter().map(|f| f.to_string()).collect();
    }
    Ok((files, minutes))
}

/// Escapes the regex metacharacters a path can hold (`.` mostly).
fn regex_escape(path: &str) -> String {
    path.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// Counts of each outcome file, and the surviving mutants in full.
fn report(dir: &Path) {
    let lines = |name: &str| -> Vec<String> {
        std::fs::read_to_string(dir.join(name))
            .map(|t| t.lines().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let (caught, missed, timeout, unviable) = (
        lines("caught.txt"),
        lines("missed.txt"),
        lines("timeout.txt"),
        lines("unviable.txt"),
    );
    println!(
        "caught {}, missed {}, timeout {}, unviable {}",
        caught.len(),
        missed.len(),
        timeout.len(),
        unviable.len()
    );
    for m in &missed {
        println!("  MISSED {m}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_anchored_literal_patterns() {
        assert_eq!(
            regex_escape("crates/layers/src/dense.rs"),
            "crates/layers/src/dense\\.rs"
        );
        let (files, minutes) = parse(&["--minutes".into(), "3".into()]).unwrap();
        assert_eq!((files.len(), minutes), (DEFAULT_FILES.len(), 3));
        assert!(parse(&["--minutes".into(), "0".into()]).is_err());
        assert!(parse(&["--bogus".into()]).is_err());
    }
}
