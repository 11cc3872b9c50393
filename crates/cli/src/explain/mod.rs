//! `retroprop explain`: every quantity of the homework on a small instance, with its question,
//! formula, shape and value (and finite differences beside each gradient), computed by the
//! library's own layers, losses and optimizer. `--json` writes the document `check` reads.

pub mod binary;
pub mod cnn;
pub mod conv1d;
pub mod mlp;
pub mod mlp_mistakes;
pub mod quantity;

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use retroprop_layers::ConvMode;
use serde::{Deserialize, Serialize};

use quantity::{Quantity, render};

/// Options of `retroprop explain`.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    #[command(subcommand)]
    what: Explain,
}

#[derive(Subcommand, Debug)]
enum Explain {
    /// The MLP of part 2 (2a–2r, 2i, 2j, 2k) on one instance.
    Mlp {
        /// The instance, a JSON file (docs/explain.md); without it, drawn from --seed.
        #[arg(long)]
        instance: Option<PathBuf>,
        /// Seed of a drawn instance (multiples of 0.5 in [−1, 1], η = 0.5, λ = 0.1).
        #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
        seed: u64,
        /// Sizes d, d_h, m and n (examples) of a drawn instance.
        #[arg(long, value_delimiter = ',', default_values_t = [3, 2, 2, 1])]
        sizes: Vec<usize>,
        /// One JSON document (the schema `retroprop check` reads).
        #[arg(long)]
        json: bool,
    },
    /// Two classes (2d–2g): σ, MSE and cross-entropy, their gradients, and saturation.
    Binary {
        /// The logit oᵃ.
        #[arg(long, default_value_t = -3.0, allow_negative_numbers = true)]
        logit: f64,
        /// The label y, 0 or 1.
        #[arg(long, default_value_t = 1)]
        label: usize,
        /// One JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Output sizes and parameter counts of a stack of layers (3a, 3b): `--input 3x128x128
    /// --conv 32:8x8:s2:p3 --pool 2 --conv 64:3x3:s1:p1` (the question-3 network by default).
    Cnn {
        /// `--input CxHxW`, then `--conv C:KxK[:sS][:pP]` and `--pool K` in order; `--json`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        layers: Vec<String>,
    },
    /// 1-D convolution in numpy's three modes (3c), each output as its sum of products.
    Conv1d {
        /// Which mode's outputs to write as sums of products.
        #[arg(long, value_enum, default_value_t = Mode::Full)]
        mode: Mode,
        /// The signal, comma separated [default: the homework's 1,1,4,4,4,1,1].
        x: Option<String>,
        /// The kernel, comma separated [default: the homework's 0.25,0.25,0.25,0.25].
        kernel: Option<String>,
        /// One JSON document.
        #[arg(long)]
        json: bool,
    },
}

/// numpy's modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Full,
    Same,
    Valid,
}

/// What an explanation is of, with its inputs: the `kind` and `instance` of the JSON
/// document, and of an answer file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "instance", rename_all = "lowercase")]
pub enum Instance {
    /// Part 2's MLP.
    Mlp(mlp::MlpInstance),
    /// 2d–2g.
    Binary(binary::BinaryInstance),
    /// 3a–3b.
    Cnn {
        /// `[C, H, W]`.
        input: (usize, usize, usize),
        /// The layers as on the command line: `"conv 32:8x8:s2:p3"`, `"pool 2"`.
        layers: Vec<String>,
    },
    /// 3c.
    Conv1d {
        /// The signal.
        x: Vec<f64>,
        /// The kernel.
        kernel: Vec<f64>,
    },
}

/// The JSON document of an explanation: the instance and every quantity.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Document {
    /// The instance, tagged with its kind.
    #[serde(flatten)]
    pub instance: Instance,
    /// The quantities, in the homework's order.
    pub quantities: Vec<Quantity>,
}

/// The stack of `explain cnn`'s layers, parsed from `"conv …"` / `"pool …"` lines.
pub fn cnn_steps(layers: &[String]) -> Result<Vec<cnn::Step>, String> {
    layers
        .iter()
        .map(|l| match l.split_once(' ') {
            Some(("conv", spec)) => cnn::parse_conv(spec.trim()),
            Some(("pool", k)) => k
                .trim()
                .parse()
                .ok()
                .filter(|&k: &usize| k > 0)
                .map(cnn::Step::Pool)
                .ok_or_else(|| format!("`{l}`: the pool window is a positive whole number")),
            _ => Err(format!("`{l}` is neither `conv C:KxK…` nor `pool K`")),
        })
        .collect()
}

/// Every quantity of an instance, with finite differences for the MLP's gradients.
///
/// # Errors
/// A message if the instance does not fit together.
pub fn quantities(instance: &Instance) -> Result<Vec<Quantity>, String> {
    match instance {
        Instance::Mlp(inst) => {
            inst.sizes()?;
            let mut q = mlp::compute(inst, &Default::default());
            mlp::numeric(inst, &mut q);
            Ok(q)
        }
        Instance::Binary(inst) => {
            inst.check()?;
            Ok(binary::compute(*inst, None))
        }
        Instance::Cnn { input, layers } => cnn::compute(*input, &cnn_steps(layers)?),
        Instance::Conv1d { x, kernel } => Ok(conv1d::compute(x, kernel, ConvMode::Full)?.0),
    }
}

fn read_instance(path: &PathBuf) -> Result<mlp::MlpInstance, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: not an MLP instance ({e}); see docs/explain.md for the fields",
            path.display()
        )
    })
}

/// Parses `explain cnn`'s arguments: `--input` first, then the layers in order.
fn cnn_args(args: &[String]) -> Result<(Instance, bool), String> {
    let (mut input, mut layers, mut json) = (None, Vec::new(), false);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--input" => input = Some(cnn::parse_input(&value()?)?),
            "--conv" => layers.push(format!("conv {}", value()?)),
            "--pool" => layers.push(format!("pool {}", value()?)),
            "--json" => json = true,
            other => {
                return Err(format!(
                    "explain cnn: unknown argument `{other}` (use --input, --conv, --pool, --json)"
                ));
            }
        }
    }
    let (default_input, default_steps) = cnn::question_3();
    if layers.is_empty() {
        layers = default_steps
            .iter()
            .map(|s| match s {
                cnn::Step::Conv {
                    out,
                    kernel,
                    stride,
                    padding,
                } => {
                    format!("conv {out}:{}x{}:s{stride}:p{padding}", kernel.0, kernel.1)
                }
                cnn::Step::Pool(k) => format!("pool {k}"),
            })
            .collect();
    }
    Ok((
        Instance::Cnn {
            input: input.unwrap_or(default_input),
            layers,
        },
        json,
    ))
}

/// `retroprop explain`.
pub fn run(args: ExplainArgs) -> Result<(), String> {
    let mut extra = Vec::new();
    let (instance, json) = match args.what {
        Explain::Mlp {
            instance,
            seed,
            sizes,
            json,
        } => {
            let inst = match instance {
                Some(path) => read_instance(&path)?,
                None => {
                    if sizes.len() != 4 || sizes.contains(&0) {
                        return Err(
                            "--sizes d,d_h,m,n: four sizes, each at least 1 (3,2,2,1 by default)"
                                .to_string(),
                        );
                    }
                    mlp::MlpInstance::draw(seed, (sizes[0], sizes[1], sizes[2], sizes[3]))
                }
            };
            (Instance::Mlp(inst), json)
        }
        Explain::Binary { logit, label, json } => (
            Instance::Binary(binary::BinaryInstance { logit, label }),
            json,
        ),
        Explain::Cnn { layers } => cnn_args(&layers)?,
        Explain::Conv1d {
            mode,
            x,
            kernel,
            json,
        } => {
            let (dx, dk) = conv1d::question_3c();
            let x = x.map_or(Ok(dx), |s| conv1d::parse(&s, "x"))?;
            let kernel = kernel.map_or(Ok(dk), |s| conv1d::parse(&s, "kernel"))?;
            let mode = match mode {
                Mode::Full => ConvMode::Full,
                Mode::Same => ConvMode::Same,
                Mode::Valid => ConvMode::Valid,
            };
            extra = conv1d::compute(&x, &kernel, mode)?.1;
            if !extra.is_empty() {
                extra.insert(
                    0,
                    format!("{} convolution, output by output:", conv1d::mode_name(mode)),
                );
            }
            (Instance::Conv1d { x, kernel }, json)
        }
    };
    let quantities = quantities(&instance)?;
    if json {
        let doc = Document {
            instance,
            quantities,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    println!("{}", describe(&instance));
    print!("{}", render(&quantities));
    for line in extra {
        println!("{line}");
    }
    Ok(())
}

/// The instance in one or two lines, for the top of the text output.
fn describe(instance: &Instance) -> String {
    use quantity::value_text;
    match instance {
        Instance::Mlp(i) => {
            let (d, d_h, m, n) = i.sizes().unwrap_or_default();
            format!(
                "MLP of part 2: d = {d}, d_h = {d_h}, m = {m}, n = {n} example(s); η = {}, λ = {}\n\
                 W⁽¹⁾ = {}\nb⁽¹⁾ = {}\nW⁽²⁾ = {}\nb⁽²⁾ = {}\n\
                 x = {} (one row per example)\ny = {:?} (classes counted from 0)\n",
                i.eta,
                i.lambda,
                value_text(&i.w1),
                value_text(&i.b1.iter().map(|&v| vec![v]).collect()),
                value_text(&i.w2),
                value_text(&i.b2.iter().map(|&v| vec![v]).collect()),
                value_text(&i.x),
                i.y
            )
        }
        Instance::Binary(b) => format!("two classes: oᵃ = {}, y = {}\n", b.logit, b.label),
        Instance::Cnn { input, layers } => format!(
            "input {}×{}×{}, then {}\n",
            input.0,
            input.1,
            input.2,
            layers.join(", ")
        ),
        Instance::Conv1d { x, kernel } => {
            let list = |v: &[f64]| {
                v.iter()
                    .map(|&a| quantity::number(a))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!(
                "x = [{}]\nk = [{}]   (numpy.convolve: the kernel is flipped)\n",
                list(x),
                list(kernel)
            )
        }
    }
}
