//! The known mistakes of the answer key in part 2, each evaluated by the library on the
//! mistaken input (a transposed weight, a zeroed column, another decay), for `check`.

use retroprop_layers::nalgebra::DMatrix;
use retroprop_layers::{Layer, Softmax};
use retroprop_optim::WeightDecay;

use super::mlp::{MlpInstance, PARAMS, dense, step};
use super::quantity::{Quantity, matrix, value_of};

/// The values the known mistakes of the answer key give for a quantity, each with the name of
/// the mistake and the section of docs/homework.md that explains it. `None` where a mistake
/// does not change this quantity on this instance (a transpose of a square … is still
/// visible; a sum to `m` when `m = d_h` is not).
pub fn mistakes(
    inst: &MlpInstance,
    truth: &[Quantity],
    name: &str,
) -> Vec<(&'static str, &'static str, DMatrix<f64>)> {
    let value = |name: &str| value_of(truth, name);
    let (_, d_h, m, _) = inst.sizes().expect("checked");
    let w2 = matrix(&inst.w2).expect("checked");
    let mut out = Vec::new();
    match name {
        "dL_dh_s" if m == d_h => {
            // W⁽²⁾ δ instead of W⁽²⁾ᵀ δ: the library's backward through the transposed weights
            let mut t = dense(&w2.transpose(), &vec![0.0; d_h]);
            t.forward(&value("h_s")).expect("square");
            let wrong = t.backward(&value("dL_do_a")).expect("square");
            out.push((
                "the transpose is dropped: W⁽²⁾ ∂L/∂oᵃ instead of W⁽²⁾ᵀ ∂L/∂oᵃ",
                "2o/2p",
                wrong,
            ));
        }
        "dR_db2" | "dR_dW2" => {
            let shape = value(name).shape();
            out.push(("∂oᵃ/∂b⁽²⁾ taken as all ones: the gradient sums oˢ − onehot(y) over the classes, which is 0", "2m/2n", DMatrix::zeros(shape.0, shape.1)));
        }
        "o_a" if m < d_h => {
            // oᵃ_k = Σ_{j ≤ m} W⁽²⁾_kj hˢ_j + b⁽²⁾_k: the hidden units past m left out
            let mut cut = w2;
            cut.columns_mut(m, d_h - m).fill(0.0);
            let wrong = dense(&cut, &inst.b2).infer(&value("h_s")).expect("sizes");
            out.push(("the sum in oᵃ runs to m instead of d_h", "2b", wrong));
        }
        "dL_dh_a" => {
            let mut s = Softmax::new();
            s.forward(&value("h_a")).expect("sizes");
            let wrong = s.backward(&value("dL_dh_s")).expect("sizes");
            out.push((
                "the softmax Jacobian used for the element-wise φ' = σ (its Jacobian is diagonal)",
                "1e",
                wrong,
            ));
        }
        "J_softmax" => {
            let s = value("o_s").column(0).into_owned();
            let k = s.len();
            let wrong = DMatrix::from_fn(k, k, |i, j| if i == j { s[i] } else { 0.0 } - s[j]);
            out.push((
                "the typo of 1j: S_i δ_ij − S_j instead of S_i (δ_ij − S_j)",
                "1j",
                wrong,
            ));
        }
        "R_hat" | "L" => {
            out.push((
                "the sign: the risk is −(1/n) Σ ln oˢ_y, a positive number",
                "2h",
                -value(name),
            ));
        }
        _ if name.contains("_new") => {
            let Some(k) = PARAMS
                .iter()
                .position(|(p, _)| name.starts_with(&format!("{p}_")))
            else {
                return out;
            };
            let grads = ["dR_dW1", "dR_db1", "dR_dW2", "dR_db2"].map(value);
            let g = [&grads[0], &grads[1], &grads[2], &grads[3]];
            if name.ends_with("_l2") {
                let pytorch = WeightDecay::pytorch(inst.lambda).expect("λ checked");
                let stepped = step(inst, g, pytorch);
                out.push((
                    "λθ instead of 2λθ: the gradient of λ‖θ‖² is 2λθ",
                    "2k",
                    stepped[k].clone(),
                ));
                if k % 2 == 1 {
                    let spared = WeightDecay::homework(inst.lambda)
                        .expect("λ checked")
                        .excluding_biases();
                    let stepped = step(inst, g, spared);
                    out.push((
                        "the biases left out of ‖θ‖²: the homework's θ is every parameter",
                        "2k",
                        stepped[k].clone(),
                    ));
                }
            } else {
                let ascent: Vec<DMatrix<f64>> = grads.iter().map(|g| -g).collect();
                let stepped = step(
                    inst,
                    [&ascent[0], &ascent[1], &ascent[2], &ascent[3]],
                    WeightDecay::none(),
                );
                out.push((
                    "the sign of the step: θ + η∇R̂ climbs the risk",
                    "2j",
                    stepped[k].clone(),
                ));
            }
        }
        _ => {}
    }
    out
}
