//! Developer tasks for the retroprop workspace, run as `cargo xtask <task>`
//! (an alias in `.cargo/config.toml`).
//!
//! - `cargo xtask verify [--filter <text>] [--json]` — every gradient check across the crates
//!   and every checkable claim of the homework; exit status 1 if any check fails.
//! - `cargo xtask ci` — everything CI runs, cheapest first: the tidy check of the crate graph,
//!   `fmt --check`, clippy with `-D warnings`, the test suite, rustdoc with `-D warnings`,
//!   `verify`, the examples (the downstream crate included), the training smoke test and the
//!   fuzz targets.
//! - `cargo xtask mutants [--file <path>]... [--minutes <n>]` — a bounded cargo-mutants pass
//!   (not part of CI).
//! - `cargo xtask bench-peers [--venv <dir>] [--rounds <n>]` — PyTorch and our benches
//!   interleaved in one sweep, with the ratios (not part of CI).
//!
//! Cargo is invoked through `$CARGO`, so the same toolchain that runs xtask runs the steps.

use std::env;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::process::{Command, ExitCode};

use xtask::verify;

mod bench_peers;
mod ci;
mod mutants;

const HELP: &str = "\
usage: cargo xtask <task>

tasks:
  verify    gradient checks of every layer, loss, optimizer and model, and every
            checkable question of the homework
              --filter <text>   only checks whose id, group or description contains it
              --json            one JSON document on stdout
              --no-color        no ANSI colours (they are on only when stdout is a terminal)
              --plant-bug       also register a deliberately wrong layer (it must FAIL)
  ci        run what CI runs: tidy (crate graph), fmt --check, clippy -D warnings, tests,
            docs -D warnings, verify, examples, training smoke test, fuzz targets
  mutants   a bounded mutation-testing pass (cargo-mutants) over a few files of the math
              --file <path>     a file to mutate (repeatable) [default: pointwise.rs and
                                cross_entropy.rs]
              --minutes <n>     stop after n minutes and report what was tested [default: 15]
  bench-peers  PyTorch and our benches interleaved (2 rounds), with the ratios
              --venv <dir>      virtual environment with torch [default: ~/.venv-peers]
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
        Some("ci") => ci::run(),
        Some("verify") => verify_task(&args[1..]),
        Some("mutants") => mutants::run(&args[1..]),
        Some("bench-peers") => bench_peers::run(&args[1..]),
        Some("help" | "--help" | "-h") | None => {
            print!("{HELP}");
            Ok(ExitCode::SUCCESS)
        }
        Some(other) => Err(format!("unknown task `{other}`\n\n{HELP}")),
    }
}

/// The cargo that runs us (`$CARGO`), or `cargo` from `PATH`.
pub(crate) fn cargo() -> Command {
    Command::new(env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")))
}

fn verify_task(args: &[String]) -> Result<ExitCode, String> {
    let opts = verify::parse_args(args, std::io::stdout().is_terminal())?;
    let mut suite = verify::standard_suite();
    if opts.plant_bug {
        verify::plant_bug(&mut suite);
    }
    let mut stdout = std::io::stdout().lock();
    let report =
        verify::run(&suite, &opts, &mut stdout).map_err(|e| format!("writing the report: {e}"))?;
    if report.results.is_empty() {
        return Err(format!(
            "no check matches the filter {:?}",
            opts.filter.unwrap_or_default()
        ));
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
