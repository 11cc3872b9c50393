//! Seeded data augmentation of image batches: random translations and small rotations, drawn
//! on the fly for each training step (torchvision's `RandomAffine(degrees, translate)`).

use nalgebra::DMatrix;
use rayon::prelude::*;
use retroprop_core::Scalar;
use retroprop_core::rng::Rng;

use crate::DataError;

/// Random affine distortions of `C×H×W` images, one per image and per step: a rotation by an
/// angle uniform in `[−max_degrees, max_degrees]` about the image centre, then a translation by
/// whole pixels uniform in `[−max_shift, max_shift]` on each axis.
///
/// ```text
/// output pixel (r, c), centre (r₀, c₀) = ((H − 1)/2, (W − 1)/2):
///   source = R(−θ) · (r − r₀, c − c₀) + (r₀, c₀) − (Δr, Δc)
///   value  = bilinear interpolation of the input at source, 0 (black) outside the image
/// ```
///
/// Each image's draw depends only on the step's seed and the image's position in the batch, so
/// a run repeats bit for bit at any thread count and a resumed run distorts what the
/// uninterrupted one did. With `θ = 0` and no shift the image is copied exactly. Every
/// coordinate is checked against the image bounds before it is read (no index is formed from an
/// unchecked float). Apply it to training batches only, before standardisation (the black
/// background is the raw pixel 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Augmentation {
    channels: usize,
    height: usize,
    width: usize,
    max_shift: usize,
    max_degrees: f64,
}

impl Augmentation {
    /// Distortions of `(C, H, W)` images by up to `max_shift` pixels and `max_degrees` degrees.
    ///
    /// # Errors
    /// [`DataError::Augmentation`] for an empty image, a shift of half the image or more, or an
    /// angle that is not finite or above 180°.
    pub fn new(
        (channels, height, width): (usize, usize, usize),
        max_shift: usize,
        max_degrees: f64,
    ) -> Result<Self, DataError> {
        let fail = |detail: String| Err(DataError::Augmentation { detail });
        if channels == 0 || height == 0 || width == 0 {
            return fail(format!("the image {channels}×{height}×{width} is empty"));
        }
        if 2 * max_shift >= height.min(width) {
            return fail(format!(
                "a shift of up to {max_shift} pixels would move a {height}×{width} image out of its frame; use at most {}",
                (height.min(width) - 1) / 2
            ));
        }
        if !(max_degrees.is_finite() && (0.0..=180.0).contains(&max_degrees)) {
            return fail(format!(
                "the angle {max_degrees}° must be finite and in [0, 180]"
            ));
        }
        Ok(Self {
            channels,
            height,
            width,
            max_shift,
            max_degrees,
        })
    }

    /// Values per image: `C·H·W`.
    pub fn features(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Distorts every column of `x` (one image each) with draws from `seed`.
    ///
    /// # Errors
    /// [`DataError::Augmentation`] if `x` does not have [`Augmentation::features`] rows.
    pub fn apply<T: Scalar>(&self, x: &mut DMatrix<T>, seed: u64) -> Result<(), DataError> {
        let rows = self.features();
        if x.nrows() != rows {
            return Err(DataError::Augmentation {
                detail: format!(
                    "the batch has {} values per example, the augmentation expects {}×{}×{} = {rows}",
                    x.nrows(),
                    self.channels,
                    self.height,
                    self.width
                ),
            });
        }
        if rows == 0 || x.ncols() == 0 {
            return Ok(());
        }
        x.as_mut_slice()
            .par_chunks_exact_mut(rows)
            .enumerate()
            .for_each(|(j, column)| {
                let mut rng = Rng::new(seed ^ (j as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let theta = rng
                    .uniform(-self.max_degrees, self.max_degrees)
                    .to_radians();
                let shift = |rng: &mut Rng| {
                    rng.below(2 * self.max_shift + 1) as f64 - self.max_shift as f64
                };
                let (dr, dc) = (shift(&mut rng), shift(&mut rng));
                self.distort(column, theta, dr, dc);
            });
        Ok(())
    }

    /// One image, in place: rotation by `theta` (radians) and translation by `(dr, dc)`.
    fn distort<T: Scalar>(&self, image: &mut [T], theta: f64, dr: f64, dc: f64) {
        let (h, w) = (self.height, self.width);
        let plane = h * w;
        let (r0, c0) = ((h as f64 - 1.0) / 2.0, (w as f64 - 1.0) / 2.0);
        let (sin, cos) = theta.sin_cos();
        let source: Vec<T> = image.to_vec();
        for ch in 0..self.channels {
            let src = &source[ch * plane..(ch + 1) * plane];
            let dst = &mut image[ch * plane..(ch + 1) * plane];
            for r in 0..h {
                for c in 0..w {
                    let (y, x) = (r as f64 - r0, c as f64 - c0);
                    // R(−θ) applied to (y, x): the inverse of rotating by θ
                    let sy = cos * y + sin * x + r0 - dr;
                    let sx = -sin * y + cos * x + c0 - dc;
                    dst[r * w + c] = bilinear(src, h, w, sy, sx);
                }
            }
        }
    }
}

/// The bilinear interpolation of an `h × w` plane at `(y, x)`, 0 outside.
fn bilinear<T: Scalar>(plane: &[T], h: usize, w: usize, y: f64, x: f64) -> T {
    let (fy, fx) = (y.floor(), x.floor());
    let (ty, tx) = (y - fy, x - fx);
    // the four neighbours (fy or fy + 1, fx or fx + 1), each read only if inside the image
    let at = |r: f64, c: f64| -> f64 {
        if r >= 0.0 && c >= 0.0 && r < h as f64 && c < w as f64 {
            plane[r as usize * w + c as usize].to_f64()
        } else {
            0.0
        }
    };
    let mut v = 0.0;
    for (r, wr) in [(fy, 1.0 - ty), (fy + 1.0, ty)] {
        for (c, wc) in [(fx, 1.0 - tx), (fx + 1.0, tx)] {
            let weight = wr * wc;
            if weight != 0.0 {
                v += weight * at(r, c);
            }
        }
    }
    T::lit(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digit() -> DMatrix<f32> {
        // a 1×6×6 image with a 2×2 bright square and a gradient, and a second image
        DMatrix::from_fn(36, 2, |i, j| {
            let (r, c) = (i / 6, i % 6);
            if (2..4).contains(&r) && (2..4).contains(&c) {
                1.0
            } else {
                (r * 6 + c + j) as f32 / 64.0
            }
        })
    }

    #[test]
    fn no_distortion_is_an_exact_copy_and_shifts_move_by_whole_pixels() {
        let identity = Augmentation::new((1, 6, 6), 0, 0.0).unwrap();
        let mut x = digit();
        identity.apply(&mut x, 3).unwrap();
        assert_eq!(x, digit());
        // a pure shift by (1, −2): out(r, c) = in(r − 1, c + 2), black where that is outside
        let a = Augmentation::new((1, 6, 6), 2, 0.0).unwrap();
        let input = digit();
        let mut column: Vec<f32> = input.column(0).iter().copied().collect();
        a.distort(&mut column, 0.0, 1.0, -2.0);
        for r in 0..6 {
            for c in 0..6 {
                let expect = if r >= 1 && c + 2 < 6 {
                    input[((r - 1) * 6 + c + 2, 0)]
                } else {
                    0.0
                };
                assert_eq!(column[r * 6 + c], expect, "({r}, {c})");
            }
        }
    }

    #[test]
    fn a_quarter_turn_rotates_and_draws_repeat_with_the_seed() {
        let a = Augmentation::new((1, 6, 6), 1, 15.0).unwrap();
        let input = digit();
        let mut column: Vec<f32> = input.column(0).iter().copied().collect();
        a.distort(&mut column, std::f64::consts::FRAC_PI_2, 0.0, 0.0);
        // a quarter turn about the centre (2.5, 2.5): out(r, c) = in(c, 5 − r)
        for r in 0..6 {
            for c in 0..6 {
                let v = column[r * 6 + c];
                assert!((v - input[(c * 6 + 5 - r, 0)]).abs() < 1e-6, "({r}, {c})");
            }
        }
        let (mut x, mut y) = (digit(), digit());
        a.apply(&mut x, 7).unwrap();
        a.apply(&mut y, 7).unwrap();
        assert_eq!(x, y);
        a.apply(&mut y, 8).unwrap();
        assert_ne!(x, y, "another seed draws other distortions");
        assert!(x.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
    }

    #[test]
    fn bad_settings_and_batches_are_errors() {
        assert!(Augmentation::new((1, 6, 6), 3, 0.0).is_err());
        assert!(Augmentation::new((1, 0, 6), 0, 0.0).is_err());
        assert!(Augmentation::new((1, 6, 6), 1, f64::NAN).is_err());
        let a = Augmentation::new((1, 6, 6), 1, 5.0).unwrap();
        let err = a.apply(&mut DMatrix::<f64>::zeros(35, 2), 1).unwrap_err();
        assert!(err.to_string().contains("35"), "{err}");
    }
}
