//! Developer tasks for the retroprop workspace, run as `cargo xtask <task>`
//! (an alias in `.cargo/config.toml`).
//!
//! - `cargo xtask ci` — what CI runs, cheapest first: `fmt --check`, clippy with `-D warnings`,
//!   the test suite, rustdoc with `-D warnings`.
//!
//! Cargo is invoked through `$CARGO`, so the same toolchain that runs xtask runs the steps.

use std::env;
use std::ffi::OsString;
use std::process::{Command, ExitCode};

const HELP: &str = "\
usage: cargo xtask <task>

tasks:
  ci        run what CI runs: fmt --check, clippy -D warnings, tests, docs -D warnings
";

fn main() -> ExitCode {
    match try_main() {
        Ok(code) => code,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn try_main() -> Result<ExitCode, String> {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("help" | "--help" | "-h") | None => {
            print!("{HELP}");
            Ok(ExitCode::SUCCESS)
        }
        Some(other) => Err(format!("unknown task `{other}`\n\n{HELP}")),
    }
}

/// The cargo that runs us (`$CARGO`), or `cargo` from `PATH`.
fn cargo() -> Command {
    Command::new(env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")))
}

/// One step of `ci`: a cargo invocation with optional environment.
struct Step {
    name: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
}

/// What CI runs, cheapest first. `.ci/run` runs the same commands.
const CI_STEPS: &[Step] = &[
    Step {
        name: "format",
        args: &["fmt", "--all", "--", "--check"],
        env: &[],
    },
    Step {
        name: "clippy",
        args: &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        env: &[],
    },
    Step {
        name: "tests",
        args: &["test", "--workspace"],
        env: &[],
    },
    Step {
        name: "docs",
        args: &["doc", "--workspace", "--no-deps"],
        env: &[("RUSTDOCFLAGS", "-D warnings")],
    },
];

fn ci() -> Result<ExitCode, String> {
    for step in CI_STEPS {
        eprintln!("xtask ci: {} — cargo {}", step.name, step.args.join(" "));
        let mut cmd = cargo();
        cmd.args(step.args);
        for (k, v) in step.env {
            cmd.env(k, v);
        }
        let status = cmd
            .status()
            .map_err(|e| format!("could not run cargo: {e}"))?;
        if !status.success() {
            eprintln!("xtask ci: step `{}` failed ({status})", step.name);
            return Ok(ExitCode::FAILURE);
        }
    }
    eprintln!("xtask ci: all steps passed");
    Ok(ExitCode::SUCCESS)
}
