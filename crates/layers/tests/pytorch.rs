//! The layers PyTorch users compose with, against PyTorch: `fixtures/make_fixtures.py` ran
//! each torch module (float64) in training mode on two batches and in eval mode on a third;
//! here each layer, rebuilt from its `LayerSpec` through the registry, must give the outputs,
//! the input and parameter gradients, the running statistics and the inference outputs to
//! 1e-12 relative.

use retroprop_layers::nalgebra::DMatrix;
use retroprop_layers::{Layer, LayerSpec, build};
use serde_json::Value;

const TOL: f64 = 1e-12;

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// A `[rows, cols, row-major data]` entry.
fn matrix(v: &Value) -> DMatrix<f64> {
    let a = v.as_array().unwrap();
    let (r, c) = (a[0].as_u64().unwrap(), a[1].as_u64().unwrap());
    DMatrix::from_row_slice(r as usize, c as usize, &floats(&a[2]))
}

/// Largest `|a − b|` relative to the largest magnitude of `b` (at least 1e−300).
fn deviation(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    let scale = b.amax().max(1e-300);
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs() / scale)
        .fold(0.0, f64::max)
}

fn check(name: &str, what: &str, ours: &DMatrix<f64>, theirs: &DMatrix<f64>) {
    let d = deviation(ours, theirs);
    assert!(d <= TOL, "{name}: {what} deviates by {d:.2e} from PyTorch");
}

#[test]
fn every_layer_matches_pytorch_forward_backward_and_running_statistics() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/layers.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 13);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let spec: LayerSpec = serde_json::from_value(case["spec"].clone()).unwrap();
        let mut layer = build::<f64>(&spec).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (path, value) in case["params"].as_object().unwrap() {
            layer.set_param(path, matrix(value)).unwrap();
        }
        let rows = case["rows"].as_u64().unwrap() as usize;
        let n = case["batch"].as_u64().unwrap() as usize;
        let batch = |key: &str| DMatrix::from_column_slice(rows, n, &floats(&case[key]));
        let x = batch("x");
        let y = layer.forward(&x).unwrap();
        let out_rows = y.nrows();
        let out = |key: &str| DMatrix::from_column_slice(out_rows, n, &floats(&case[key]));
        check(name, "y", &y, &out("y"));
        let dx = layer.backward(&out("g")).unwrap();
        check(name, "dL/dx", &dx, &batch("dx"));
        for (path, value) in case["grads"].as_object().unwrap() {
            let mut grad = None;
            layer.visit_params(&mut |p, param| {
                if p == path {
                    grad = Some(param.grad().clone());
                }
            });
            let grad = grad.unwrap_or_else(|| panic!("{name}: no parameter {path}"));
            check(name, &format!("dL/d{path}"), &grad, &matrix(value));
        }
        layer.forward(&batch("x2")).unwrap();
        let mut buffers = Vec::new();
        layer.visit_buffers(&mut |p, b| buffers.push((p.to_string(), b.value().clone())));
        let expected = case["buffers"].as_object().unwrap();
        assert_eq!(buffers.len(), expected.len(), "{name}: buffers");
        for (path, value) in buffers {
            check(name, &path, &value, &matrix(&expected[&path]));
        }
        let inferred = layer.infer(&batch("x3")).unwrap();
        check(name, "eval output", &inferred, &out("infer"));
    }
}
