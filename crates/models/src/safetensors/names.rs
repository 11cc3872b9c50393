//! How retroprop's tensors are named and laid out in PyTorch: the `nn.Sequential` index of each
//! layer, and each tensor's shape in PyTorch's row-major layout.
//!
//! PyTorch numbers every module of an `nn.Sequential`, parameter-free ones (ReLU, MaxPool2d,
//! Flatten) included, as retroprop numbers its layers; the one layer PyTorch lacks is
//! `Standardize`, a preprocessing step a PyTorch user does outside the model (in a transform),
//! so it takes no index: our `[Standardize, Dense, Softplus, Dense]` is PyTorch's
//! `[Linear, Softplus, Linear]`, with tensors `0.weight`, `0.bias`, `2.weight`, `2.bias`.
//! Its mean and std travel in the file's metadata instead. A `Residual` is a module with the
//! attributes `body` and `shortcut` (`4.body.0.weight`, `4.shortcut.weight`), and a
//! `BatchNorm`'s buffers keep PyTorch's names (`running_mean`, `running_var`,
//! `num_batches_tracked`, which PyTorch stores as int64 and retroprop reads as a count).

use retroprop_layers::{Conv2dConfig, LayerSpec};

/// The one integer tensor of a PyTorch state dict we have: BatchNorm's batch count.
pub(super) const COUNT: &str = "num_batches_tracked";

/// Where one of our tensors goes in a PyTorch state dict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Placement {
    /// Our path (`"1.weight"`).
    pub ours: String,
    /// PyTorch's name (`"0.weight"`), `None` for a tensor PyTorch has no module for.
    pub torch: Option<String>,
    /// PyTorch's shape: `[out, in]` for a dense weight, `[C_out, C_in, kH, kW]` for a
    /// convolution's, `[n]` for a vector.
    pub shape: Vec<usize>,
}

/// The PyTorch layout of a tensor of shape `(rows, cols)` in a layer of this kind.
fn torch_shape(spec: &LayerSpec, rows: usize, cols: usize, name: &str) -> Vec<usize> {
    if spec.kind == "Conv2d"
        && name == "weight"
        && let Ok(c) = spec.config::<Conv2dConfig>()
    {
        return vec![c.out_channels, c.in_channels, c.kernel.h, c.kernel.w];
    }
    if name == COUNT && rows * cols == 1 {
        // PyTorch's 0-dimensional int64 count
        return Vec::new();
    }
    if cols == 1 {
        vec![rows]
    } else {
        vec![rows, cols]
    }
}

/// A layer of the tree and the prefixes of its paths (ours, PyTorch's).
struct Node<'a> {
    spec: &'a LayerSpec,
    ours: String,
    torch: Option<String>,
}

/// The leaf layers of a network's spec with their path prefixes (`"3."`, PyTorch `"2."`), in
/// visiting order; containers are walked with an explicit stack.
fn leaves(spec: &LayerSpec) -> Vec<Node<'_>> {
    let mut out = Vec::new();
    let mut stack = vec![Node {
        spec,
        ours: String::new(),
        torch: Some(String::new()),
    }];
    while let Some(node) = stack.pop() {
        if node.spec.kind == "Residual" {
            // a PyTorch block with the attributes `body` and `shortcut`, as retroprop's paths
            let children = node.spec.children.iter().zip(["body.", "shortcut."]);
            let children: Vec<Node<'_>> = children
                .map(|(child, name)| Node {
                    spec: child,
                    ours: format!("{}{name}", node.ours),
                    torch: node.torch.as_ref().map(|t| format!("{t}{name}")),
                })
                .collect();
            stack.extend(children.into_iter().rev());
            continue;
        }
        if node.spec.kind != "Sequential" {
            out.push(node);
            continue;
        }
        let mut children = Vec::new();
        let mut j = 0;
        for (i, child) in node.spec.children.iter().enumerate() {
            let torch = if child.kind == "Standardize" {
                None
            } else {
                j += 1;
                node.torch.as_ref().map(|t| format!("{t}{}.", j - 1))
            };
            children.push(Node {
                spec: child,
                ours: format!("{}{i}.", node.ours),
                torch,
            });
        }
        stack.extend(children.into_iter().rev());
    }
    out
}

/// Where every tensor named in `tensors` (our paths with their `(rows, cols)`, in visiting
/// order) goes, given the network's spec.
pub(super) fn placements(spec: &LayerSpec, tensors: &[(String, (usize, usize))]) -> Vec<Placement> {
    let leaves = leaves(spec);
    tensors
        .iter()
        .map(|(path, (rows, cols))| {
            // the leaf whose prefix is the longest match (the network is a tree of Sequentials)
            let leaf = leaves
                .iter()
                .filter(|l| path.starts_with(&l.ours))
                .max_by_key(|l| l.ours.len());
            match leaf {
                Some(leaf) => {
                    let name = &path[leaf.ours.len()..];
                    Placement {
                        ours: path.clone(),
                        torch: leaf.torch.as_ref().map(|t| format!("{t}{name}")),
                        shape: torch_shape(leaf.spec, *rows, *cols, name),
                    }
                }
                None => Placement {
                    ours: path.clone(),
                    torch: Some(path.clone()),
                    shape: torch_shape(spec, *rows, *cols, path),
                },
            }
        })
        .collect()
}

/// A name from a PyTorch file as this crate looks it up: without the `module.` prefix of
/// `nn.DataParallel` / `DistributedDataParallel`.
pub(super) fn normalise(name: &str) -> &str {
    name.strip_prefix("module.").unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kinds: &[&str]) -> LayerSpec {
        LayerSpec::unit("Sequential")
            .with_children(kinds.iter().map(|k| LayerSpec::unit(*k)).collect())
    }

    #[test]
    fn standardize_takes_no_index_and_parameter_free_layers_do() {
        let s = spec(&["Standardize", "Dense", "Softplus", "Dense"]);
        let tensors = vec![
            ("0.mean".to_string(), (1, 1)),
            ("1.weight".to_string(), (4, 3)),
            ("1.bias".to_string(), (4, 1)),
            ("3.weight".to_string(), (2, 4)),
        ];
        let p = placements(&s, &tensors);
        let names: Vec<Option<&str>> = p.iter().map(|p| p.torch.as_deref()).collect();
        assert_eq!(
            names,
            [None, Some("0.weight"), Some("0.bias"), Some("2.weight")]
        );
        assert_eq!(p[1].shape, [4, 3]);
        assert_eq!(p[2].shape, [4]);
    }

    #[test]
    fn nested_sequentials_nest_their_indices() {
        let inner = spec(&["Standardize", "Dense"]);
        let outer = LayerSpec::unit("Sequential").with_children(vec![
            LayerSpec::unit("Relu"),
            inner,
            LayerSpec::unit("Dense"),
        ]);
        let tensors = vec![
            ("1.1.weight".to_string(), (2, 2)),
            ("2.weight".to_string(), (2, 2)),
        ];
        let p = placements(&outer, &tensors);
        assert_eq!(p[0].torch.as_deref(), Some("1.0.weight"));
        assert_eq!(p[1].torch.as_deref(), Some("2.weight"));
        assert_eq!(normalise("module.2.weight"), "2.weight");
    }
}
