//! Downstream style: compose a custom network from retroprop's layers and a layer of your own,
//! prove its gradient, train it, save it and load it back.
//!
//! ```sh
//! cargo run --release -p retroprop-models --example custom_network
//! ```

use std::error::Error;
use std::ops::ControlFlow;

use nalgebra::DMatrix;
use retroprop_core::rng::Rng;
use retroprop_gradcheck::{Config, conformance};
use retroprop_layers::{Dense, Init, Layer, LayerError, Param, ParamKind, Shape, Softplus};
use retroprop_losses::CrossEntropy;
use retroprop_models::{
    BatchSize, Event, FitConfig, InMemory, Sequential, Summary, checkpoint, evaluate, fit,
};
use retroprop_optim::{Momentum, Sgd, WeightDecay};

/// A layer of our own: `y = x ⊙ s` with one learnable scale per feature.
struct FeatureScale {
    scale: Param<f64>,
    input: Option<DMatrix<f64>>,
}

impl FeatureScale {
    fn new(features: usize) -> Self {
        Self {
            scale: Param::new(
                "scale",
                ParamKind::Weight,
                DMatrix::from_element(features, 1, 1.0),
            ),
            input: None,
        }
    }

    fn apply(&self, x: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
        let s = self.scale.value();
        if x.nrows() != s.nrows() {
            return Err(LayerError::ShapeMismatch {
                layer: "FeatureScale",
                what: "input",
                expected: s.nrows(),
                got: x.nrows(),
            });
        }
        Ok(DMatrix::from_fn(x.nrows(), x.ncols(), |i, j| {
            x[(i, j)] * s[i]
        }))
    }
}

impl Layer<f64> for FeatureScale {
    fn name(&self) -> &'static str {
        "FeatureScale"
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, LayerError> {
        Ok(input)
    }
    fn forward(&mut self, x: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
        let y = self.apply(x)?;
        self.input = Some(x.clone());
        Ok(y)
    }
    fn backward(&mut self, g: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
        let x = self.input.as_ref().ok_or(LayerError::NoForwardCache {
            layer: "FeatureScale",
        })?;
        if g.shape() != x.shape() {
            return Err(LayerError::BatchMismatch {
                layer: "FeatureScale",
                expected: x.ncols(),
                got: g.ncols(),
            });
        }
        // dL/ds_i = Σ_j g_ij x_ij;  dL/dx = g ⊙ s
        for i in 0..x.nrows() {
            self.scale.grad_mut()[i] += (0..x.ncols()).map(|j| g[(i, j)] * x[(i, j)]).sum::<f64>();
        }
        let s = self.scale.value();
        Ok(DMatrix::from_fn(g.nrows(), g.ncols(), |i, j| {
            g[(i, j)] * s[i]
        }))
    }
    fn infer(&self, x: &DMatrix<f64>) -> Result<DMatrix<f64>, LayerError> {
        self.apply(x)
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f64>)) {
        f("scale", &self.scale);
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<f64>)) {
        f("scale", &mut self.scale);
    }
}

fn network(seed: u64) -> Result<Sequential<f64>, Box<dyn Error>> {
    Ok(Sequential::new(Shape::Flat(3))
        .push(FeatureScale::new(3))?
        .push(Dense::new(3, 12, Init::XavierUniform { seed })?)?
        .push(Softplus::new())?
        .push(Dense::new(12, 3, Init::XavierUniform { seed: seed + 1 })?)?)
}

/// Three classes: which coordinate of a noisy point is largest.
fn dataset(n: usize, seed: u64) -> Result<InMemory<f64>, Box<dyn Error>> {
    let mut rng = Rng::new(seed);
    let x = DMatrix::from_fn(3, n, |_, _| rng.uniform(-1.0, 1.0));
    let labels = (0..n).map(|j| x.column(j).argmax().0).collect();
    Ok(InMemory::new(x, labels, 3)?)
}

fn main() -> Result<(), Box<dyn Error>> {
    // 1. prove the custom layer before trusting it
    let probe = DMatrix::from_fn(3, 4, |i, j| (i as f64 - 1.0) * 0.5 + j as f64 * 0.1);
    let proof = conformance(|| Ok(FeatureScale::new(3)), &probe, &Config::default())?;
    assert!(proof.passed(), "{proof}");
    println!("FeatureScale conforms to the Layer contract:\n{proof}");

    // 2. compose, inspect, train
    let mut net = network(1)?;
    println!("{}\n", Summary::of(&net));
    let (train, test) = (dataset(2000, 2)?, dataset(500, 3)?);
    let mut sgd = Sgd::new(0.05)?
        .with_momentum(Momentum::Heavy { mu: 0.9 })?
        .with_weight_decay(WeightDecay::homework(1e-4)?);
    let loss = CrossEntropy::default();
    let config = FitConfig::new(8, BatchSize::Mini(32)).seed(4);
    fit(
        &mut net,
        &train,
        &loss,
        &mut sgd,
        &config,
        |event, model| {
            if let Event::Epoch(stats) = event {
                let eval = evaluate(model, &test, &CrossEntropy::default()).expect("test set fits");
                println!(
                    "epoch {}: train loss {:.4}, test accuracy {:.1}%",
                    stats.epoch,
                    stats.train_loss,
                    100.0 * eval.accuracy
                );
            }
            ControlFlow::Continue(())
        },
    )?;
    let eval = evaluate(&net, &test, &loss)?;
    println!("\nconfusion matrix (test):\n{}", eval.confusion);
    assert!(eval.accuracy > 0.9, "accuracy {}", eval.accuracy);

    // 3. save, and load into a freshly built network (a custom layer cannot be rebuilt from
    //    the file alone, so the architecture comes from code and is checked against the file)
    let path = std::env::temp_dir().join(format!("custom-network-{}.ckpt", std::process::id()));
    checkpoint::save(&net, &path)?;
    let mut restored = network(99)?;
    checkpoint::load_into(&mut restored, &path)?;
    assert_eq!(net.infer(test.x())?, restored.infer(test.x())?);
    println!(
        "saved to {} and restored: predictions identical",
        path.display()
    );
    std::fs::remove_file(&path)?;
    Ok(())
}
