//! A suite of named checks with one report: what `cargo xtask verify` runs, and what downstream
//! code uses to add its own layers to the same kind of report.

use std::fmt;
use std::time::Instant;

use nalgebra::DMatrix;
use retroprop_layers::{Layer, LayerError};
use serde::Serialize;

use crate::{Config, Report, conformance};

/// The result of one check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    /// `true` if the check holds.
    pub passed: bool,
    /// The largest error measured (relative unless `metric` says otherwise).
    pub error: f64,
    /// The largest error allowed.
    pub tolerance: f64,
    /// How `error` is measured: `"rel"`, `"abs"` or `"exact"` (a count of mismatches).
    pub metric: &'static str,
    /// What was measured, and for a failure where: which tensor and entry, the analytic and the
    /// numeric value, and the relative error.
    pub detail: String,
}

impl Outcome {
    /// A comparison of a measured error with its tolerance.
    pub fn within(
        error: f64,
        tolerance: f64,
        metric: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            passed: error <= tolerance,
            error,
            tolerance,
            metric,
            detail: detail.into(),
        }
    }

    /// An exact check: `mismatches` must be 0.
    pub fn exact(mismatches: usize, detail: impl Into<String>) -> Self {
        Self {
            passed: mismatches == 0,
            error: mismatches as f64,
            tolerance: 0.0,
            metric: "exact",
            detail: detail.into(),
        }
    }

    /// A failure that happened before anything could be measured (an error was returned).
    pub fn error(detail: impl Into<String>) -> Self {
        Self {
            passed: false,
            error: f64::INFINITY,
            tolerance: 0.0,
            metric: "exact",
            detail: detail.into(),
        }
    }

    /// From a gradient-check report. The error is the worst entry's
    /// `|analytic − numeric| / (abs/rel + max(|analytic|, |numeric|))` — its relative error, with
    /// a floor of `abs/rel` on the magnitude so that tiny entries are judged absolutely — and it
    /// passes exactly when it is at most `rel`. The detail names the worst entry.
    pub fn from_report(report: &Report) -> Self {
        let detail = match report.worst() {
            Some((tensor, w)) if !report.passed() => format!(
                "{tensor}[{}, {}]: analytic {:.9e}, numeric {:.9e}, relative error {:.3e} ({} of {} entries fail)",
                w.index.0,
                w.index.1,
                w.analytic,
                w.numeric,
                w.rel_error,
                report.tensors.iter().map(|t| t.failed).sum::<usize>(),
                report.checked()
            ),
            _ => format!(
                "{} entries in {} tensors",
                report.checked(),
                report.tensors.len()
            ),
        };
        let worst_ratio = report.worst().map_or(0.0, |(_, w)| w.ratio);
        Self {
            passed: report.passed(),
            error: worst_ratio * report.tolerance.rel,
            tolerance: report.tolerance.rel,
            metric: "rel",
            detail,
        }
    }

    /// Combines outcomes: passes if all pass; the worst error ratio leads.
    pub fn all(outcomes: impl IntoIterator<Item = Outcome>) -> Self {
        let outcomes: Vec<Outcome> = outcomes.into_iter().collect();
        let ratio = |o: &Outcome| {
            if o.tolerance > 0.0 {
                o.error / o.tolerance
            } else if o.error == 0.0 {
                0.0
            } else {
                f64::INFINITY
            }
        };
        let worst = outcomes
            .iter()
            .max_by(|a, b| {
                (!a.passed, ratio(a))
                    .partial_cmp(&(!b.passed, ratio(b)))
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .cloned();
        match worst {
            Some(mut w) => {
                w.passed = outcomes.iter().all(|o| o.passed);
                w
            }
            None => Outcome::exact(0, "nothing to check"),
        }
    }
}

type CheckFn = Box<dyn Fn() -> Outcome + Send + Sync>;

/// One registered check.
pub struct Check {
    /// Short identifier (a homework question like `2p`, or `layers/dense/3x5`).
    pub id: String,
    /// Group it is reported under (`layers`, `homework part 1`, …).
    pub group: String,
    /// What it checks, in a few words.
    pub description: String,
    run: CheckFn,
}

/// A list of checks run together into one [`SuiteReport`].
///
/// ```
/// use nalgebra::DMatrix;
/// use retroprop_gradcheck::{Config, Outcome, Suite};
/// use retroprop_layers::{Dense, Init, Layer};
///
/// let mut suite = Suite::new();
/// suite.add_layer("my/dense", "my layers", "a dense layer",
///     || Ok(Box::new(Dense::<f64>::new(3, 2, Init::XavierUniform { seed: 1 })?) as Box<dyn Layer<f64>>),
///     DMatrix::from_fn(3, 4, |i, j| (i + j) as f64 * 0.1), Config::default());
/// suite.add("my/identity", "my maths", "2 + 2 = 4", || Outcome::exact(usize::from(2 + 2 != 4), "exact"));
/// let report = suite.run(None);
/// assert!(report.passed(), "{report}");
/// assert_eq!(report.results.len(), 2);
/// ```
#[derive(Default)]
pub struct Suite {
    checks: Vec<Check>,
}

impl Suite {
    /// An empty suite.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a check.
    pub fn add(
        &mut self,
        id: impl Into<String>,
        group: impl Into<String>,
        description: impl Into<String>,
        run: impl Fn() -> Outcome + Send + Sync + 'static,
    ) {
        self.checks.push(Check {
            id: id.into(),
            group: group.into(),
            description: description.into(),
            run: Box::new(run),
        });
    }

    /// Registers a layer: its gradients against finite differences and the rest of the
    /// `Layer` contract ([`conformance`]) at input `x`, in f64. This is how `cargo xtask
    /// verify` registers every layer of retroprop, and how downstream code adds its own.
    pub fn add_layer(
        &mut self,
        id: impl Into<String>,
        group: impl Into<String>,
        description: impl Into<String>,
        make: impl Fn() -> Result<Box<dyn Layer<f64>>, LayerError> + Send + Sync + 'static,
        x: DMatrix<f64>,
        config: Config,
    ) {
        self.add(id, group, description, move || {
            match conformance(&make, &x, &config) {
                Ok(result) => {
                    let mut outcome = Outcome::from_report(&result.gradients);
                    let broken: Vec<String> = result
                        .clauses
                        .iter()
                        .filter(|c| !c.passed)
                        .map(|c| format!("{}: {}", c.name, c.detail))
                        .collect();
                    if !broken.is_empty() {
                        outcome.passed = false;
                        outcome.detail =
                            format!("{}; contract: {}", outcome.detail, broken.join("; "));
                    }
                    outcome
                }
                Err(e) => Outcome::error(e.to_string()),
            }
        });
    }

    /// Number of registered checks.
    pub fn len(&self) -> usize {
        self.checks.len()
    }

    /// `true` if no check is registered.
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    /// Runs the checks whose id, group or description contains `filter` (all if `None`), in
    /// registration order. A check that panics is reported as a failure, not propagated.
    pub fn run(&self, filter: Option<&str>) -> SuiteReport {
        let started = Instant::now();
        let results = self
            .checks
            .iter()
            .filter(|c| {
                filter.is_none_or(|f| {
                    c.id.contains(f) || c.group.contains(f) || c.description.contains(f)
                })
            })
            .map(|c| {
                let t = Instant::now();
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (c.run)()))
                    .unwrap_or_else(|_| Outcome::error("the check panicked"));
                CheckResult {
                    id: c.id.clone(),
                    group: c.group.clone(),
                    description: c.description.clone(),
                    outcome,
                    seconds: t.elapsed().as_secs_f64(),
                }
            })
            .collect();
        SuiteReport {
            results,
            seconds: started.elapsed().as_secs_f64(),
        }
    }
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckResult {
    /// The check's id.
    pub id: String,
    /// Its group.
    pub group: String,
    /// What it checks.
    pub description: String,
    /// What it found.
    pub outcome: Outcome,
    /// How long it took.
    pub seconds: f64,
}

/// The results of a [`Suite`] run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SuiteReport {
    /// One per check run, in order.
    pub results: Vec<CheckResult>,
    /// Wall-clock seconds of the run.
    pub seconds: f64,
}

impl SuiteReport {
    /// `true` if every check passed.
    pub fn passed(&self) -> bool {
        self.results.iter().all(|r| r.outcome.passed)
    }

    /// Number of failed checks.
    pub fn failures(&self) -> usize {
        self.results.iter().filter(|r| !r.outcome.passed).count()
    }

    /// The report as a table grouped by group; `color` adds ANSI colours to PASS/FAIL.
    pub fn render(&self, color: bool) -> String {
        let paint = |ok: bool| match (ok, color) {
            (true, true) => "\x1b[32mPASS\x1b[0m",
            (false, true) => "\x1b[1;31mFAIL\x1b[0m",
            (true, false) => "PASS",
            (false, false) => "FAIL",
        };
        let mut out = String::new();
        let mut group: Option<&str> = None;
        for r in &self.results {
            if group != Some(r.group.as_str()) {
                group = Some(&r.group);
                out.push_str(&format!(
                    "\n{}\n{:<30} {:<52} {:>10} {:>10}  {}\n",
                    r.group, "id", "check", "worst err", "tolerance", "result"
                ));
            }
            let o = &r.outcome;
            let err = if o.metric == "exact" {
                format!("{}", o.error)
            } else {
                format!("{:.1e}", o.error)
            };
            let tol = if o.metric == "exact" {
                "exact".to_string()
            } else {
                format!("{:.0e} {}", o.tolerance, o.metric)
            };
            let description: String = r.description.chars().take(52).collect();
            out.push_str(&format!(
                "{:<30} {:<52} {:>10} {:>10}  {}\n",
                r.id,
                description,
                err,
                tol,
                paint(o.passed)
            ));
            if !o.passed {
                out.push_str(&format!("{:>30} ↳ {}\n", "", o.detail));
            }
        }
        let failed = self.failures();
        let total = self.results.len();
        out.push_str(&format!(
            "\n{}: {} check{}, {} passed, {} failed, in {:.1} s\n",
            paint(failed == 0),
            total,
            if total == 1 { "" } else { "s" },
            total - failed,
            failed,
            self.seconds
        ));
        out
    }
}

impl fmt::Display for SuiteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}
