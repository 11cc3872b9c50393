//! Cross-crate gradient checks: every layer, loss, optimizer and composed model, in f64.

use nalgebra::DMatrix;
use retroprop_gradcheck::{Config, Outcome, Suite, check_batch_gradient, check_with_loss};
use retroprop_layers::{
    Conv2d, Conv2dConfig, Dense, Flatten, Init, Layer, LayerError, MaxPool2d, MaxPool2dConfig,
    Relu, Sigmoid, Softmax, Softplus, Standardize, Tanh,
};
use retroprop_losses::{
    BceWithLogits, BinaryCrossEntropy, CrossEntropy, Loss, Mse, Reduction, SigmoidMse, Target,
};
use retroprop_models::{Sequential, cnn_classifier, homework_cnn, mlp};
use retroprop_optim::{Momentum, Optimizer, Sgd, WeightDecay};

use super::{away_from_zero, distinct, labels, random};

/// A named constructor of a parameter-free layer.
type MakeLayer = (&'static str, fn() -> Box<dyn Layer<f64>>);

/// A loss check: name, loss, predictions, targets.
type LossCase = (&'static str, Box<dyn Loss<f64>>, DMatrix<f64>, TargetData);

fn boxed<L: Layer<f64> + 'static>(
    r: Result<L, LayerError>,
) -> Result<Box<dyn Layer<f64>>, LayerError> {
    r.map(|l| Box::new(l) as Box<dyn Layer<f64>>)
}

/// Every layer of retroprop-layers under several configurations and seeds, through the same
/// registration path a user has (`Suite::add_layer`).
pub fn layers(suite: &mut Suite) {
    const G: &str = "layers (gradients + Layer contract)";
    for (seed, (d_in, d_out, n)) in [
        (1u64, (1, 1, 1)),
        (2, (7, 3, 4)),
        (3, (3, 7, 2)),
        (4, (16, 9, 5)),
    ] {
        suite.add_layer(
            format!("layers/dense/{d_in}x{d_out}/n{n}"),
            G,
            format!("Dense {d_in}→{d_out}, batch {n}, seed {seed}"),
            move || boxed(Dense::new(d_in, d_out, Init::PyTorchDefault { seed })),
            random(d_in, n, -2.0, 2.0, seed),
            Config {
                seed,
                ..Config::default()
            },
        );
    }
    let activations: [MakeLayer; 8] = [
        ("softplus", || Box::new(Softplus::new())),
        ("sigmoid", || Box::new(Sigmoid::new())),
        ("tanh", || Box::new(Tanh::new())),
        ("softmax", || Box::new(Softmax::new())),
        ("relu", || Box::new(Relu::new())),
        ("leaky-relu", || {
            Box::new(retroprop_layers::LeakyRelu::new(0.1).expect("valid"))
        }),
        ("flatten", || Box::new(Flatten::new())),
        ("standardize", || {
            Box::new(Standardize::new(0.1307, 0.3081).expect("valid"))
        }),
    ];
    for (name, make) in activations {
        for (seed, n) in [(5u64, 1), (6, 4)] {
            let x = if name.contains("relu") {
                away_from_zero(7, n, seed)
            } else {
                random(7, n, -5.0, 5.0, seed)
            };
            suite.add_layer(
                format!("layers/{name}/n{n}"),
                G,
                format!("{} on 7 features, batch {n}", capitalise(name)),
                move || Ok(make()),
                x,
                Config {
                    seed,
                    ..Config::default()
                },
            );
        }
    }
    for (name, config) in [
        (
            "overlap-pad",
            MaxPool2dConfig::new((2, 5, 5), 3).stride(2).padding(1),
        ),
        ("global", MaxPool2dConfig::new((2, 5, 5), (5, 5))),
    ] {
        suite.add_layer(
            format!("layers/avgpool2d/{name}"),
            G,
            format!(
                "AvgPool2d {}×{} stride {} on 2×5×5",
                config.kernel.h, config.kernel.w, config.stride.h
            ),
            move || Ok(Box::new(retroprop_layers::AvgPool2d::new(config)?)),
            random(50, 3, -2.0, 2.0, 41),
            Config::default(),
        );
    }
    suite.add(
        "layers/dropout/held-mask",
        G,
        "Dropout p = 0.3 with its mask held (dL/dx = dL/dy ⊙ m)",
        || {
            let x = random(8, 4, -2.0, 2.0, 21);
            let mut d = retroprop_layers::Dropout::<f64>::new(0.3).expect("valid");
            Layer::reseed(&mut d, 5);
            if let Err(e) = Layer::forward(&mut d, &x) {
                return Outcome::error(e.to_string());
            }
            d.hold_mask(true);
            match retroprop_gradcheck::check_layer(&mut d, &x, &Config::default()) {
                Ok(report) => Outcome::from_report(&report),
                Err(e) => Outcome::error(e.to_string()),
            }
        },
    );
    for (name, approximate) in [
        ("exact", retroprop_layers::GeluApproximation::None),
        ("tanh", retroprop_layers::GeluApproximation::Tanh),
    ] {
        suite.add_layer(
            format!("layers/gelu/{name}"),
            G,
            format!("GELU ({name}) on 7 features in [−6, 6], batch 4"),
            move || Ok(Box::new(retroprop_layers::Gelu::new(approximate))),
            random(7, 4, -6.0, 6.0, 45),
            Config::default(),
        );
    }
    for (name, config) in [
        ("affine", retroprop_layers::LayerNormConfig::new(6)),
        (
            "no-affine",
            retroprop_layers::LayerNormConfig::new(6).elementwise_affine(false),
        ),
    ] {
        suite.add_layer(
            format!("layers/layernorm/{name}"),
            G,
            format!("LayerNorm over 6 values ({name}), batch 4"),
            move || {
                let mut ln = retroprop_layers::LayerNorm::new(config)?;
                if config.elementwise_affine {
                    // γ, β away from 1, 0 so that their gradients matter
                    ln.set_param("weight", random(6, 1, 0.5, 1.5, 46))?;
                    ln.set_param("bias", random(6, 1, -0.5, 0.5, 47))?;
                }
                Ok(Box::new(ln))
            },
            random(6, 4, -3.0, 3.0, 48),
            Config::default(),
        );
    }
    suite.add_layer(
        "layers/residual/projection",
        G,
        "Residual: Dense 5→3 body + Dense 5→3 projection (J_fᵀ g + J_Pᵀ g)",
        || {
            Ok(Box::new(retroprop_layers::Residual::with_projection(
                Dense::<f64>::new(5, 3, Init::PyTorchDefault { seed: 49 })?,
                Dense::<f64>::new(5, 3, Init::PyTorchDefault { seed: 50 })?,
            )))
        },
        random(5, 3, -2.0, 2.0, 51),
        Config::default(),
    );
    super::norms::batch_norms(suite);
    suite.add_layer(
        "layers/softmax/large",
        G,
        "Softmax on logits around 1000",
        || Ok(Box::new(Softmax::new())),
        random(5, 3, 995.0, 1005.0, 7),
        Config::default(),
    );
    let convs = [
        (
            "q3-first",
            Conv2dConfig::new((3, 16, 16), 4, 8).stride(2).padding(3),
            2,
        ),
        ("q3-third", Conv2dConfig::new((4, 8, 8), 6, 3).padding(1), 2),
        (
            "rect-kernel",
            Conv2dConfig::new((2, 9, 7), 3, (3, 2))
                .stride((2, 1))
                .padding((1, 2)),
            3,
        ),
        (
            "dilated",
            Conv2dConfig::new((1, 11, 11), 2, 3)
                .dilation(2)
                .stride(2)
                .padding(1),
            2,
        ),
        (
            "dilated-stride1",
            Conv2dConfig::new((2, 9, 9), 3, 3).dilation(2).padding(2),
            2,
        ),
        (
            "no-bias",
            Conv2dConfig::new((3, 6, 5), 2, (2, 3)).without_bias(),
            1,
        ),
    ];
    for (seed, (name, cfg, n)) in convs.into_iter().enumerate() {
        let seed = seed as u64 + 10;
        suite.add_layer(
            format!("layers/conv2d/{name}"),
            G,
            format!(
                "Conv2d {name}: {}→{}, batch {n}",
                cfg.input_shape(),
                cfg.output_shape().map_or("?".into(), |s| s.to_string())
            ),
            move || boxed(Conv2d::new(cfg, Init::PyTorchDefault { seed })),
            random(cfg.input_shape().len(), n, -1.0, 1.0, seed),
            Config {
                seed,
                max_entries: 256,
                ..Config::default()
            },
        );
    }
    let pools = [
        ("2x2", MaxPool2dConfig::new((3, 8, 8), 2), 2),
        (
            "3x3-s1-p1",
            MaxPool2dConfig::new((2, 6, 6), 3).stride(1).padding(1),
            2,
        ),
        (
            "2x1-s(1,2)",
            MaxPool2dConfig::new((1, 6, 5), (2, 1)).stride((1, 2)),
            1,
        ),
    ];
    for (seed, (name, cfg, n)) in pools.into_iter().enumerate() {
        suite.add_layer(
            format!("layers/maxpool2d/{name}"),
            G,
            format!(
                "MaxPool2d {name} on {}, distinct inputs, batch {n}",
                cfg.input_shape()
            ),
            move || boxed(MaxPool2d::new(cfg)),
            distinct(cfg.input_shape().len(), n, seed as u64),
            Config::default(),
        );
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Every loss and reduction: its gradient is the gradient of its value.
pub fn losses(suite: &mut Suite) {
    const G: &str = "losses (gradient of the value)";
    let reductions = [
        ("mean", Reduction::Mean),
        ("sum", Reduction::Sum),
        ("none", Reduction::None),
    ];
    for (rname, reduction) in reductions {
        let cases: Vec<LossCase> = vec![
            (
                "cross-entropy/labels",
                Box::new(CrossEntropy { reduction }),
                random(6, 5, -4.0, 4.0, 1),
                TargetData::Labels(labels(5, 6, 2)),
            ),
            (
                "cross-entropy/soft",
                Box::new(CrossEntropy { reduction }),
                random(4, 3, -3.0, 3.0, 3),
                TargetData::Dense(probabilities(4, 3, 4)),
            ),
            (
                "sigmoid-mse",
                Box::new(SigmoidMse { reduction }),
                random(1, 8, -6.0, 6.0, 5),
                TargetData::Labels(labels(8, 2, 6)),
            ),
            (
                "bce-with-logits",
                Box::new(BceWithLogits { reduction }),
                random(2, 5, -6.0, 6.0, 7),
                TargetData::Dense(random(2, 5, 0.0, 1.0, 8)),
            ),
            (
                "bce",
                Box::new(BinaryCrossEntropy { reduction }),
                random(3, 4, 0.05, 0.95, 9),
                TargetData::Dense(random(3, 4, 0.0, 1.0, 10)),
            ),
            (
                "mse",
                Box::new(Mse { reduction }),
                random(3, 4, -2.0, 2.0, 11),
                TargetData::Dense(random(3, 4, -2.0, 2.0, 12)),
            ),
        ];
        for (name, loss, prediction, target) in cases {
            suite.add(
                format!("losses/{name}/{rname}"),
                G,
                format!("{} ({rname} reduction)", loss.name()),
                move || {
                    let target = target.as_target();
                    match loss.evaluate(&prediction, target) {
                        Ok(out) => {
                            let value = |p: &DMatrix<f64>| {
                                loss.evaluate(p, target).map_or(f64::NAN, |o| o.value)
                            };
                            Outcome::from_report(&check_batch_gradient(
                                value,
                                &prediction,
                                &out.grad,
                                &Config::default(),
                            ))
                        }
                        Err(e) => Outcome::error(e.to_string()),
                    }
                },
            );
        }
    }
}

/// Targets owned by a check.
pub enum TargetData {
    Labels(Vec<usize>),
    Dense(DMatrix<f64>),
}

impl TargetData {
    pub fn as_target(&self) -> Target<'_, f64> {
        match self {
            TargetData::Labels(l) => Target::Labels(l),
            TargetData::Dense(d) => Target::Dense(d),
        }
    }
}

/// Columns of non-negative values summing to 1.
pub fn probabilities(rows: usize, cols: usize, seed: u64) -> DMatrix<f64> {
    let mut p = random(rows, cols, 0.0, 1.0, seed);
    for mut col in p.column_iter_mut() {
        let s = col.sum();
        col /= s;
    }
    p
}

/// Each optimizer configuration's step against its formula, computed independently.
pub fn optimizers(suite: &mut Suite) {
    const G: &str = "optim (step against its formula)";
    struct Case {
        name: &'static str,
        description: &'static str,
        momentum: Momentum,
        decay: WeightDecay,
    }
    let hw = WeightDecay::homework(0.03).expect("valid");
    let pt = WeightDecay::pytorch(0.03).expect("valid");
    let cases = [
        Case {
            name: "plain",
            description: "θ ← θ − η∇R̂ (2j)",
            momentum: Momentum::None,
            decay: WeightDecay::none(),
        },
        Case {
            name: "decay-homework",
            description: "θ ← θ − η∇R̂ − 2ηλθ (2k)",
            momentum: Momentum::None,
            decay: hw,
        },
        Case {
            name: "decay-pytorch",
            description: "θ ← θ − η(∇R̂ + λθ) (PyTorch)",
            momentum: Momentum::None,
            decay: pt,
        },
        Case {
            name: "decay-no-bias",
            description: "2k with biases spared",
            momentum: Momentum::None,
            decay: hw.excluding_biases(),
        },
        Case {
            name: "heavy-ball",
            description: "b ← μb + g, θ ← θ − ηb (two steps)",
            momentum: Momentum::Heavy { mu: 0.9 },
            decay: hw,
        },
        Case {
            name: "nesterov",
            description: "θ ← θ − η(g + μb) (two steps)",
            momentum: Momentum::Nesterov { mu: 0.8 },
            decay: pt,
        },
    ];
    for case in cases {
        suite.add(
            format!("optim/sgd/{}", case.name),
            G,
            case.description,
            move || optimizer_case(case.momentum, case.decay),
        );
    }
}

fn optimizer_case(momentum: Momentum, decay: WeightDecay) -> Outcome {
    let (lr, steps) = (0.1, 2);
    let mut net = match mlp::<f64>(3, 4, 2, Init::XavierUniform { seed: 3 }) {
        Ok(n) => n,
        Err(e) => return Outcome::error(e.to_string()),
    };
    let mut sgd = match Sgd::new(lr).and_then(|s| s.with_momentum(momentum)) {
        Ok(s) => s.with_weight_decay(decay),
        Err(e) => return Outcome::error(e.to_string()),
    };
    let (mu, nesterov) = match momentum {
        Momentum::None => (0.0, false),
        Momentum::Heavy { mu } => (mu, false),
        Momentum::Nesterov { mu } => (mu, true),
    };
    let k = |bias: bool| {
        if bias && decay.biases == retroprop_optim::Biases::Exclude {
            0.0
        } else if decay.convention == retroprop_optim::DecayConvention::Homework {
            2.0 * decay.lambda
        } else {
            decay.lambda
        }
    };
    // expected parameters, by the formula, on plain vectors
    let mut theta: Vec<(bool, Vec<f64>)> = Vec::new();
    net.visit_params(&mut |_, p| {
        theta.push((
            p.kind() == retroprop_layers::ParamKind::Bias,
            p.value().as_slice().to_vec(),
        ))
    });
    let mut buffers: Vec<Vec<f64>> = theta.iter().map(|(_, t)| vec![0.0; t.len()]).collect();
    let x = random(3, 5, -1.0, 1.0, 4);
    let y = labels(5, 2, 5);
    for _ in 0..steps {
        if let Err(e) = super::ce_gradient(&mut net, &x, &y) {
            return Outcome::error(e);
        }
        let mut grads: Vec<Vec<f64>> = Vec::new();
        net.visit_params(&mut |_, p| grads.push(p.grad().as_slice().to_vec()));
        for (((bias, t), g), b) in theta.iter_mut().zip(&grads).zip(&mut buffers) {
            let kk = k(*bias);
            for ((ti, &gi), bi) in t.iter_mut().zip(g).zip(b.iter_mut()) {
                let d = gi + kk * *ti;
                if mu == 0.0 {
                    *ti -= lr * d;
                } else {
                    *bi = mu * *bi + d;
                    *ti -= lr * if nesterov { d + mu * *bi } else { *bi };
                }
            }
        }
        if let Err(e) = sgd.step(&mut net) {
            return Outcome::error(e.to_string());
        }
    }
    let mut got: Vec<f64> = Vec::new();
    net.visit_params(&mut |_, p| got.extend_from_slice(p.value().as_slice()));
    let want: Vec<f64> = theta.into_iter().flat_map(|(_, t)| t).collect();
    let err = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    Outcome::within(
        err,
        1e-13,
        "abs",
        format!("{} parameters after {steps} steps, η = {lr}", got.len()),
    )
}

/// A network checked end to end through a loss: every parameter and the input.
fn end_to_end(
    net: Result<Sequential<f64>, retroprop_models::ModelError>,
    x: DMatrix<f64>,
    loss: Box<dyn Loss<f64>>,
    target: TargetData,
    config: Config,
) -> Outcome {
    let mut net = match net {
        Ok(n) => n,
        Err(e) => return Outcome::error(e.to_string()),
    };
    let mut failure = None;
    let objective = |y: &DMatrix<f64>| match loss.evaluate(y, target.as_target()) {
        Ok(out) => (out.value, out.grad),
        Err(e) => {
            failure.get_or_insert(e.to_string());
            (f64::NAN, DMatrix::zeros(y.nrows(), y.ncols()))
        }
    };
    let outcome = match check_with_loss(&mut net, &x, objective, &config) {
        Ok(report) => Outcome::from_report(&report),
        Err(e) => Outcome::error(e.to_string()),
    };
    match failure {
        Some(e) => Outcome::error(e),
        None => outcome,
    }
}

/// The composed homework networks and the MNIST CNN, from the loss to every parameter.
pub fn models(suite: &mut Suite) {
    const G: &str = "models (loss → every parameter and the input)";
    suite.add(
        "models/mlp-part2",
        G,
        "MLP 8→6 softplus→4, cross-entropy, batch 3",
        || {
            end_to_end(
                mlp(8, 6, 4, Init::XavierUniform { seed: 1 }),
                random(8, 3, -2.0, 2.0, 2),
                Box::new(CrossEntropy::default()),
                TargetData::Labels(labels(3, 4, 3)),
                Config::default(),
            )
        },
    );
    suite.add(
        "models/cnn-part3",
        G,
        "question-3 CNN 3×128×128→64×32×32, MSE, sampled",
        || {
            end_to_end(
                homework_cnn(Init::PyTorchDefault { seed: 4 }),
                random(3 * 128 * 128, 1, -1.0, 1.0, 5),
                Box::new(Mse::default()),
                TargetData::Dense(random(64 * 32 * 32, 1, -1.0, 1.0, 6)),
                Config {
                    max_entries: 32,
                    ..Config::default()
                },
            )
        },
    );
    suite.add(
        "models/mnist-cnn",
        G,
        "MNIST CNN (conv, ReLU, pool ×2, dense), cross-entropy",
        || {
            end_to_end(
                cnn_classifier((1, 28, 28), 10, None, Init::HeUniform { seed: 7 }),
                random(784, 2, 0.0, 1.0, 8),
                Box::new(CrossEntropy::default()),
                TargetData::Labels(vec![3, 8]),
                Config {
                    max_entries: 64,
                    ..Config::default()
                },
            )
        },
    );
    suite.add(
        "models/resnet",
        G,
        "residual CNN (conv–BN–ReLU, residual blocks, global pool), width 2 on 1×8×8, batch 4",
        || {
            let options = retroprop_models::ResNetOptions {
                width: 2,
                dropout: 0.0,
            };
            end_to_end(
                retroprop_models::resnet_classifier(
                    (1, 8, 8),
                    3,
                    None,
                    options,
                    Init::HeNormal { seed: 9 },
                ),
                random(64, 4, 0.0, 1.0, 10),
                Box::new(CrossEntropy::default()),
                TargetData::Labels(vec![0, 2, 1, 2]),
                Config {
                    max_entries: 48,
                    ..Config::default()
                },
            )
        },
    );
}
