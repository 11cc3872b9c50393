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

#[test]
fn outcomes_with_different_tolerances_are_ranked_by_error_over_tolerance() {
    // 0.5 of a tolerance of 1 against 0.01 of 0.0125: the second is worse (0.8 > 0.5)
    let loose = Outcome::within(0.5, 1.0, "abs", "loose");
    let tight = Outcome::within(0.01, 0.0125, "rel", "tight");
    let both = Outcome::all([loose.clone(), tight.clone()]);
    assert!(both.passed);
    assert_eq!(both.detail, "tight");
    assert_eq!(
        Outcome::all([tight, loose.clone()]).detail,
        "tight",
        "in either order"
    );
    // an exact check that holds (error 0, tolerance 0) is the best of all, wherever it stands
    let exact = Outcome::exact(0, "exact hit");
    assert_eq!(Outcome::all([loose.clone(), exact.clone()]).detail, "loose");
    assert_eq!(Outcome::all([exact, loose]).detail, "loose");
}

#[test]
fn the_report_has_one_header_per_group_and_prints_each_metric_its_way() {
    let mut s = Suite::new();
    s.add("one", "group A", "relative", || {
        Outcome::within(0.5, 1.0, "abs", "")
    });
    s.add("two", "group A", "exact", || Outcome::exact(0, ""));
    s.add("three", "group B", "another group", || {
        Outcome::within(0.25, 0.5, "rel", "")
    });
    let text = s.run(None).render(false);
    assert_eq!(text.matches("\ngroup A\n").count(), 1, "{text}");
    assert_eq!(text.matches("\ngroup B\n").count(), 1, "{text}");
    // a measured error in scientific notation with its tolerance and metric; an exact check's
    // count as it is, against "exact"
    assert!(text.contains("5.0e-1    1e0 abs  PASS"), "{text}");
    assert!(text.contains("2.5e-1   5e-1 rel  PASS"), "{text}");
    assert!(text.contains("0      exact  PASS"), "{text}");
}

#[test]
fn the_planted_layer_names_itself_and_shows_its_parameters() {
    use retroprop_gradcheck::planted::DroppedTranspose;
    use retroprop_layers::Layer;
    let layer = DroppedTranspose::new(3, 2, 1).unwrap();
    assert_eq!(layer.name(), "DroppedTranspose");
    let mut names = Vec::new();
    layer.visit_params(&mut |path, p| names.push((path.to_string(), p.value().shape())));
    assert_eq!(
        names,
        [("weight".to_string(), (2, 3)), ("bias".to_string(), (2, 1))]
    );
}
