//! Format version 1 (retroprop up to d3c9a3f): its closed list of layer kinds, read and turned
//! into today's open description. Never written any more; the fixtures in
//! `crates/models/tests/fixtures/v1-*.ckpt` keep it loading.

use retroprop_layers::{
    Conv2dConfig, DenseConfig, LayerConfig, LayerSpec, MaxPool2dConfig, Shape, StandardizeConfig,
};
use serde::{Deserialize, Serialize};

use super::{Entry, Node};
use crate::sequential::SequentialConfig;

/// One node of version 1's flat architecture. Bincode encodes the variant by its position:
/// this order is the file format and never changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum NodeV1 {
    Sequential { input: Shape, children: u32 },
    Dense { d_in: usize, d_out: usize },
    Softplus,
    Sigmoid,
    Tanh,
    Relu,
    Softmax,
    Conv2d(Conv2dConfig),
    MaxPool2d(MaxPool2dConfig),
    Flatten,
    Standardize { mean: f64, std: f64 },
    Custom { name: String },
}

/// Version 1's header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct HeaderV1 {
    pub(super) scalar: String,
    architecture: Vec<NodeV1>,
    pub(super) params: Vec<Entry>,
}

/// A version-1 architecture in today's terms: the nodes, and the mean and standard deviation
/// of each `Standardize` in pre-order (version 1 kept them in the description; they are
/// buffers now).
pub(super) fn convert(header: &HeaderV1) -> (Vec<Node>, Vec<(f64, f64)>) {
    let mut standardize = Vec::new();
    let nodes = header
        .architecture
        .iter()
        .map(|node| {
            let (spec, children) = match node {
                NodeV1::Sequential { input, children } => (
                    LayerSpec::new(SequentialConfig::KIND, &SequentialConfig { input: *input }),
                    *children,
                ),
                NodeV1::Dense { d_in, d_out } => (
                    LayerSpec::new(
                        DenseConfig::KIND,
                        &DenseConfig {
                            d_in: *d_in,
                            d_out: *d_out,
                        },
                    ),
                    0,
                ),
                NodeV1::Softplus => (LayerSpec::unit("Softplus"), 0),
                NodeV1::Sigmoid => (LayerSpec::unit("Sigmoid"), 0),
                NodeV1::Tanh => (LayerSpec::unit("Tanh"), 0),
                NodeV1::Relu => (LayerSpec::unit("Relu"), 0),
                NodeV1::Softmax => (LayerSpec::unit("Softmax"), 0),
                NodeV1::Conv2d(c) => (LayerSpec::new(Conv2dConfig::KIND, c), 0),
                NodeV1::MaxPool2d(c) => (LayerSpec::new(MaxPool2dConfig::KIND, c), 0),
                NodeV1::Flatten => (LayerSpec::unit("Flatten"), 0),
                NodeV1::Standardize { mean, std } => {
                    standardize.push((*mean, *std));
                    (LayerSpec::unit(StandardizeConfig::KIND), 0)
                }
                NodeV1::Custom { name } => (LayerSpec::unit(name.clone()), 0),
            };
            Node {
                kind: spec.kind,
                config: spec.config,
                children,
            }
        })
        .collect();
    (nodes, standardize)
}
