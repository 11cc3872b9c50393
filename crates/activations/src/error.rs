//! The crate's one error type.

/// What can go wrong in this crate: only the calls whose result would be undefined or whose
/// arguments disagree. Everything else is total (NaN in, NaN out).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ActivationError {
    /// The function is undefined on an empty vector (e.g. log-sum-exp, `ln 0`).
    #[error("{function}: empty input, the result is undefined")]
    Empty {
        /// The function that was called.
        function: &'static str,
    },
    /// Two vectors that must have the same length do not.
    #[error("{function}: vectors have lengths {expected} and {got}, expected equal")]
    LengthMismatch {
        /// The function that was called.
        function: &'static str,
        /// Length of the first vector.
        expected: usize,
        /// Length of the second vector.
        got: usize,
    },
}
