//! Shapes of one example, tracked through a network for summaries and checks.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The shape of one example (one batch column).
///
/// A batch matrix does not carry its shape beyond its row count, so layers that care (convolution,
/// pooling, flattening, dense) check and propagate it with [`crate::Layer::output_shape`].
/// Images are stored in C×H×W order in their column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Shape {
    /// A feature vector of this length.
    Flat(usize),
    /// An image with `c` channels of `h × w` pixels, stored channel-major, then by rows.
    Image {
        /// Channels.
        c: usize,
        /// Height.
        h: usize,
        /// Width.
        w: usize,
    },
}

impl Shape {
    /// A feature vector of `n` values.
    pub const fn flat(n: usize) -> Self {
        Shape::Flat(n)
    }

    /// An image of `c` channels of `h × w`.
    pub const fn image(c: usize, h: usize, w: usize) -> Self {
        Shape::Image { c, h, w }
    }

    /// Number of values: the number of rows of a batch matrix of this shape.
    pub const fn len(&self) -> usize {
        match *self {
            Shape::Flat(n) => n,
            Shape::Image { c, h, w } => c * h * w,
        }
    }

    /// Number of values, or `None` if the product overflows `usize` (a shape read from a file).
    pub const fn checked_len(&self) -> Option<usize> {
        match *self {
            Shape::Flat(n) => Some(n),
            Shape::Image { c, h, w } => match c.checked_mul(h) {
                Some(ch) => ch.checked_mul(w),
                None => None,
            },
        }
    }

    /// `true` if the shape holds no value.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for Shape {
    /// `256` for a vector, `32×64×64` (C×H×W) for an image.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Shape::Flat(n) => write!(f, "{n}"),
            Shape::Image { c, h, w } => write!(f, "{c}×{h}×{w}"),
        }
    }
}

/// The largest number of values a layer accepts per example or per parameter: `2³²`. Larger
/// sizes are certainly a corrupt description (a layer that big would not fit in memory), and
/// refusing them keeps every size computation far from overflow.
pub const MAX_VALUES: usize = 1 << 32;

/// [`crate::LayerError::ZeroSize`] for the first size that is zero.
pub(crate) fn check_nonzero(
    layer: &'static str,
    sizes: &[(&'static str, usize)],
) -> Result<(), crate::LayerError> {
    match sizes.iter().find(|(_, v)| *v == 0) {
        Some(&(what, _)) => Err(crate::LayerError::ZeroSize { layer, what }),
        None => Ok(()),
    }
}

/// `∏ dims`, or [`LayerError::TooLarge`] above [`MAX_VALUES`] (checked at every step).
pub(crate) fn checked_product(
    layer: &'static str,
    dims: &[usize],
) -> Result<usize, crate::LayerError> {
    let mut acc: usize = 1;
    for &d in dims {
        acc =
            acc.checked_mul(d)
                .filter(|&v| v <= MAX_VALUES)
                .ok_or(crate::LayerError::TooLarge {
                    layer,
                    values: usize::MAX,
                    limit: MAX_VALUES,
                })?;
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn len_and_display() {
        assert_eq!(Shape::image(32, 64, 64).len(), 131_072);
        assert_eq!(Shape::image(64, 32, 32).to_string(), "64×32×32");
        assert_eq!(Shape::flat(10).to_string(), "10");
        assert!(Shape::flat(0).is_empty());
    }
}
