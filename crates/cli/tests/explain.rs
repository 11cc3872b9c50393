//! `retroprop explain` and `retroprop check` as a student and a teacher use them: the
//! explanation of the shipped instance agrees value by value with the library, fits in 80
//! columns, and `check` passes a right answer file and names each planted mistake.

use std::path::PathBuf;

use nalgebra::DMatrix;
use retroprop_layers::{Dense, Init, Layer, Softplus};
use retroprop_losses::{CrossEntropy, Loss, Reduction, Target};
use serde_json::{Value, json};

mod common;
use common::{ok, retroprop};

const INSTANCE: &str = "../../docs/explain/mlp-instance.json";

fn explain_json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).unwrap()
}

/// The value of a quantity of an explanation, as a matrix.
fn value(doc: &Value, name: &str) -> DMatrix<f64> {
    let q = doc["quantities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == name)
        .unwrap_or_else(|| panic!("no {name}"));
    let rows: Vec<Vec<f64>> = serde_json::from_value(q["value"].clone()).unwrap();
    DMatrix::from_fn(rows.len(), rows[0].len(), |i, j| rows[i][j])
}

fn m(rows: &[&[f64]]) -> DMatrix<f64> {
    DMatrix::from_fn(rows.len(), rows[0].len(), |i, j| rows[i][j])
}

fn assert_close(a: &DMatrix<f64>, b: &DMatrix<f64>, what: &str) {
    assert_eq!(a.shape(), b.shape(), "{what}");
    let d = (a - b).amax();
    assert!(d < 1e-12, "{what}: {a} vs {b}");
}

#[test]
fn the_mlp_explanation_agrees_with_the_library_value_by_value() {
    let doc = explain_json(&["explain", "mlp", "--instance", INSTANCE, "--json"]);
    let w1 = m(&[&[0.5, -1.0, 0.0], &[1.0, 0.5, -0.5]]);
    let w2 = m(&[&[1.0, -0.5], &[0.5, 1.0]]);
    let x = m(&[&[1.0], &[0.5], &[-1.0]]);
    let mut l1 = Dense::<f64>::new(3, 2, Init::Zeros).unwrap();
    l1.set_param("weight", w1.clone()).unwrap();
    l1.set_param("bias", m(&[&[0.0], &[0.5]])).unwrap();
    let mut l2 = Dense::<f64>::new(2, 2, Init::Zeros).unwrap();
    l2.set_param("weight", w2.clone()).unwrap();
    l2.set_param("bias", m(&[&[0.0], &[-0.5]])).unwrap();
    let mut phi = Softplus::new();
    let h_a = l1.forward(&x).unwrap();
    // 2a by hand: W⁽¹⁾x + b⁽¹⁾ = [0.5 − 0.5 + 0, 1 + 0.25 + 0.5 + 0.5]
    assert_close(&h_a, &m(&[&[0.0], &[2.25]]), "hᵃ by hand");
    assert_close(&value(&doc, "h_a"), &h_a, "h_a");
    let h_s = phi.forward(&h_a).unwrap();
    assert_close(&value(&doc, "h_s"), &h_s, "h_s");
    let o_a = l2.forward(&h_s).unwrap();
    assert_close(&value(&doc, "o_a"), &o_a, "o_a");
    let ce = CrossEntropy {
        reduction: Reduction::Sum,
    };
    let out = ce.evaluate(&o_a, Target::Labels(&[1])).unwrap();
    assert_close(&value(&doc, "L"), &m(&[&[out.value]]), "L");
    assert_close(&value(&doc, "dL_do_a"), &out.grad, "dL_do_a");
    let dh_s = l2.backward(&out.grad).unwrap();
    assert_close(&value(&doc, "dL_dh_s"), &dh_s, "dL_dh_s");
    assert_close(
        &value(&doc, "dL_dh_s"),
        &(w2.transpose() * &out.grad),
        "W2ᵀ δ",
    );
    let dh_a = phi.backward(&dh_s).unwrap();
    assert_close(&value(&doc, "dL_dh_a"), &dh_a, "dL_dh_a");
    l1.backward(&dh_a).unwrap();
    assert_close(&value(&doc, "dR_dW1"), l1.weight().grad(), "dR_dW1");
    assert_close(&value(&doc, "dR_dW2"), l2.weight().grad(), "dR_dW2");
    assert_close(
        &value(&doc, "n_theta"),
        &m(&[&[2.0 * 3.0 + 2.0 + 2.0 * 2.0 + 2.0]]),
        "n_θ",
    );
    let sums = value(&doc, "sum_o_s");
    assert!((sums[0] - 1.0).abs() < 1e-15);
    // 2j and 2k: θ − η∇, and (1 − 2ηλ)θ − η∇, from the library's gradients
    let (eta, lambda) = (0.5, 0.1);
    let g = l1.weight().grad();
    assert_close(&value(&doc, "W1_new"), &(&w1 - g * eta), "W1 after 2j");
    assert_close(
        &value(&doc, "W1_new_l2"),
        &(&w1 * (1.0 - 2.0 * eta * lambda) - g * eta),
        "W1 after 2k",
    );
    // every gradient has its finite differences beside it, and they agree
    for q in doc["quantities"].as_array().unwrap() {
        if let Some(numeric) = q.get("numeric") {
            let a: Vec<Vec<f64>> = serde_json::from_value(q["value"].clone()).unwrap();
            let b: Vec<Vec<f64>> = serde_json::from_value(numeric.clone()).unwrap();
            for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
                assert!((x - y).abs() < 1e-7, "{}: {x} vs {y}", q["name"]);
            }
        }
    }
    let with_numeric = doc["quantities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q.get("numeric").is_some())
        .count();
    assert_eq!(with_numeric, 7);
}

#[test]
fn every_explanation_is_readable_in_80_columns() {
    let runs: [&[&str]; 5] = [
        &["explain", "mlp", "--instance", INSTANCE],
        &["explain", "mlp", "--seed", "4", "--sizes", "4,3,2,2"],
        &["explain", "binary", "--logit", "-10", "--label", "1"],
        &["explain", "cnn"],
        &["explain", "conv1d", "--mode", "same"],
    ];
    for args in runs {
        let text = ok(args);
        for line in text.lines() {
            assert!(line.chars().count() <= 80, "{args:?}: {line}");
        }
    }
    let cnn = ok(&["explain", "cnn"]);
    for needle in [
        "⌊(128 + 2·3 − 8)/2⌋ + 1 = 64",
        "3·3·32·64 = 18432, + 64 biases",
        "65536",
    ] {
        assert!(cnn.contains(needle), "missing {needle}:\n{cnn}");
    }
    let conv = ok(&["explain", "conv1d"]);
    assert!(
        conv.contains("[0.25, 0.5, 1.5, 2.5, 3.25, 3.25, 2.5, 1.5, 0.5, 0.25]"),
        "{conv}"
    );
    assert!(
        conv.contains("y[2] = 4·0.25 + 1·0.25 + 1·0.25 = 1.5"),
        "{conv}"
    );
    let binary = ok(&["explain", "binary", "--logit", "-10", "--label", "1"]);
    assert!(binary.contains("σ saturates"), "{binary}");
    assert!(
        binary.contains("[-10, -9.079e-5, -0.999955],"),
        "one row of 2g's table per line:\n{binary}"
    );
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "retroprop-check-{name}-{}.json",
        std::process::id()
    ))
}

/// An answer file: the explanation's own instance with these values.
fn answers(doc: &Value, values: &[(&str, Value)]) -> PathBuf {
    let quantities: Vec<Value> = values
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    let file = json!({"kind": doc["kind"], "instance": doc["instance"], "quantities": quantities});
    let path = temp(&format!(
        "{}-{}",
        doc["kind"].as_str().unwrap(),
        values[values.len() - 1].0
    ));
    std::fs::write(&path, file.to_string()).unwrap();
    path
}

/// Runs `check` on the file: (succeeded, stdout).
fn check(path: &PathBuf) -> (bool, String) {
    let out = retroprop(&["check", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(path);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn rows(m: &DMatrix<f64>) -> Value {
    json!(
        (0..m.nrows())
            .map(|i| (0..m.ncols()).map(|j| m[(i, j)]).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    )
}

#[test]
fn a_right_answer_file_passes_rounded_to_three_decimals() {
    let doc = explain_json(&["explain", "mlp", "--instance", INSTANCE, "--json"]);
    let names = [
        "h_a",
        "h_s",
        "o_a",
        "o_s",
        "L",
        "R_hat",
        "dL_do_a",
        "dR_dW2",
        "dL_dh_s",
        "dL_dh_a",
        "W1_new_l2",
    ];
    let values: Vec<(&str, Value)> = names
        .iter()
        .map(|&n| {
            (
                n,
                rows(&value(&doc, n).map(|v| (v * 1000.0).round() / 1000.0)),
            )
        })
        .collect();
    let (passed, text) = check(&answers(&doc, &values));
    assert!(passed, "{text}");
    assert!(text.contains("11 of 11 right"), "{text}");
}

/// Plants one wrong value and requires `check` to fail naming `expected`.
fn names_the_mistake(doc: &Value, name: &str, wrong: Value, expected: &str) {
    let (passed, text) = check(&answers(doc, &[(name, wrong)]));
    assert!(!passed, "{name}: a wrong value passed:\n{text}");
    assert!(
        text.contains(expected),
        "{name}: expected `{expected}` in:\n{text}"
    );
}

#[test]
fn each_known_mistake_of_the_answer_key_is_named() {
    let doc = explain_json(&["explain", "mlp", "--instance", INSTANCE, "--json"]);
    let w2 = m(&[&[1.0, -0.5], &[0.5, 1.0]]);
    let delta = value(&doc, "dL_do_a");
    // 2o/2p: W⁽²⁾ δ instead of W⁽²⁾ᵀ δ
    names_the_mistake(
        &doc,
        "dL_dh_s",
        rows(&(&w2 * &delta)),
        "the transpose is dropped",
    );
    // 2m/2n: the all-ones ∂oᵃ/∂b⁽²⁾
    names_the_mistake(&doc, "dR_db2", json!([0.0, 0.0]), "taken as all ones");
    names_the_mistake(
        &doc,
        "dR_dW2",
        json!([[0.0, 0.0], [0.0, 0.0]]),
        "taken as all ones",
    );
    // 1e: the softmax Jacobian for σ' — S ⊙ (g − ⟨g, S⟩) with S = softmax(hᵃ)
    let h_a = value(&doc, "h_a");
    let g = value(&doc, "dL_dh_s");
    let e = h_a.map(f64::exp);
    let s = &e / e.sum();
    let wrong = s.component_mul(&g.add_scalar(-g.dot(&s)));
    names_the_mistake(&doc, "dL_dh_a", rows(&wrong), "the softmax Jacobian used");
    // 1j's typo S_i δ_ij − S_j
    let o = value(&doc, "o_s");
    let typo = DMatrix::from_fn(2, 2, |i, j| if i == j { o[i] } else { 0.0 } - o[j]);
    names_the_mistake(&doc, "J_softmax", rows(&typo), "the typo of 1j");
    // 2k: λθ instead of 2λθ, and the biases spared
    let (eta, lambda) = (0.5, 0.1);
    let w1 = m(&[&[0.5, -1.0, 0.0], &[1.0, 0.5, -0.5]]);
    let gw1 = value(&doc, "dR_dW1");
    names_the_mistake(
        &doc,
        "W1_new_l2",
        rows(&(&w1 * (1.0 - eta * lambda) - &gw1 * eta)),
        "λθ instead of 2λθ",
    );
    let b1 = m(&[&[0.0], &[0.5]]);
    let gb1 = value(&doc, "dR_db1");
    names_the_mistake(
        &doc,
        "b1_new_l2",
        rows(&(&b1 - &gb1 * eta)),
        "the biases left out",
    );
    // 2h/2i: the sign of the risk
    names_the_mistake(&doc, "R_hat", rows(&-value(&doc, "R_hat")), "the sign");
    // an upstream error carried down: a wrong hᵃ, then the hˢ that is right for it
    let wrong_h_a = m(&[&[1.0], &[2.25]]);
    let h_s_of_it = wrong_h_a.map(|v| (1.0 + v.exp()).ln());
    let path = answers(
        &doc,
        &[("h_a", rows(&wrong_h_a)), ("h_s", rows(&h_s_of_it))],
    );
    let (passed, text) = check(&path);
    assert!(
        !passed && text.contains("consistent with your value of h_a"),
        "{text}"
    );
}

#[test]
fn the_mistakes_of_other_instances_are_named() {
    // the sum to m instead of d_h shows when d_h > m
    let wide = explain_json(&[
        "explain", "mlp", "--seed", "3", "--sizes", "2,3,2,1", "--json",
    ]);
    let w2: Vec<Vec<f64>> = serde_json::from_value(wide["instance"]["w2"].clone()).unwrap();
    let b2: Vec<f64> = serde_json::from_value(wide["instance"]["b2"].clone()).unwrap();
    let h_s = value(&wide, "h_s");
    let cut: Vec<f64> = (0..2)
        .map(|k| w2[k][0] * h_s[0] + w2[k][1] * h_s[1] + b2[k])
        .collect();
    let distinct = (value(&wide, "o_a") - DMatrix::from_column_slice(2, 1, &cut)).amax();
    assert!(distinct > 0.05, "this instance must tell the mistake apart");
    names_the_mistake(&wide, "o_a", json!(cut), "runs to m instead of d_h");
    // 2e: the factor 2 of the MSE gradient
    let binary = explain_json(&[
        "explain", "binary", "--logit", "0.5", "--label", "0", "--json",
    ]);
    let half = value(&binary, "dL_mse")[0] / 2.0;
    names_the_mistake(&binary, "dL_mse", json!(half), "the factor 2");
    // 3b: 576 for 18 432
    let cnn = explain_json(&["explain", "cnn", "--json"]);
    names_the_mistake(
        &cnn,
        "weights_3",
        json!(576),
        "input channels are forgotten",
    );
    // 3c: the 3-tap kernel
    let conv = explain_json(&["explain", "conv1d", "--json"]);
    let three_tap = [0.25, 0.5, 1.5, 2.25, 3.0, 2.25, 1.5, 0.5, 0.25];
    names_the_mistake(&conv, "full", json!(three_tap), "one tap fewer");
}
