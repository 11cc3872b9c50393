//! A labelled set of grey-level images kept as bytes and converted one batch at a time: the
//! shape of IDX files (MNIST, Fashion-MNIST, KMNIST, EMNIST), for any image size and number of
//! classes.

use std::path::Path;

use nalgebra::DMatrix;
use retroprop_core::rng::Rng;
use retroprop_core::simd::{prefetch, vectorized};
use retroprop_core::{Normalize, Scalar, split};

use crate::idx::{self, IMAGES_MAGIC, LABELS_MAGIC};
use crate::{Batches, DataError, Source};

/// How many images ahead a batch's gather asks for the next image's lines
/// ([`prefetch`]): enough for the lines to arrive while the images between convert (3 to 12
/// measured the same).
const PREFETCH_AHEAD: usize = 4;

/// A set of labelled grey-level images kept as bytes (47 MB for MNIST's 60 000 training
/// images), converted to `[0, 1]` one batch at a time, with labels in `0..classes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    rows: usize,
    cols: usize,
    classes: usize,
    pixels: Vec<u8>,
    labels: Vec<u8>,
}

impl Images {
    /// Images of `rows × cols` bytes, concatenated, and one label per image in `0..classes`
    /// (`file` names the labels' origin in errors).
    ///
    /// # Errors
    /// [`DataError::CountMismatch`] if the counts disagree, [`DataError::LabelOutOfRange`] for a
    /// label ≥ `classes`.
    pub fn new(
        rows: usize,
        cols: usize,
        classes: usize,
        pixels: Vec<u8>,
        labels: Vec<u8>,
        file: &Path,
    ) -> Result<Self, DataError> {
        let size = rows * cols;
        let images = pixels.len().checked_div(size).unwrap_or(0);
        if size == 0 || !pixels.len().is_multiple_of(size) || images != labels.len() {
            return Err(DataError::CountMismatch {
                file: file.to_path_buf(),
                images,
                labels: labels.len(),
            });
        }
        if let Some(index) = labels.iter().position(|&l| usize::from(l) >= classes) {
            return Err(DataError::LabelOutOfRange {
                file: file.to_path_buf(),
                index,
                label: labels[index],
                classes,
            });
        }
        Ok(Self {
            rows,
            cols,
            classes,
            pixels,
            labels,
        })
    }

    /// Reads an images file and a labels file, with labels in `0..classes`.
    ///
    /// # Errors
    /// Any [`DataError`] of either file, or a disagreement between them.
    pub fn read(images: &Path, labels: &Path, classes: usize) -> Result<Self, DataError> {
        let img = idx::read(images, IMAGES_MAGIC)?;
        let lab = idx::read(labels, LABELS_MAGIC)?;
        let [count, rows, cols] = img.dims[..] else {
            return Err(DataError::Dimensions {
                file: images.to_path_buf(),
                expected: 3,
                found: img.dims.len(),
            });
        };
        if count == 0 {
            return Err(DataError::Empty {
                file: images.to_path_buf(),
            });
        }
        if lab.dims.len() != 1 || lab.dims[0] != count {
            return Err(DataError::CountMismatch {
                file: labels.to_path_buf(),
                images: count,
                labels: lab.dims.first().copied().unwrap_or(0),
            });
        }
        Self::new(rows, cols, classes, img.data, lab.data, labels)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// `true` if there is no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `(rows, cols)` of one image.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The bytes of image `i`, row by row (`None` past the end).
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        let size = self.rows * self.cols;
        // checked: an index from a user (`--index 18446744073709551615`) must not wrap around
        let start = i.checked_mul(size)?;
        self.pixels.get(start..start.checked_add(size)?)
    }

    /// The label of image `i` (`None` past the end).
    pub fn label(&self, i: usize) -> Option<usize> {
        self.labels.get(i).map(|&l| usize::from(l))
    }

    /// The labels.
    pub fn labels(&self) -> impl Iterator<Item = usize> + '_ {
        self.labels.iter().map(|&l| usize::from(l))
    }

    /// The first `n` images (all if fewer): a quick subset for smoke tests.
    pub fn take(&self, n: usize) -> Self {
        let n = n.min(self.len());
        Self {
            rows: self.rows,
            cols: self.cols,
            classes: self.classes,
            pixels: self.pixels[..n * self.rows * self.cols].to_vec(),
            labels: self.labels[..n].to_vec(),
        }
    }

    /// Splits off `n` images chosen by a seeded shuffle as a validation set; `self` keeps the
    /// rest, in their original order.
    pub fn split_validation(&mut self, n: usize, seed: u64) -> Self {
        let n = n.min(self.len());
        let mut order: Vec<usize> = (0..self.len()).collect();
        Rng::new(seed).shuffle(&mut order);
        let mut held = vec![false; self.len()];
        for &i in &order[..n] {
            held[i] = true;
        }
        let size = self.rows * self.cols;
        let (mut keep, mut val) = (Vec::new(), Vec::new());
        let (mut keep_l, mut val_l) = (Vec::new(), Vec::new());
        for (i, &h) in held.iter().enumerate() {
            let (px, lb) = if h {
                (&mut val, &mut val_l)
            } else {
                (&mut keep, &mut keep_l)
            };
            px.extend_from_slice(&self.pixels[i * size..(i + 1) * size]);
            lb.push(self.labels[i]);
        }
        self.pixels = keep;
        self.labels = keep_l;
        Self {
            rows: self.rows,
            cols: self.cols,
            classes: self.classes,
            pixels: val,
            labels: val_l,
        }
    }

    /// Image `i` as one column of `rows·cols` values `byte / 255` (`None` past the end): the
    /// conversion training uses, for a single prediction.
    pub fn column<T: Scalar>(&self, i: usize) -> Option<DMatrix<T>> {
        let pixels = self.image(i)?;
        Some(DMatrix::from_iterator(
            pixels.len(),
            1,
            pixels.iter().map(|&b| pixel(b)),
        ))
    }

    /// Every image as one column of `rows·cols` values in `[0, 1]` (`byte / 255`), and the labels.
    pub fn to_matrix<T: Scalar>(&self) -> (DMatrix<T>, Vec<usize>) {
        let indices: Vec<usize> = (0..self.len()).collect();
        let mut x = DMatrix::zeros(self.rows * self.cols, self.len());
        let mut labels = Vec::with_capacity(self.len());
        self.gather(&indices, &mut x, &mut labels);
        (x, labels)
    }

    /// Seeded mini-batches over a shuffled order, into one reused buffer (as
    /// [`Batches::new`]).
    pub fn batches<T: Scalar>(&self, size: usize, seed: u64) -> Batches<'_, T> {
        Batches::new(self, size, seed)
    }

    /// Number of classes: labels are in `0..classes()`.
    pub fn classes(&self) -> usize {
        self.classes
    }
}

impl<T: Scalar> Source<T> for Images {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn features(&self) -> usize {
        self.rows * self.cols
    }

    fn classes(&self) -> usize {
        self.classes
    }

    /// Columns of `byte / 255`, in `[0, 1]`; large batches are converted in two halves.
    fn gather(&self, indices: &[usize], x: &mut DMatrix<T>, labels: &mut Vec<usize>) {
        let size = self.rows * self.cols;
        self.labels_of(indices, labels);
        if size == 0 {
            return;
        }
        let columns = &mut x.as_mut_slice()[..size * indices.len()];
        let work = (
            split::Chunks {
                data: columns,
                size,
            },
            indices,
        );
        // a large batch in parts, one per thread
        split::halves(work, |(columns, indices)| {
            // compiled for the best instruction set (retroprop_core::simd)
            vectorized(
                #[inline(always)]
                || {
                    let columns = columns.data.chunks_exact_mut(size);
                    for (p, column) in columns.enumerate() {
                        self.convert(&indices[p..], column, Normalize::identity());
                    }
                },
            )
        });
    }

    /// Columns of `normalize(byte / 255)`, converted and normalised in one pass by halves of the
    /// batch, and written once: each column is zeroed in L1 just before it is overwritten
    /// (`split::new_columns`), not the whole matrix first.
    fn gather_new(
        &self,
        indices: &[usize],
        labels: &mut Vec<usize>,
        normalize: Normalize<T>,
    ) -> DMatrix<T> {
        let size = self.rows * self.cols;
        self.labels_of(indices, labels);
        let values = split::new_columns(
            size,
            indices,
            #[inline(always)]
            |ahead, column| self.convert(ahead, column, normalize),
        );
        DMatrix::from_vec(size, indices.len(), values)
    }
}

impl Images {
    /// The labels of examples `indices` into `labels` (cleared first).
    fn labels_of(&self, indices: &[usize], labels: &mut Vec<usize>) {
        labels.clear();
        labels.extend(indices.iter().map(|&i| usize::from(self.labels[i])));
    }

    /// Writes `normalize(pixel(b))` for the bytes `b` of image `ahead[0]` into `column`, and asks
    /// for image `ahead[PREFETCH_AHEAD]`: the images of a shuffled batch lie anywhere in the set,
    /// so the one a few places on is fetched while this one converts (a batch of 128 MNIST
    /// images: 31 → 24 µs). `pixel`, vectorised, is a multiply and two fused multiply-adds per
    /// value, no division (a 256-entry table would cost a scalar load per pixel).
    #[inline(always)]
    fn convert<T: Scalar>(&self, ahead: &[usize], column: &mut [T], normalize: Normalize<T>) {
        let size = column.len();
        if let Some(&next) = ahead.get(PREFETCH_AHEAD) {
            prefetch(&self.pixels[next * size..(next + 1) * size]);
        }
        let image = &self.pixels[ahead[0] * size..(ahead[0] + 1) * size];
        for (v, &b) in column.iter_mut().zip(image) {
            *v = normalize.apply(pixel(b));
        }
    }
}

/// The value a grey level takes as an input: `byte / 255`, correctly rounded, so `0 → 0`,
/// `255 → 1` exactly and `128 → 128/255`. Training, evaluation and prediction all use it.
///
/// Computed without a division (a vector division issues far less often than a multiply-add): the
/// quotient `q = b · r` by the rounded reciprocal `r = 1/255` is off by an ulp for 126 of the
/// 256 levels in `f32` (24 in `f64`), and one Newton step with its exact remainder,
///
/// ```text
/// e = b − 255 q   (exact, one fused multiply-add)      pixel = q + e · r   (rounded once)
/// ```
///
/// gives the correctly rounded `b / 255` for every level in both types (all 256 checked against
/// the division by the crate's tests).
#[inline(always)]
pub fn pixel<T: Scalar>(byte: u8) -> T {
    let (b, levels) = (T::from_byte(byte), T::lit(255.0));
    let r = T::one() / levels;
    let q = b * r;
    let e = (-q).mul_add(levels, b);
    e.mul_add(r, q)
}
