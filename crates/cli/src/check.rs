//! `retroprop check ANSWERS`: grades a student's values for an instance and names the known
//! mistake that reproduces each wrong one.
//!
//! ```text
//! for each answered quantity, in the homework's order:
//!   right     within the tolerance of hand computation (|a − v| ≤ 0.005 + 1% of |v|)
//!   a known mistake reproduces it    → its name and the section of docs/homework.md
//!   the right formula applied to the student's own wrong inputs reproduces it
//!             → "consistent with your value of …": fix that one first
//!   otherwise → wrong, with the right value
//! ```
//!
//! Every value compared with is computed by the library (the explanation's computation), the
//! mistaken ones by the library on the mistaken inputs where the mistake is one of inputs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use retroprop_layers::nalgebra::DMatrix;
use serde::Deserialize;

use crate::explain::quantity::{Quantity, rows, value_text, wrap};
use crate::explain::{Instance, binary, cnn, conv1d, mlp, mlp_mistakes, quantities};

/// Options of `retroprop check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The answers: `{"kind": …, "instance": …, "quantities": [{"name": …, "value": …}, …]}`
    /// — the schema of `retroprop explain --json`, with any subset of the quantities.
    answers: PathBuf,
}

/// One answered value.
#[derive(Debug, Deserialize)]
struct Answer {
    name: String,
    value: serde_json::Value,
}

/// An answer file.
#[derive(Debug, Deserialize)]
struct Answers {
    #[serde(flatten)]
    instance: Instance,
    quantities: Vec<Answer>,
}

/// The tolerance of hand computation with a few digits, on values in row-major order (a
/// student's list of another length is simply not close).
fn close(a: &[f64], b: &DMatrix<f64>) -> bool {
    let b = row_major(b);
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(x, y)| (x - y).abs() <= 0.005 + 0.01 * y.abs())
}

fn row_major(m: &DMatrix<f64>) -> Vec<f64> {
    m.transpose().as_slice().to_vec()
}

/// A student's values in row-major order: a number, a flat list, or a list of rows.
fn student_value(value: &serde_json::Value) -> Result<Vec<f64>, String> {
    let number = |v: &serde_json::Value| v.as_f64().ok_or_else(|| format!("`{v}` is not a number"));
    let flat: Vec<f64> = match value {
        serde_json::Value::Number(_) => vec![number(value)?],
        serde_json::Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    serde_json::Value::Array(row) => {
                        for v in row {
                            out.push(number(v)?);
                        }
                    }
                    v => out.push(number(v)?),
                }
            }
            out
        }
        other => return Err(format!("`{other}` is not a number or a list of numbers")),
    };
    Ok(flat)
}

/// The text of a student's value, in the right value's shape when it has its size.
fn text(flat: &[f64], shape: [usize; 2]) -> String {
    if flat.len() == shape[0] * shape[1] {
        value_text(&rows(&DMatrix::from_row_slice(shape[0], shape[1], flat)))
    } else {
        value_text(&vec![flat.to_vec()])
    }
}

/// The known mistakes for a quantity, as `(what, section, value)`.
fn mistakes(
    instance: &Instance,
    truth: &[Quantity],
    name: &str,
) -> Vec<(&'static str, &'static str, DMatrix<f64>)> {
    match instance {
        Instance::Mlp(inst) => mlp_mistakes::mistakes(inst, truth, name),
        Instance::Binary(_) => binary::mistakes(truth, name),
        Instance::Cnn { .. } => cnn::mistakes(truth, name)
            .into_iter()
            .map(|(what, section, v)| (what, section, DMatrix::from_element(1, 1, v)))
            .collect(),
        Instance::Conv1d { x, kernel } => conv1d::mistakes(x, kernel, name),
    }
}

/// The quantity recomputed from the student's values of its inputs (`None` if the student
/// gave none of them, or none of them was wrong).
fn from_student_inputs(
    instance: &Instance,
    name: &str,
    given: &BTreeMap<String, DMatrix<f64>>,
    wrong: &[String],
) -> Option<(DMatrix<f64>, Vec<String>)> {
    // only inputs given in the right shape can be computed from
    let inputs: &[&str] = match instance {
        Instance::Mlp(_) => mlp::inputs(name),
        Instance::Binary(_) => binary::inputs(name),
        _ => &[],
    };
    let used: Vec<String> = inputs
        .iter()
        .filter(|i| wrong.iter().any(|w| w == *i))
        .map(|i| (*i).to_string())
        .collect();
    if used.is_empty() {
        return None;
    }
    let recomputed = match instance {
        Instance::Mlp(inst) => {
            let overrides: mlp::Overrides = inputs
                .iter()
                .filter_map(|i| Some(((*i).to_string(), given.get(*i)?.clone())))
                .collect();
            mlp::compute(inst, &overrides)
        }
        Instance::Binary(inst) => binary::compute(*inst, given.get("sigma").map(|m| m[0])),
        _ => return None,
    };
    let q = recomputed.into_iter().find(|q| q.name == name)?;
    Some((q.matrix(), used))
}

/// `retroprop check`: prints a verdict per answer; `Ok(false)` if any is wrong.
pub fn run(args: &CheckArgs) -> Result<bool, String> {
    let path = &args.answers;
    let file = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let answers: Answers = serde_json::from_str(&file).map_err(|e| {
        format!(
            "{}: not an answer file ({e}); write it as `retroprop explain … --json` writes, keeping the quantities you computed",
            path.display()
        )
    })?;
    // parses and checks the instance (a CNN's layers included) on the way
    let truth = quantities(&answers.instance)?;
    let known: Vec<&str> = truth.iter().map(|q| q.name.as_str()).collect();
    let mut flat = BTreeMap::new();
    let mut given = BTreeMap::new();
    for a in &answers.quantities {
        let Some(q) = truth.iter().find(|q| q.name == a.name) else {
            return Err(format!(
                "{}: there is no quantity `{}` here (there are: {})",
                path.display(),
                a.name,
                known.join(", ")
            ));
        };
        let v =
            student_value(&a.value).map_err(|e| format!("{}: {}: {e}", path.display(), a.name))?;
        if v.len() == q.shape[0] * q.shape[1] {
            given.insert(
                a.name.clone(),
                DMatrix::from_row_slice(q.shape[0], q.shape[1], &v),
            );
        }
        flat.insert(a.name.clone(), v);
    }
    let (mut right, mut wrong) = (0, Vec::new());
    for q in &truth {
        let Some(v) = flat.get(&q.name) else {
            continue;
        };
        let expected = q.matrix();
        let label = format!("{:<5} {:<10}", q.id, q.symbol);
        if close(v, &expected) {
            println!("ok     {label} {}", text(v, q.shape));
            right += 1;
            continue;
        }
        let mut out = String::new();
        let verdict = format!(
            "{label} yours {}, right {}",
            text(v, q.shape),
            value_text(&q.value)
        );
        wrap(&mut out, "WRONG  ", &verdict);
        let found = mistakes(&answers.instance, &truth, &q.name)
            .into_iter()
            .find(|(_, _, m)| close(v, m));
        let diagnosis = match found {
            Some((what, section, _)) => {
                format!("the known mistake: {what} (docs/homework.md, {section})")
            }
            None => match from_student_inputs(&answers.instance, &q.name, &given, &wrong) {
                Some((value, inputs)) if close(v, &value) => format!(
                    "consistent with your value of {}: right from there; fix that one first",
                    inputs.join(" and ")
                ),
                _ => format!(
                    "no known mistake gives it; recompute {} = {}",
                    q.symbol, q.formula
                ),
            },
        };
        wrap(&mut out, "       ", &diagnosis);
        print!("{out}");
        wrong.push(q.name.clone());
    }
    let tolerance = "each value within 0.005 + 1% of the right one";
    println!(
        "\n{right} of {} right ({tolerance}){}",
        right + wrong.len(),
        if wrong.is_empty() {
            ""
        } else {
            "; see each WRONG line"
        }
    );
    Ok(wrong.is_empty())
}
