//! The suite and its outcomes as a user of this crate sees them: counts, verdicts, filters,
//! the combination of outcomes, and the report's text; and the checker's own figures.

use retroprop_gradcheck::{Config, Outcome, Suite, check_gradient};

fn suite() -> Suite {
    let mut s = Suite::new();
    s.add("good/one", "group A", "a check that holds", || {
        Outcome::within(0.5, 1.0, "abs", "half the tolerance")
    });
    s.add("bad/two", "group B", "a check that fails", || {
        Outcome::within(2.0, 1.0, "abs", "twice the tolerance")
    });
    s.add("panics/three", "group B", "a check that panics", || {
        panic!("inside a check")
    });
    s
}

#[test]
fn a_suite_counts_runs_filters_and_reports_its_checks() {
    let s = suite();
    assert_eq!((s.len(), s.is_empty()), (3, false));
    assert!(Suite::new().is_empty());
    let report = s.run(None);
    assert!(!report.passed());
    assert_eq!(report.failures(), 2, "the failing and the panicking check");
    assert_eq!(report.results.len(), 3);
    // a filter matches the id, the group or the description
    assert_eq!(s.run(Some("good")).results.len(), 1);
    assert_eq!(s.run(Some("group B")).results.len(), 2);
    assert_eq!(s.run(Some("holds")).results.len(), 1);
    let good = s.run(Some("good"));
    assert!(good.passed() && good.failures() == 0);
    // the report names each check with its verdict
    let text = report.render(false);
    assert!(text.contains("good/one") && text.contains("PASS"), "{text}");
    assert!(text.contains("bad/two") && text.contains("FAIL"), "{text}");
    assert!(text.contains("panicked"), "{text}");
    assert!(text.contains("3 checks, 1 passed, 2 failed"), "{text}");
    assert!(
        good.render(false).contains("PASS: 1 check"),
        "{}",
        good.render(false)
    );
}

#[test]
fn outcomes_compare_with_their_tolerance_and_combine() {
    assert!(Outcome::within(1.0, 1.0, "abs", "").passed);
    assert!(!Outcome::within(1.0 + 1e-12, 1.0, "abs", "").passed);
    assert!(Outcome::exact(0, "").passed && !Outcome::exact(1, "").passed);
    let pass = Outcome::within(0.1, 1.0, "abs", "small");
    let worse_pass = Outcome::within(0.9, 1.0, "abs", "larger");
    let fail = Outcome::within(3.0, 1.0, "rel", "over");
    // all pass: the worst ratio leads
    let both = Outcome::all([pass.clone(), worse_pass.clone()]);
    assert!(both.passed);
    assert_eq!(both.detail, "larger");
    // one fails: the combination fails, led by the failure
    let mixed = Outcome::all([pass, fail, worse_pass]);
    assert!(!mixed.passed);
    assert_eq!(mixed.detail, "over");
    // a zero tolerance with an error is the worst of all
    let exact_miss = Outcome::within(1e-30, 0.0, "exact", "exact miss");
    let big = Outcome::within(5.0, 1.0, "abs", "big");
    assert_eq!(Outcome::all([big, exact_miss]).detail, "exact miss");
    assert!(Outcome::all([]).passed);
}

#[test]
fn the_checker_reports_its_figures() {
    // f(a, b) = a² + 3b at (1, 2): ∇ = (2, 3); an analytic gradient off by 0.5 in b
    let f = |v: &[f64]| v[0] * v[0] + 3.0 * v[1];
    let right = check_gradient(f, &[1.0, 2.0], &[2.0, 3.0], &Config::default());
    assert!(right.passed());
    assert_eq!(right.checked(), 2);
    assert!(right.max_abs_error() < 1e-8 && right.max_rel_error() < 1e-8);
    let wrong = check_gradient(f, &[1.0, 2.0], &[2.0, 3.5], &Config::default());
    assert!(!wrong.passed());
    assert!(
        (wrong.max_abs_error() - 0.5).abs() < 1e-6,
        "{}",
        wrong.max_abs_error()
    );
    assert!(wrong.max_rel_error() > 0.1);
    // the outcome of a report carries its verdict
    assert!(Outcome::from_report(&right).passed);
    assert!(!Outcome::from_report(&wrong).passed);
}

#[test]
fn a_report_points_at_the_wrong_entry_and_its_outcome_is_consistent() {
    use nalgebra::DMatrix;
    use retroprop_gradcheck::{Tolerance, check_batch_gradient};
    // f(X) = Σ Xᵢⱼ² on a 2×3 matrix: ∇ = 2X; the claimed gradient is wrong at (1, 2) only
    let x = DMatrix::from_fn(2, 3, |i, j| 0.5 + i as f64 + 0.25 * j as f64);
    let f = |m: &DMatrix<f64>| m.iter().map(|v| v * v).sum::<f64>();
    let right = 2.0 * &x;
    let mut wrong = right.clone();
    wrong[(1, 2)] += 0.75;
    let report = check_batch_gradient(f, &x, &wrong, &Config::default());
    let (_, worst) = report.worst().expect("a worst entry");
    assert_eq!(worst.index, (1, 2));
    assert_eq!(worst.analytic, wrong[(1, 2)]);
    // the outcome names it, counts the failures, and its error is over its tolerance
    let outcome = Outcome::from_report(&report);
    assert!(
        !outcome.passed && outcome.error > outcome.tolerance,
        "{outcome:?}"
    );
    assert!(
        outcome.detail.contains("[1, 2]") && outcome.detail.contains("1 of 6 entries fail"),
        "{}",
        outcome.detail
    );
    let good = Outcome::from_report(&check_batch_gradient(f, &x, &right, &Config::default()));
    assert!(good.passed && good.error <= good.tolerance, "{good:?}");
    assert!(
        good.detail.contains("6 entries in 1 tensors"),
        "{}",
        good.detail
    );
    // the allowed error is abs + rel·max(|analytic|, |numeric|)
    let tol = Tolerance { abs: 0.5, rel: 0.1 };
    assert_eq!(tol.allowed(10.0, -20.0), 0.5 + 0.1 * 20.0);
}
