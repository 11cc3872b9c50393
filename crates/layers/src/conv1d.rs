//! 1-D convolution with kernel flipping, in the three modes of question 3c.

use retroprop_core::Scalar;

use crate::LayerError;

/// Which part of the full convolution to return, as `numpy.convolve`'s `mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvMode {
    /// Every overlap: length `n + m − 1`.
    Full,
    /// Length `max(n, m)`, centred on the full result: starts at index `(min(n, m) − 1) / 2`
    /// (integer division), so for an even kernel the extra value falls at the end.
    Same,
    /// Only complete overlaps: length `max(n, m) − min(n, m) + 1`.
    Valid,
}

/// Discrete convolution with kernel flipping (a true convolution, question 3c), with
/// `numpy.convolve`'s semantics:
///
/// ```text
/// full[t] = Σⱼ x[t − j] · k[j],   t = 0 … n + m − 2   (x and k are zero outside their range)
/// same    = full[(min(n,m) − 1)/2 ..][.. max(n, m)]
/// valid   = full[min(n,m) − 1 ..][.. max(n,m) − min(n,m) + 1]
/// ```
///
/// Convolution is commutative, so the longer of the two operands plays the signal (as in
/// numpy). Compare [`crate::Conv2d`], which like every deep-learning framework computes the
/// cross-correlation `Σⱼ x[t + j] · k[j]` (no flip).
///
/// ```
/// use retroprop_layers::{ConvMode, LayerError, convolve1d};
///
/// # fn main() -> Result<(), LayerError> {
/// // Question 3c: [1, 1, 4, 4, 4, 1, 1] * [1/4, 1/4, 1/4, 1/4]
/// let x = [1.0, 1.0, 4.0, 4.0, 4.0, 1.0, 1.0];
/// let k = [0.25; 4];
/// assert_eq!(convolve1d(&x, &k, ConvMode::Valid)?, vec![2.5, 3.25, 3.25, 2.5]);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`LayerError::EmptyConvolution`] if the signal or the kernel is empty (as numpy, which
/// raises).
pub fn convolve1d<T: Scalar>(x: &[T], kernel: &[T], mode: ConvMode) -> Result<Vec<T>, LayerError> {
    if x.is_empty() {
        return Err(LayerError::EmptyConvolution { what: "signal" });
    }
    if kernel.is_empty() {
        return Err(LayerError::EmptyConvolution { what: "kernel" });
    }
    let (n, m) = (x.len(), kernel.len());
    let mut full = vec![T::zero(); n + m - 1];
    for (i, &xi) in x.iter().enumerate() {
        for (j, &kj) in kernel.iter().enumerate() {
            full[i + j] += xi * kj;
        }
    }
    let (long, short) = (n.max(m), n.min(m));
    let (start, len) = match mode {
        ConvMode::Full => (0, n + m - 1),
        ConvMode::Same => ((short - 1) / 2, long),
        ConvMode::Valid => (short - 1, long - short + 1),
    };
    Ok(full[start..start + len].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNAL: [f64; 7] = [1.0, 1.0, 4.0, 4.0, 4.0, 1.0, 1.0];

    #[test]
    fn question_3c_with_the_questions_4_tap_kernel() {
        // Expected values: numpy.convolve(x, [0.25]*4, mode) (numpy 2.4), and by hand:
        // full[t] = (x[t−3] + x[t−2] + x[t−1] + x[t]) / 4.
        let k = [0.25; 4];
        assert_eq!(
            convolve1d(&SIGNAL, &k, ConvMode::Full).unwrap(),
            vec![0.25, 0.5, 1.5, 2.5, 3.25, 3.25, 2.5, 1.5, 0.5, 0.25]
        );
        assert_eq!(
            convolve1d(&SIGNAL, &k, ConvMode::Same).unwrap(),
            vec![0.5, 1.5, 2.5, 3.25, 3.25, 2.5, 1.5]
        );
        assert_eq!(
            convolve1d(&SIGNAL, &k, ConvMode::Valid).unwrap(),
            vec![2.5, 3.25, 3.25, 2.5]
        );
    }

    #[test]
    fn the_answer_keys_3_tap_kernel_gives_the_answer_keys_numbers() {
        // The answer key used [1/4, 1/4, 1/4]; its numbers are right for that kernel
        // (numpy.convolve agrees), wrong for the question.
        let k = [0.25; 3];
        assert_eq!(
            convolve1d(&SIGNAL, &k, ConvMode::Full).unwrap(),
            vec![0.25, 0.5, 1.5, 2.25, 3.0, 2.25, 1.5, 0.5, 0.25]
        );
        assert_eq!(
            convolve1d(&SIGNAL, &k, ConvMode::Same).unwrap(),
            vec![0.5, 1.5, 2.25, 3.0, 2.25, 1.5, 0.5]
        );
        assert_eq!(
            convolve1d(&SIGNAL, &k, ConvMode::Valid).unwrap(),
            vec![1.5, 2.25, 3.0, 2.25, 1.5]
        );
    }

    #[test]
    fn flipping_matters_for_an_asymmetric_kernel() {
        // numpy.convolve([1, 2, 3, 4], [1, 10], 'full') = [1, 12, 23, 34, 40]
        assert_eq!(
            convolve1d(&[1.0, 2.0, 3.0, 4.0], &[1.0, 10.0], ConvMode::Full).unwrap(),
            vec![1.0, 12.0, 23.0, 34.0, 40.0]
        );
        // a kernel longer than the signal swaps roles, as numpy:
        // numpy.convolve([1,1,4,4,4,1,1], [1..=9], 'same') = [19, 33, …, 81]
        let k: Vec<f64> = (1..=9).map(f64::from).collect();
        assert_eq!(
            convolve1d(&SIGNAL, &k, ConvMode::Same).unwrap(),
            vec![19.0, 33.0, 48.0, 64.0, 80.0, 96.0, 102.0, 107.0, 81.0]
        );
        assert_eq!(
            convolve1d(&SIGNAL, &k, ConvMode::Valid).unwrap(),
            vec![64.0, 80.0, 96.0]
        );
    }

    /// The definition read straight from numpy's documentation, gather form:
    /// `full[t] = Σ_{j} x[t − j] k[j]` over the valid `j`, then the mode's window.
    fn direct(x: &[f64], k: &[f64], mode: ConvMode) -> Vec<f64> {
        let (n, m) = (x.len(), k.len());
        let full: Vec<f64> = (0..n + m - 1)
            .map(|t| {
                (0..m)
                    .filter(|&j| t >= j && t - j < n)
                    .map(|j| x[t - j] * k[j])
                    .sum()
            })
            .collect();
        let (long, short) = (n.max(m), n.min(m));
        match mode {
            ConvMode::Full => full,
            ConvMode::Same => full[(short - 1) / 2..(short - 1) / 2 + long].to_vec(),
            ConvMode::Valid => full[short - 1..long].to_vec(),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            failure_persistence: Some(Box::new(
                proptest::test_runner::FileFailurePersistence::Direct(
                    "proptest-regressions/conv1d.txt",
                ),
            )),
            ..Default::default()
        })]

        #[test]
        fn matches_the_direct_definition(
            x in proptest::collection::vec(-10.0..10.0_f64, 1..20),
            k in proptest::collection::vec(-10.0..10.0_f64, 1..20),
        ) {
            for mode in [ConvMode::Full, ConvMode::Same, ConvMode::Valid] {
                let got = convolve1d(&x, &k, mode).unwrap();
                let want = direct(&x, &k, mode);
                proptest::prop_assert_eq!(got.len(), want.len());
                for (a, b) in got.iter().zip(&want) {
                    proptest::prop_assert!((a - b).abs() < 1e-9, "{:?}: {} vs {}", mode, a, b);
                }
            }
        }
    }

    #[test]
    fn empty_operands_are_errors() {
        assert_eq!(
            convolve1d::<f64>(&[], &[1.0], ConvMode::Full),
            Err(LayerError::EmptyConvolution { what: "signal" })
        );
        assert_eq!(
            convolve1d(&[1.0_f64], &[], ConvMode::Full),
            Err(LayerError::EmptyConvolution { what: "kernel" })
        );
    }
}
