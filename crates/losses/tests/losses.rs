//! Every loss against finite differences, the homework's results reproduced numerically, and
//! targets validated.

use nalgebra::DMatrix;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use retroprop_activations::{sigmoid, softmax};
use retroprop_core::rng::Rng;
use retroprop_gradcheck::{Config, check_batch_gradient};
use retroprop_losses::{
    BceWithLogits, BinaryCrossEntropy, CrossEntropy, Loss, LossError, Mse, Reduction, SigmoidMse,
    Target,
};

fn random(rows: usize, cols: usize, lo: f64, hi: f64, seed: u64) -> DMatrix<f64> {
    let mut rng = Rng::new(seed);
    DMatrix::from_fn(rows, cols, |_, _| rng.uniform(lo, hi))
}

const REDUCTIONS: [Reduction; 3] = [Reduction::Mean, Reduction::Sum, Reduction::None];

/// The loss's gradient is the gradient of its value, by central differences.
#[track_caller]
fn assert_gradient(loss: &dyn Loss<f64>, prediction: &DMatrix<f64>, target: Target<'_, f64>) {
    let out = loss.evaluate(prediction, target).unwrap();
    let value = |p: &DMatrix<f64>| loss.evaluate(p, target).unwrap().value;
    let report = check_batch_gradient(value, prediction, &out.grad, &Config::default());
    assert!(report.passed(), "{}: {report}", loss.name());
    // the reduced value is the mean or sum of the per-example losses
    let sum: f64 = out.per_example.iter().sum();
    let want = match loss.reduction() {
        Reduction::Mean => sum / out.per_example.len() as f64,
        Reduction::Sum | Reduction::None => sum,
    };
    assert!((out.value - want).abs() <= 1e-12 * want.abs().max(1.0));
}

#[test]
fn every_loss_passes_the_gradient_check() {
    let logits = random(5, 7, -4.0, 4.0, 1);
    let labels = [0, 4, 2, 2, 1, 3, 0];
    let mut soft = random(5, 7, 0.0, 1.0, 2);
    for mut col in soft.column_iter_mut() {
        let s = col.sum();
        col /= s;
    }
    let binary_logits = random(1, 9, -6.0, 6.0, 3);
    let bits = [0, 1, 1, 0, 1, 0, 0, 1, 1];
    let probabilities = random(3, 4, 0.05, 0.95, 4);
    let binary_targets = random(3, 4, 0.0, 1.0, 5);
    let regression = random(3, 4, -2.0, 2.0, 6);
    for reduction in REDUCTIONS {
        assert_gradient(
            &CrossEntropy { reduction },
            &logits,
            Target::Labels(&labels),
        );
        assert_gradient(&CrossEntropy { reduction }, &logits, Target::Dense(&soft));
        assert_gradient(
            &SigmoidMse { reduction },
            &binary_logits,
            Target::Labels(&bits),
        );
        assert_gradient(
            &BceWithLogits { reduction },
            &binary_logits,
            Target::Labels(&bits),
        );
        assert_gradient(
            &BceWithLogits { reduction },
            &regression,
            Target::Dense(&binary_targets),
        );
        assert_gradient(
            &BinaryCrossEntropy { reduction },
            &probabilities,
            Target::Dense(&binary_targets),
        );
        assert_gradient(
            &Mse { reduction },
            &regression,
            Target::Dense(&probabilities),
        );
    }
}

#[test]
fn question_2l_gradient_is_softmax_minus_onehot() {
    // ∂L/∂oᵃ = oˢ − onehot(y), per example (Sum reduction: no 1/n)
    let logits = random(4, 6, -3.0, 3.0, 7);
    let labels = [3, 0, 1, 1, 2, 0];
    let out = CrossEntropy::new(Reduction::Sum)
        .evaluate(&logits, Target::Labels(&labels))
        .unwrap();
    for (j, &y) in labels.iter().enumerate() {
        let mut want = softmax(logits.column(j));
        want[y] -= 1.0;
        for k in 0..4 {
            assert!((out.grad[(k, j)] - want[k]).abs() < 1e-15);
        }
        // 2h: L = log Σ exp(oᵃ) − oᵃ_y
        let lse = logits.column(j).iter().map(|v| v.exp()).sum::<f64>().ln();
        assert!((out.per_example[j] - (lse - logits[(y, j)])).abs() < 1e-14);
    }
    // Mean reduction (R̂, 2i) divides every column by n
    let mean = CrossEntropy::default()
        .evaluate(&logits, Target::Labels(&labels))
        .unwrap();
    assert!((mean.grad * 6.0 - &out.grad).amax() < 1e-15);
}

#[test]
fn cross_entropy_is_stable_at_extreme_logits() {
    let logits =
        DMatrix::from_column_slice(3, 2, &[1000.0_f64, 1001.0, 1002.0, -1000.0, 0.0, 1000.0]);
    let out: retroprop_losses::LossOutput<f64> = CrossEntropy::new(Reduction::Sum)
        .evaluate(&logits, Target::Labels(&[0, 0]))
        .unwrap();
    assert!(out.per_example.iter().all(|l| l.is_finite()));
    // second example: L = LSE(−1000, 0, 1000) + 1000 = 2000 (to rounding)
    assert!((out.per_example[1] - 2000.0).abs() < 1e-9);
    assert!(out.grad.iter().all(|g| g.is_finite()));
    let f32_out = CrossEntropy::default()
        .evaluate(&logits.map(|v| v as f32), Target::Labels(&[2, 1]))
        .unwrap();
    assert!(f32_out.value.is_finite());
}

#[test]
fn question_2g_mse_gradient_vanishes_on_a_confident_mistake_cross_entropy_does_not() {
    // oᵃ = −10 (σ ≈ 4.5e-5) while y = 1: a confidently wrong prediction
    let logits = DMatrix::from_element(1, 1, -10.0);
    let mse = SigmoidMse::default()
        .evaluate(&logits, Target::Labels(&[1]))
        .unwrap();
    let ce = BceWithLogits::default()
        .evaluate(&logits, Target::Labels(&[1]))
        .unwrap();
    let s = sigmoid(-10.0_f64);
    // MSE: 2(σ − y) σ(1 − σ) ≈ −9.1e-5;  CE: σ − y ≈ −1
    assert!((mse.grad[0] - 2.0 * (s - 1.0) * s * (1.0 - s)).abs() < 1e-18);
    assert!(mse.grad[0].abs() < 1e-4);
    assert!((ce.grad[0] - (s - 1.0)).abs() < 1e-15);
    assert!(ce.grad[0].abs() > 0.99);
    // and the loss itself: BCE = softplus(−10) + 10 = ln(1 + e⁻¹⁰) + 10 (Python: math.log1p(
    // math.exp(-10)) + 10 = 10.000045398899218); MSE < 1 (bounded: it cannot express the error)
    assert!((ce.value - 10.000_045_398_899_218).abs() < 1e-12);
    assert!(mse.value < 1.0);
}

#[test]
fn question_2d_softmax_of_two_logits_is_the_sigmoid_of_their_difference() {
    let logits = random(2, 10, -5.0, 5.0, 8);
    for j in 0..10 {
        let s = softmax(logits.column(j));
        let d = logits[(0, j)] - logits[(1, j)];
        assert!((s[0] - sigmoid(d)).abs() < 1e-15);
        assert!((s[1] - (1.0 - sigmoid(d))).abs() < 1e-15);
    }
    // so two-class cross-entropy = binary cross-entropy on the logit difference
    let labels = [0, 1, 1, 0, 1, 0, 0, 0, 1, 1];
    let ce = CrossEntropy::new(Reduction::Sum)
        .evaluate(&logits, Target::Labels(&labels))
        .unwrap();
    let diff = DMatrix::from_fn(1, 10, |_, j| logits[(1, j)] - logits[(0, j)]);
    let bce = BceWithLogits {
        reduction: Reduction::Sum,
    }
    .evaluate(&diff, Target::Labels(&labels))
    .unwrap();
    assert!((ce.value - bce.value).abs() < 1e-12);
}

#[test]
fn targets_are_validated_and_named() {
    let logits = DMatrix::<f64>::zeros(3, 2);
    let ce = CrossEntropy::default();
    assert_eq!(
        ce.evaluate(&logits, Target::Labels(&[0, 3])),
        Err(LossError::LabelOutOfRange {
            loss: "CrossEntropy",
            index: 1,
            label: 3,
            classes: 3
        })
    );
    assert_eq!(
        ce.evaluate(&logits, Target::Labels(&[0])),
        Err(LossError::BatchMismatch {
            loss: "CrossEntropy",
            predictions: 2,
            targets: 1
        })
    );
    let mut t = DMatrix::<f64>::zeros(3, 2);
    t[(2, 1)] = f64::NAN;
    assert_eq!(
        ce.evaluate(&logits, Target::Dense(&t)),
        Err(LossError::NonFiniteTarget {
            loss: "CrossEntropy",
            index: 1,
            row: 2
        })
    );
    assert_eq!(
        ce.evaluate(&logits, Target::Dense(&DMatrix::zeros(2, 2))),
        Err(LossError::ShapeMismatch {
            loss: "CrossEntropy",
            predictions: 3,
            targets: 2
        })
    );
    let one_row = DMatrix::<f64>::zeros(1, 2);
    assert!(matches!(
        BceWithLogits::default().evaluate(&one_row, Target::Labels(&[1, 2])),
        Err(LossError::LabelOutOfRange {
            index: 1,
            label: 2,
            classes: 2,
            ..
        })
    ));
    assert!(matches!(
        BceWithLogits::default().evaluate(&logits, Target::Labels(&[1, 0])),
        Err(LossError::OutputRows {
            expected: 1,
            got: 3,
            ..
        })
    ));
    assert!(matches!(
        BceWithLogits::default()
            .evaluate(&one_row, Target::Dense(&DMatrix::from_element(1, 2, 1.5))),
        Err(LossError::TargetOutOfRange {
            index: 0,
            row: 0,
            ..
        })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/losses.txt"))),
        ..ProptestConfig::default()
    })]

    // 1m with soft targets: ∇ₓ(−Σ cᵢ log S(x)ᵢ) = S(x) − c for any probability vector c
    #[test]
    fn soft_target_gradient_is_softmax_minus_c(seed in 0u64..10_000, m in 2usize..8) {
        let x = random(m, 1, -5.0, 5.0, seed);
        let mut c = random(m, 1, 0.0, 1.0, seed + 1);
        let total = c.sum();
        c /= total;
        let out = CrossEntropy::new(Reduction::Sum).evaluate(&x, Target::Dense(&c)).unwrap();
        let s = softmax(x.column(0));
        for k in 0..m {
            prop_assert!((out.grad[k] - (s[k] - c[k])).abs() < 1e-14);
        }
    }
}

#[test]
fn soft_targets_on_a_batch_give_the_cross_entropy_of_each_column() {
    // three columns, each its own probability vector c: L_j = −Σᵢ cᵢ log S(x_j)ᵢ and
    // ∂L/∂x_j = S(x_j) − c_j; columns past the first must read their own targets
    let x = random(4, 3, -3.0, 3.0, 21);
    let mut c = random(4, 3, 0.0, 1.0, 22);
    for mut col in c.column_iter_mut() {
        let total = col.sum();
        col /= total;
    }
    let out = CrossEntropy::new(Reduction::Sum)
        .evaluate(&x, Target::Dense(&c))
        .unwrap();
    for j in 0..3 {
        let s = softmax(x.column(j));
        let want: f64 = -(0..4).map(|i| c[(i, j)] * s[i].ln()).sum::<f64>();
        assert!(
            (out.per_example[j] - want).abs() < 1e-14 * want.abs().max(1.0),
            "column {j}: {} vs {want}",
            out.per_example[j]
        );
        for i in 0..4 {
            assert!((out.grad[(i, j)] - (s[i] - c[(i, j)])).abs() < 1e-15);
        }
    }
}

#[test]
fn cross_entropy_names_itself_and_takes_an_empty_batch() {
    let err = CrossEntropy::default()
        .evaluate(&random(3, 1, -1.0, 1.0, 1), Target::Labels(&[7]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            LossError::LabelOutOfRange {
                loss: "CrossEntropy",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("CrossEntropy"), "{err}");
    // no classes and no example: nothing to compute, no panic
    let out = CrossEntropy::new(Reduction::Sum)
        .evaluate(&DMatrix::<f64>::zeros(0, 0), Target::Labels(&[]))
        .unwrap();
    assert!(out.per_example.is_empty() && out.value == 0.0);
}

#[test]
fn every_loss_names_itself() {
    let names: [(&dyn Loss<f64>, &str); 5] = [
        (&CrossEntropy::default(), "CrossEntropy"),
        (&Mse::default(), "Mse"),
        (&SigmoidMse::default(), "SigmoidMse"),
        (&BceWithLogits::default(), "BceWithLogits"),
        (&BinaryCrossEntropy::default(), "BinaryCrossEntropy"),
    ];
    for (loss, name) in names {
        assert_eq!(loss.name(), name);
    }
}

#[test]
fn mse_is_the_mean_over_outputs_of_the_squared_difference() {
    // two outputs: L = ((1 − 3)² + (4 − 4.5)²)/2 = 2.125, ∂L/∂p = (2/2)(p − t) = [−2, −0.5]
    let p = DMatrix::from_column_slice(2, 1, &[1.0, 4.0]);
    let t = DMatrix::from_column_slice(2, 1, &[3.0, 4.5]);
    let out = Mse::new(Reduction::Sum)
        .evaluate(&p, Target::Dense(&t))
        .unwrap();
    assert_eq!(out.value, 2.125);
    assert_eq!(out.grad.as_slice(), &[-2.0, -0.5]);
    // no outputs and no examples: nothing to compute, no panic
    let empty = DMatrix::<f64>::zeros(0, 0);
    let out = Mse::default()
        .evaluate(&empty, Target::Dense(&empty))
        .unwrap();
    assert!(out.per_example.is_empty());
}

#[test]
fn binary_targets_may_equal_the_ends_of_their_range() {
    // soft targets of exactly 0 and 1 are valid probabilities
    let z = DMatrix::from_column_slice(1, 2, &[0.3, -0.2]);
    let t = DMatrix::from_column_slice(1, 2, &[1.0, 0.0]);
    assert!(
        BceWithLogits::default()
            .evaluate(&z, Target::Dense(&t))
            .is_ok()
    );
}

#[test]
fn probabilities_outside_the_unit_interval_are_refused_where_they_are() {
    // BinaryCrossEntropy takes probabilities: 1.5 at row 1 of example 2 is refused there
    let mut p = DMatrix::from_element(2, 3, 0.5);
    p[(1, 2)] = 1.5;
    let t = DMatrix::from_element(2, 3, 1.0);
    let err = BinaryCrossEntropy::default()
        .evaluate(&p, Target::Dense(&t))
        .unwrap_err();
    assert!(
        matches!(err, LossError::TargetOutOfRange { index: 2, row: 1, value, .. } if value == 1.5),
        "{err:?}"
    );
}
