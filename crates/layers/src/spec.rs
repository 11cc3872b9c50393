//! `LayerSpec`: the open description of a layer's architecture, without its values.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::LayerError;

/// The architecture of a layer, without its parameter or buffer values: a stable *kind* name,
/// the layer's configuration as JSON, and, for containers, the specs of its children.
///
/// It is what a checkpoint stores to rebuild a network (`retroprop_layers::build`) and what a
/// layer returns from [`Layer::spec`](crate::Layer::spec). Any layer can describe itself this
/// way: a layer written outside retroprop picks a kind, makes its configuration a serde type and
/// registers it ([`register`](crate::register)); from then on its networks save and load with
/// their hyperparameters like built-in ones.
///
/// ```
/// use retroprop_layers::{Dense, Init, Layer, LayerSpec};
///
/// # fn main() -> Result<(), retroprop_layers::LayerError> {
/// let dense = Dense::<f64>::new(784, 256, Init::Zeros)?;
/// let spec = dense.spec();
/// assert_eq!(spec.kind, "Dense");
/// assert_eq!(spec.config, r#"{"d_in":784,"d_out":256}"#);
/// assert!(spec.children.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSpec {
    /// The registered kind: `"Dense"`, `"Conv2d"`, `"Sequential"`, or a downstream layer's own.
    pub kind: String,
    /// The configuration, as JSON (`null` for a layer without one).
    pub config: String,
    /// The children of a container, in order (empty for other layers).
    pub children: Vec<LayerSpec>,
}

impl LayerSpec {
    /// A layer of `kind` with this configuration and no children.
    ///
    /// A configuration that serde cannot write as JSON (a map with non-string keys) is stored
    /// as `null`; every configuration of this crate, and any plain struct, serialises.
    pub fn new(kind: impl Into<String>, config: &impl Serialize) -> Self {
        Self {
            kind: kind.into(),
            config: serde_json::to_string(config).unwrap_or_else(|_| "null".to_string()),
            children: Vec::new(),
        }
    }

    /// A layer of `kind` without configuration (`null`): activations, `Flatten`.
    pub fn unit(kind: impl Into<String>) -> Self {
        Self::new(kind, &())
    }

    /// The same spec with these children (a container).
    pub fn with_children(mut self, children: Vec<LayerSpec>) -> Self {
        self.children = children;
        self
    }

    /// The configuration, decoded.
    ///
    /// # Errors
    /// [`LayerError::Config`] if the JSON does not describe a `C`.
    pub fn config<C: DeserializeOwned>(&self) -> Result<C, LayerError> {
        serde_json::from_str(&self.config).map_err(|e| LayerError::Config {
            kind: self.kind.clone(),
            detail: format!("{e} in the configuration {}", self.config),
        })
    }

    /// The kind and configuration in one line, for people: `Dense {"d_in":784,"d_out":256}`,
    /// `Relu`, `Sequential {…} of 3 layers`.
    pub fn describe(&self) -> String {
        let mut out = self.kind.clone();
        if self.config != "null" {
            out.push(' ');
            out.push_str(&self.config);
        }
        if !self.children.is_empty() {
            out.push_str(&format!(" of {} layers", self.children.len()));
        }
        out
    }

    /// Every spec of the tree in pre-order (this one first), with its depth (0 here), walked
    /// with an explicit stack.
    pub fn preorder(&self) -> Vec<(usize, &LayerSpec)> {
        let mut out = Vec::new();
        let mut stack = vec![(0, self)];
        while let Some((depth, spec)) = stack.pop() {
            out.push((depth, spec));
            stack.extend(spec.children.iter().rev().map(|c| (depth + 1, c)));
        }
        out
    }
}

impl std::fmt::Display for LayerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_round_trip_and_describe_themselves() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Gate {
            width: usize,
            slope: f64,
        }
        let g = Gate {
            width: 3,
            slope: 0.1 + 0.2,
        };
        let spec = LayerSpec::new("Gate", &g);
        assert_eq!(spec.config::<Gate>().unwrap(), g, "f64 round-trips exactly");
        assert_eq!(
            spec.describe(),
            r#"Gate {"width":3,"slope":0.30000000000000004}"#
        );
        assert_eq!(LayerSpec::unit("Relu").describe(), "Relu");
        let err = LayerSpec::unit("Gate").config::<Gate>().unwrap_err();
        assert!(
            matches!(err, LayerError::Config { ref kind, .. } if kind == "Gate"),
            "{err}"
        );
    }

    #[test]
    fn preorder_visits_parents_before_children() {
        let tree = LayerSpec::unit("A").with_children(vec![
            LayerSpec::unit("B").with_children(vec![LayerSpec::unit("C")]),
            LayerSpec::unit("D"),
        ]);
        let kinds: Vec<(usize, &str)> = tree
            .preorder()
            .into_iter()
            .map(|(d, s)| (d, s.kind.as_str()))
            .collect();
        assert_eq!(kinds, [(0, "A"), (1, "B"), (2, "C"), (1, "D")]);
    }
}
