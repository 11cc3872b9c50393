//! `explain conv1d`: question 3c for any two vectors — the flipped kernel, each output of one
//! mode as its sum of products, and the three modes side by side, computed by the library's
//! `convolve1d`.

use retroprop_layers::nalgebra::DMatrix;
use retroprop_layers::{ConvMode, convolve1d};

use super::quantity::{Quantity, number};

/// The homework's vectors: `[1, 1, 4, 4, 4, 1, 1]` and the 4-tap kernel `[¼, ¼, ¼, ¼]`.
pub fn question_3c() -> (Vec<f64>, Vec<f64>) {
    (vec![1.0, 1.0, 4.0, 4.0, 4.0, 1.0, 1.0], vec![0.25; 4])
}

/// `1,1,4,4` → the numbers.
pub fn parse(s: &str, what: &str) -> Result<Vec<f64>, String> {
    let v: Result<Vec<f64>, _> = s.split(',').map(|t| t.trim().parse::<f64>()).collect();
    match v {
        Ok(v) if !v.is_empty() && v.iter().all(|x| x.is_finite()) => Ok(v),
        _ => Err(format!(
            "{what} `{s}`: write finite numbers separated by commas, e.g. 0.25,0.25"
        )),
    }
}

/// The mode's name as in numpy.
pub fn mode_name(mode: ConvMode) -> &'static str {
    match mode {
        ConvMode::Full => "full",
        ConvMode::Same => "same",
        ConvMode::Valid => "valid",
    }
}

fn row(v: &[f64]) -> DMatrix<f64> {
    DMatrix::from_row_slice(1, v.len(), v)
}

/// The flipped kernel, the three modes, then the outputs of `expand` as sums of products.
///
/// # Errors
/// The library's message for an empty vector.
pub fn compute(
    x: &[f64],
    k: &[f64],
    expand: ConvMode,
) -> Result<(Vec<Quantity>, Vec<String>), String> {
    let conv = |mode| convolve1d(x, k, mode).map_err(|e| e.to_string());
    let full = conv(ConvMode::Full)?;
    let flipped: Vec<f64> = k.iter().rev().copied().collect();
    let mut q = vec![Quantity::new(
        "3c",
        "flipped",
        "k̃",
        "k reversed: (x * k)[t] = Σⱼ x[t − j] k[j]",
        &row(&flipped),
    )];
    for mode in [ConvMode::Full, ConvMode::Same, ConvMode::Valid] {
        let y = conv(mode)?;
        let formula = match mode {
            ConvMode::Full => format!(
                "length n + m − 1 = {} + {} − 1 = {}",
                x.len(),
                k.len(),
                y.len()
            ),
            ConvMode::Same => format!("length max(n, m) = {}, the centre of full", y.len()),
            ConvMode::Valid => format!("length |n − m| + 1 = {}", y.len()),
        };
        q.push(Quantity::new(
            "3c",
            mode_name(mode),
            &format!("x * k ({})", mode_name(mode)),
            &formula,
            &row(&y),
        ));
    }
    // where the expanded mode sits in the full convolution (numpy's rule, read off the library)
    let chosen = conv(expand)?;
    let offset = (0..=full.len() - chosen.len())
        .find(|&o| full[o..o + chosen.len()] == chosen[..])
        .unwrap_or(0);
    let sums = (0..chosen.len())
        .map(|i| {
            let t = offset + i;
            let terms: Vec<String> = (0..k.len())
                .filter(|&j| t >= j && t - j < x.len())
                .map(|j| format!("{}·{}", number(x[t - j]), number(k[j])))
                .collect();
            format!("y[{i}] = {} = {}", terms.join(" + "), number(chosen[i]))
        })
        .collect();
    Ok((q, sums))
}

/// The known mistake of 3c: a kernel with one tap fewer (the answer key's `[¼, ¼, ¼]`).
pub fn mistakes(
    x: &[f64],
    k: &[f64],
    name: &str,
) -> Vec<(&'static str, &'static str, DMatrix<f64>)> {
    let mode = match name {
        "full" => ConvMode::Full,
        "same" => ConvMode::Same,
        "valid" => ConvMode::Valid,
        _ => return Vec::new(),
    };
    if k.len() < 2 {
        return Vec::new();
    }
    match convolve1d(x, &k[..k.len() - 1], mode) {
        Ok(y) => vec![(
            "a kernel with one tap fewer (the answer key's 3-tap [¼, ¼, ¼] for the 4-tap [¼, ¼, ¼, ¼])",
            "3c",
            row(&y),
        )],
        Err(_) => Vec::new(),
    }
}
