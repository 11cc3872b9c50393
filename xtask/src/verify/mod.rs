//! `cargo xtask verify`: every gradient across the crates and every checkable claim of the
//! homework, in one suite and one report.

mod definitions;
mod homework;
mod library;
mod norms;

use std::io::Write;

use nalgebra::DMatrix;
use retroprop_core::rng::Rng;
use retroprop_gradcheck::planted::DroppedTranspose;
use retroprop_gradcheck::{Config, Suite, SuiteReport};
use retroprop_layers::Layer;
use retroprop_losses::{CrossEntropy, Loss, Target};
use retroprop_models::Sequential;

/// A seeded `rows × cols` matrix uniform in `[lo, hi)`.
pub(crate) fn random(rows: usize, cols: usize, lo: f64, hi: f64, seed: u64) -> DMatrix<f64> {
    let mut rng = Rng::new(seed);
    DMatrix::from_fn(rows, cols, |_, _| rng.uniform(lo, hi))
}

/// `n` seeded labels in `0..classes`.
pub(crate) fn labels(n: usize, classes: usize, seed: u64) -> Vec<usize> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.below(classes)).collect()
}

/// Values with `|v| ∈ [0.05, 1]`: no ReLU kink within a finite-difference step.
pub(crate) fn away_from_zero(rows: usize, cols: usize, seed: u64) -> DMatrix<f64> {
    let mut rng = Rng::new(seed);
    DMatrix::from_fn(rows, cols, |_, _| {
        let v = rng.uniform(0.05, 1.0);
        if rng.below(2) == 0 { v } else { -v }
    })
}

/// Distinct values 0.01 apart in random order: no max-pool ties.
pub(crate) fn distinct(rows: usize, cols: usize, seed: u64) -> DMatrix<f64> {
    let mut v: Vec<f64> = (0..rows * cols).map(|i| i as f64 * 0.01 - 1.0).collect();
    Rng::new(seed).shuffle(&mut v);
    DMatrix::from_vec(rows, cols, v)
}

/// Zeroes the gradients and accumulates those of the mean cross-entropy of `net` on `(x, y)`.
pub(crate) fn ce_gradient(
    net: &mut Sequential<f64>,
    x: &DMatrix<f64>,
    y: &[usize],
) -> Result<(), String> {
    net.zero_grad();
    let logits = net.forward(x).map_err(|e| e.to_string())?;
    let out = CrossEntropy::default()
        .evaluate(&logits, Target::Labels(y))
        .map_err(|e| e.to_string())?;
    net.backward_params(&out.grad).map_err(|e| e.to_string())
}

/// Every check of retroprop: layers, losses, optimizers, models, and the homework's questions.
pub fn standard_suite() -> Suite {
    let mut suite = Suite::new();
    library::layers(&mut suite);
    definitions::conv2d(&mut suite);
    library::losses(&mut suite);
    library::optimizers(&mut suite);
    library::models(&mut suite);
    homework::part1(&mut suite);
    homework::part2(&mut suite);
    homework::part3(&mut suite);
    suite
}

/// Registers the planted bug through the same path a user's layer takes.
pub fn plant_bug(suite: &mut Suite) {
    suite.add_layer(
        "planted/dropped-transpose",
        "planted bug (must FAIL)",
        "Dense 5→3 whose dL/dx drops the transpose (2p's mistake)",
        || Ok(Box::new(DroppedTranspose::new(5, 3, 1)?) as Box<dyn Layer<f64>>),
        random(5, 4, -1.0, 1.0, 2),
        Config::default(),
    );
}

/// How `verify` runs and prints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Only checks whose id, group or description contains this.
    pub filter: Option<String>,
    /// One JSON document instead of the table.
    pub json: bool,
    /// ANSI colours in the table.
    pub color: bool,
    /// Also register the planted bug.
    pub plant_bug: bool,
}

/// Parses `verify`'s arguments.
///
/// # Errors
/// A message for an unknown flag or a missing value.
pub fn parse_args(args: &[String], color: bool) -> Result<Options, String> {
    let mut opts = Options {
        color,
        ..Options::default()
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => opts.json = true,
            "--plant-bug" => opts.plant_bug = true,
            "--no-color" => opts.color = false,
            "--filter" => {
                opts.filter = Some(
                    it.next()
                        .ok_or("--filter needs a value: --filter <text>")?
                        .clone(),
                );
            }
            other => {
                return Err(format!(
                    "verify: unknown argument `{other}` (expected --filter <text>, --json, --no-color, --plant-bug)"
                ));
            }
        }
    }
    Ok(opts)
}

/// Runs `suite` and writes the report; returns it.
///
/// # Errors
/// Writing to `out` failed.
pub fn run(suite: &Suite, opts: &Options, out: &mut dyn Write) -> std::io::Result<SuiteReport> {
    let report = suite.run(opts.filter.as_deref());
    if opts.json {
        let doc = serde_json::json!({
            "passed": report.passed(),
            "checks": report.results.len(),
            "failed": report.failures(),
            "seconds": report.seconds,
            "results": report.results,
        });
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?
        )?;
    } else {
        write!(out, "{}", report.render(opts.color))?;
    }
    Ok(report)
}
