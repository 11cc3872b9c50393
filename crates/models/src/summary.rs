//! A layer table in the style of torchinfo / Keras `model.summary()`.

use std::fmt;

use retroprop_core::Scalar;
use retroprop_layers::{
    BatchNormConfig, Conv2dConfig, DenseConfig, Layer, LayerNormConfig, LayerSpec, MaxPool2dConfig,
    ParamKind, Shape,
};
use serde::Serialize;

use crate::Sequential;

/// One row of a [`Summary`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SummaryRow {
    /// Position in the network.
    pub index: usize,
    /// The layer's type name.
    pub layer: String,
    /// Its geometry, for people: `784→256`, `32@8×8 s2 p3`, `2×2 s2`; a custom layer's
    /// configuration; empty for a layer without one.
    pub details: String,
    /// Shape of one output example.
    pub output: Shape,
    /// Scalars in weight parameters.
    pub weights: usize,
    /// Scalars in bias parameters.
    pub biases: usize,
    /// Scalars in buffers (saved, not trained: not in `n_θ`).
    pub buffers: usize,
}

/// `a×b`, or `a` when both are equal.
fn pair(h: usize, w: usize) -> String {
    if h == w {
        h.to_string()
    } else {
        format!("{h}×{w}")
    }
}

/// The geometry of a layer from its description (see [`SummaryRow::details`]).
fn details(spec: &LayerSpec) -> String {
    let window = |k: retroprop_layers::Hw, s: retroprop_layers::Hw, p: retroprop_layers::Hw| {
        let mut out = format!("{}×{} s{}", k.h, k.w, pair(s.h, s.w));
        if p.h + p.w > 0 {
            out.push_str(&format!(" p{}", pair(p.h, p.w)));
        }
        out
    };
    match spec.kind.as_str() {
        "Dense" => spec
            .config::<DenseConfig>()
            .map(|c| format!("{}→{}", c.d_in, c.d_out))
            .unwrap_or_default(),
        "Conv2d" => spec
            .config::<Conv2dConfig>()
            .map(|c| {
                let mut out = format!(
                    "{}@{}",
                    c.out_channels,
                    window(c.kernel, c.stride, c.padding)
                );
                if c.dilation.h * c.dilation.w > 1 {
                    out.push_str(&format!(" d{}", pair(c.dilation.h, c.dilation.w)));
                }
                out
            })
            .unwrap_or_default(),
        "MaxPool2d" | "AvgPool2d" => spec
            .config::<MaxPool2dConfig>()
            .map(|c| window(c.kernel, c.stride, c.padding))
            .unwrap_or_default(),
        "Sequential" => format!("{} layers", spec.children.len()),
        "BatchNorm1d" | "BatchNorm2d" => spec
            .config::<BatchNormConfig>()
            .map(|c| {
                let momentum = c
                    .momentum
                    .map_or("cumulative".to_string(), |m| format!("momentum {m}"));
                let affine = if c.affine { "" } else { ", no affine" };
                format!("{}, ε {:e}, {momentum}{affine}", c.num_features, c.eps)
            })
            .unwrap_or_default(),
        "LayerNorm" => spec
            .config::<LayerNormConfig>()
            .map(|c| format!("{}, ε {:e}", c.features, c.eps))
            .unwrap_or_default(),
        "Residual" => residual_details(spec),
        _ if spec.config == "null" => String::new(),
        _ => spec.config.clone(),
    }
}

/// `skip + 5 layers` (identity shortcut around a body of five layers), `Conv2d + Dense` (a
/// projection shortcut around one layer): a residual block in the width of the column.
fn residual_details(spec: &LayerSpec) -> String {
    let describe = |s: &LayerSpec| {
        if s.kind == "Sequential" {
            format!("{} layers", s.children.len())
        } else {
            s.kind.clone()
        }
    };
    let body = spec.children.first().map(describe).unwrap_or_default();
    match spec.children.get(1) {
        Some(projection) => format!("{} + {body}", describe(projection)),
        None => format!("skip + {body}"),
    }
}

/// The layers of a network with their output shapes and parameter counts, and totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Shape of one input example.
    pub input: Shape,
    /// One row per layer.
    pub rows: Vec<SummaryRow>,
}

impl Summary {
    /// Summarises a network.
    pub fn of<T: Scalar>(net: &Sequential<T>) -> Self {
        let rows = net
            .layers()
            .iter()
            .zip(net.shapes())
            .enumerate()
            .map(|(index, (layer, &output))| {
                let (mut weights, mut biases) = (0, 0);
                layer.visit_params(&mut |_, p| match p.kind() {
                    ParamKind::Weight => weights += p.len(),
                    ParamKind::Bias => biases += p.len(),
                });
                SummaryRow {
                    index,
                    layer: layer.name().to_string(),
                    details: details(&layer.spec()),
                    output,
                    weights,
                    biases,
                    buffers: layer.buffer_count(),
                }
            })
            .collect();
        Self {
            input: net.input_shape(),
            rows,
        }
    }

    /// Total weight scalars.
    pub fn weights(&self) -> usize {
        self.rows.iter().map(|r| r.weights).sum()
    }

    /// Total bias scalars.
    pub fn biases(&self) -> usize {
        self.rows.iter().map(|r| r.biases).sum()
    }

    /// Total buffer scalars (saved, not trained).
    pub fn buffers(&self) -> usize {
        self.rows.iter().map(|r| r.buffers).sum()
    }

    /// `n_θ`: all trainable scalars.
    pub fn params(&self) -> usize {
        self.weights() + self.biases()
    }

    /// Shape of one output example.
    pub fn output(&self) -> Shape {
        self.rows.last().map_or(self.input, |r| r.output)
    }
}

/// `18432` → `18,432`.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Summary {
    /// ```text
    /// #   Layer         Kernel            Output shape     Weights   Biases    Params
    /// 0   Conv2d        32@8×8 s2 p3      32×64×64           6,144       32     6,176
    /// …
    /// Total params: 24,672 (weights 24,576, biases 96)
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = "─".repeat(88);
        writeln!(
            f,
            "{:<4}{:<14}{:<18}{:<16}{:>12}{:>12}{:>12}",
            "#", "Layer", "Kernel", "Output shape", "Weights", "Biases", "Params"
        )?;
        writeln!(f, "{rule}")?;
        writeln!(
            f,
            "{:<4}{:<14}{:<18}{:<16}",
            "",
            "Input",
            "",
            self.input.to_string()
        )?;
        for r in &self.rows {
            let mut details = r.details.clone();
            if details.chars().count() > 17 {
                details = details.chars().take(16).chain(['…']).collect();
            }
            writeln!(
                f,
                "{:<4}{:<14}{:<18}{:<16}{:>12}{:>12}{:>12}",
                r.index,
                r.layer,
                details,
                r.output.to_string(),
                thousands(r.weights),
                thousands(r.biases),
                thousands(r.weights + r.biases)
            )?;
        }
        writeln!(f, "{rule}")?;
        writeln!(
            f,
            "Input {} ({} values) → output {} ({} values)",
            self.input,
            thousands(self.input.len()),
            self.output(),
            thousands(self.output().len())
        )?;
        write!(
            f,
            "Total params: {} (weights {}, biases {})",
            thousands(self.params()),
            thousands(self.weights()),
            thousands(self.biases())
        )?;
        if self.buffers() > 0 {
            write!(
                f,
                "\nBuffers: {} values (saved with the model, not trained, not in the params)",
                thousands(self.buffers())
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use retroprop_layers::Init;

    use super::*;
    use crate::{homework_cnn, mlp};

    #[test]
    fn homework_cnn_summary_matches_question_3() {
        let s = Summary::of(&homework_cnn::<f32>(Init::Zeros).unwrap());
        let shapes: Vec<Shape> = s.rows.iter().map(|r| r.output).collect();
        assert_eq!(
            shapes,
            [
                Shape::image(32, 64, 64),
                Shape::image(32, 32, 32),
                Shape::image(64, 32, 32)
            ]
        );
        assert_eq!(s.output().len(), 65_536);
        // 3b: the last layer has 3·3·32·64 = 18 432 weights and 64 biases
        assert_eq!((s.rows[2].weights, s.rows[2].biases), (18_432, 64));
        // first layer: 8·8·3·32 = 6 144 weights + 32 biases; pooling has none
        assert_eq!((s.rows[0].weights, s.rows[0].biases), (6_144, 32));
        assert_eq!((s.rows[1].weights, s.rows[1].biases), (0, 0));
        let text = s.to_string();
        assert!(text.contains("64×32×32"), "{text}");
        assert!(text.contains("18,432"), "{text}");
        assert!(text.contains("65,536 values"), "{text}");
        // the kernel geometry of question 3
        let details: Vec<&str> = s.rows.iter().map(|r| r.details.as_str()).collect();
        assert_eq!(details, ["32@8×8 s2 p3", "2×2 s2", "64@3×3 s1 p1"]);
        assert!(text.contains("32@8×8 s2 p3"), "{text}");
    }

    #[test]
    fn buffers_are_shown_but_not_counted_as_parameters() {
        let net = crate::mlp_classifier::<f32>(
            4,
            3,
            2,
            Some(crate::Standardization {
                mean: 0.5,
                std: 2.0,
            }),
            Init::Zeros,
        )
        .unwrap();
        let s = Summary::of(&net);
        assert_eq!((s.buffers(), s.params()), (2, 4 * 3 + 3 + 3 * 2 + 2));
        assert_eq!(s.rows[0].buffers, 2);
        assert_eq!(s.rows[1].details, "4→3");
        assert!(s.to_string().contains("Buffers: 2 values"), "{s}");
    }

    #[test]
    fn mlp_parameter_count_is_question_2i() {
        for (d, d_h, m) in [(784, 256, 10), (3, 5, 2), (1, 1, 1)] {
            let s = Summary::of(&mlp::<f64>(d, d_h, m, Init::Zeros).unwrap());
            assert_eq!(s.params(), d_h * d + d_h + m * d_h + m);
            assert_eq!(s.biases(), d_h + m);
        }
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(203_530), "203,530");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
