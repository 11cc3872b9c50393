//! Every optimizer against PyTorch: `fixtures/make_fixtures.py` ran each for 50 steps on fixed
//! parameters and a fixed gradient sequence; here the same runs must give every parameter at
//! every step to 1e-12 relative, in f64.

use retroprop_layers::nalgebra::DMatrix;
use retroprop_layers::{Layer, LayerError, Param, ParamKind, Shape};
use retroprop_optim::{
    Adam, Momentum, OptimError, Optimizer, RmsProp, Sgd, WeightDecay, clip_grad_norm,
    clip_grad_value,
};
use serde_json::Value;

/// Three parameters, like a layer's, whose gradients the test sets by hand.
struct Tensors {
    params: Vec<Param<f64>>,
}

impl Layer<f64> for Tensors {
    fn name(&self) -> &'static str {
        "Tensors"
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, LayerError> {
        Ok(input)
    }
    fn forward(&mut self, x: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
        Ok(x.clone())
    }
    fn backward(&mut self, g: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
        Ok(g.clone())
    }
    fn infer(&self, x: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
        Ok(x.clone())
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f64>)) {
        for (p, name) in self.params.iter().zip(["a", "b", "c"]) {
            f(name, p);
        }
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<f64>)) {
        for (p, name) in self.params.iter_mut().zip(["a", "b", "c"]) {
            f(name, p);
        }
    }
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/trajectories.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Our optimizer for a run's PyTorch settings.
fn optimizer(s: &Value) -> Result<Box<dyn Optimizer<f64>>, OptimError> {
    let f = |k: &str| s.get(k).and_then(Value::as_f64);
    let lr = f("lr").unwrap();
    Ok(match s["opt"].as_str().unwrap() {
        "sgd" => {
            let mut sgd = Sgd::new(lr)?;
            if let Some(mu) = f("momentum") {
                let nesterov = s.get("nesterov").and_then(Value::as_bool) == Some(true);
                sgd = sgd.with_momentum(if nesterov {
                    Momentum::Nesterov { mu }
                } else {
                    Momentum::Heavy { mu }
                })?;
            }
            if let Some(wd) = f("weight_decay") {
                sgd = sgd.with_weight_decay(WeightDecay::pytorch(wd)?);
            }
            Box::new(sgd)
        }
        kind @ ("adam" | "adamw") => {
            let mut adam = if kind == "adam" {
                Adam::new(lr)?
            } else {
                Adam::adamw(lr)?
            };
            if let Some(b) = s.get("betas") {
                let b = floats(b);
                adam = adam.with_betas(b[0], b[1])?;
            }
            if let Some(eps) = f("eps") {
                adam = adam.with_eps(eps)?;
            }
            if let Some(wd) = f("weight_decay") {
                adam = adam.with_weight_decay(wd)?;
            }
            Box::new(adam)
        }
        "rmsprop" => {
            let mut r = RmsProp::new(lr)?;
            if let Some(a) = f("alpha") {
                r = r.with_alpha(a)?;
            }
            if let Some(mu) = f("momentum") {
                r = r.with_momentum(mu)?;
            }
            if let Some(wd) = f("weight_decay") {
                r = r.with_weight_decay(wd)?;
            }
            Box::new(r)
        }
        other => panic!("unknown optimizer {other}"),
    })
}

#[test]
fn every_optimizer_follows_pytorch_to_1e_12_at_every_step() {
    let doc = fixture();
    let start: Vec<Vec<f64>> = doc["start"]
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    let grads = doc["grads"].as_array().unwrap();
    let runs = doc["runs"].as_object().unwrap();
    assert_eq!(runs.len(), 10);
    for (name, run) in runs {
        let settings = &run["settings"];
        let mut opt = optimizer(settings).unwrap();
        let mut model = Tensors {
            params: start
                .iter()
                .map(|v| {
                    Param::new(
                        "t",
                        ParamKind::Weight,
                        DMatrix::from_column_slice(v.len(), 1, v),
                    )
                })
                .collect(),
        };
        let mut worst = 0.0f64;
        for (step, (g, expected)) in grads
            .iter()
            .zip(run["trajectory"].as_array().unwrap())
            .enumerate()
        {
            for (p, g) in model.params.iter_mut().zip(g.as_array().unwrap()) {
                p.grad_mut().copy_from_slice(&floats(g));
            }
            if let Some(c) = settings.get("clip_norm").and_then(Value::as_f64) {
                clip_grad_norm(&mut model, c).unwrap();
            }
            if let Some(c) = settings.get("clip_value").and_then(Value::as_f64) {
                clip_grad_value(&mut model, c).unwrap();
            }
            opt.step(&mut model).unwrap();
            for (p, want) in model.params.iter().zip(expected.as_array().unwrap()) {
                for (&ours, theirs) in p.value().iter().zip(floats(want)) {
                    let rel = (ours - theirs).abs() / theirs.abs().max(1e-300);
                    worst = worst.max(rel);
                    assert!(
                        rel <= 1e-12,
                        "{name}, step {}: {ours} against PyTorch's {theirs} ({rel:e})",
                        step + 1
                    );
                }
            }
        }
        eprintln!("{name}: worst relative difference from PyTorch over 50 steps {worst:.1e}");
    }
}

#[test]
fn adam_state_resumes_the_same_trajectory() {
    let doc = fixture();
    let start: Vec<Vec<f64>> = doc["start"]
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    let grads: Vec<Vec<Vec<f64>>> = doc["grads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_array().unwrap().iter().map(floats).collect())
        .collect();
    let fresh = || Tensors {
        params: start
            .iter()
            .map(|v| {
                Param::new(
                    "t",
                    ParamKind::Weight,
                    DMatrix::from_column_slice(v.len(), 1, v),
                )
            })
            .collect(),
    };
    let step = |m: &mut Tensors, o: &mut Adam<f64>, g: &[Vec<f64>]| {
        for (p, g) in m.params.iter_mut().zip(g) {
            p.grad_mut().copy_from_slice(g);
        }
        o.step(m).unwrap();
    };
    let (mut a, mut oa) = (fresh(), Adam::adamw(0.01).unwrap());
    for g in &grads {
        step(&mut a, &mut oa, g);
    }
    let (mut b, mut ob) = (fresh(), Adam::adamw(0.01).unwrap());
    for g in &grads[..20] {
        step(&mut b, &mut ob, g);
    }
    let mut resumed = Adam::adamw(0.01).unwrap();
    resumed.restore(ob.state()).unwrap();
    assert_eq!(
        resumed.state().steps,
        20,
        "the step count, for the bias correction"
    );
    for g in &grads[20..] {
        step(&mut b, &mut resumed, g);
    }
    for (x, y) in a.params.iter().zip(&b.params) {
        assert_eq!(x.value(), y.value());
    }
    // Adam's state does not restore into AdamW or RMSprop
    assert!(Adam::<f64>::new(0.01).unwrap().restore(oa.state()).is_err());
    assert!(
        RmsProp::<f64>::new(0.01)
            .unwrap()
            .restore(oa.state())
            .is_err()
    );
}
