//! The IDX file format (MNIST's), read defensively.
//!
//! ```text
//! offset  size     content
//! 0       2        0x00 0x00
//! 2       1        element type: 0x08 = unsigned byte (the only one MNIST uses)
//! 3       1        number of dimensions D
//! 4       4·D      each dimension, u32 big-endian
//! 4 + 4D  ∏ dims   the elements
//! ```
//!
//! MNIST's magic numbers are 2049 (`0x00000801`, labels, one dimension) and 2051
//! (`0x00000803`, images, three dimensions). A gzip stream (first bytes `1f 8b`) is detected by
//! content, not by file name, and decompressed up to [`MAX_DECOMPRESSED`] bytes.
//!
//! Every size in the header is checked against the bytes actually present before anything is
//! allocated from it: a header claiming more (or fewer) elements than the data holds is an
//! error, never an allocation or a panic.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::DataError;

/// Magic number of an IDX file of unsigned bytes with one dimension (MNIST labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// Magic number of an IDX file of unsigned bytes with three dimensions (MNIST images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// The largest decompressed size accepted: more than four times MNIST's largest file (47 MB).
pub const MAX_DECOMPRESSED: u64 = 256 << 20;

/// A parsed IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    /// The dimensions, outermost first (`[count, rows, cols]` for images).
    pub dims: Vec<usize>,
    /// The elements, row-major.
    pub data: Vec<u8>,
}

/// `true` if `bytes` start like a gzip stream.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Decompresses if the bytes are gzip, else returns them; `file` names errors.
///
/// # Errors
/// [`DataError::Gzip`] for a corrupt stream, [`DataError::TooLarge`] beyond
/// [`MAX_DECOMPRESSED`].
pub fn decompress(bytes: Vec<u8>, file: &Path) -> Result<Vec<u8>, DataError> {
    if !is_gzip(&bytes) {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut out)
        .map_err(|e| DataError::Gzip {
            file: file.to_path_buf(),
            message: e.to_string(),
        })?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err(DataError::TooLarge {
            file: file.to_path_buf(),
            limit: MAX_DECOMPRESSED,
        });
    }
    Ok(out)
}

/// Parses uncompressed IDX bytes whose magic must be `expected`; `file` names errors.
///
/// ```
/// use retroprop_data::idx::{LABELS_MAGIC, parse};
///
/// // labels file: magic 2049, 3 labels
/// let bytes = [0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1];
/// let idx = parse(&bytes, LABELS_MAGIC, "labels".as_ref()).unwrap();
/// assert_eq!((idx.dims, idx.data), (vec![3], vec![7, 2, 1]));
/// assert!(parse(&bytes[..10], LABELS_MAGIC, "labels".as_ref()).is_err()); // one label short
/// ```
///
/// # Errors
/// [`DataError::BadMagic`], [`DataError::Truncated`] (header or data shorter than declared),
/// [`DataError::LengthMismatch`] (more data than declared).
pub fn parse(bytes: &[u8], expected: u32, file: &Path) -> Result<Idx, DataError> {
    let file_buf = || file.to_path_buf();
    if bytes.len() < 4 {
        return Err(DataError::Truncated {
            file: file_buf(),
            what: "magic number",
            needed: 4,
            found: bytes.len() as u64,
        });
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if magic != expected {
        return Err(DataError::BadMagic {
            file: file_buf(),
            expected,
            found: magic,
        });
    }
    let ndims = usize::from(bytes[3]);
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(DataError::Truncated {
            file: file_buf(),
            what: "header",
            needed: header as u64,
            found: bytes.len() as u64,
        });
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|d| u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize)
        .collect();
    // the declared element count, in u64 so that no header can overflow it
    let declared = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
    let present = (bytes.len() - header) as u64;
    match declared {
        Some(n) if n == present => Ok(Idx {
            dims,
            data: bytes[header..].to_vec(),
        }),
        Some(n) if n > present => Err(DataError::Truncated {
            file: file_buf(),
            what: "data",
            needed: header as u64 + n,
            found: bytes.len() as u64,
        }),
        _ => Err(DataError::LengthMismatch {
            file: file_buf(),
            declared: declared.unwrap_or(u64::MAX),
            present,
        }),
    }
}

/// Reads and parses an IDX file, gzip-compressed or raw.
///
/// # Errors
/// [`DataError::Io`] if the file cannot be read, and the errors of [`decompress`] and [`parse`].
pub fn read(path: &Path, expected: u32) -> Result<Idx, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::Io {
        file: PathBuf::from(path),
        message: e.to_string(),
    })?;
    parse(&decompress(bytes, path)?, expected, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small valid images file: 2 images of 2×3.
    fn images() -> Vec<u8> {
        let mut b = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3];
        b.extend(0..12u8);
        b
    }

    #[test]
    fn every_truncation_of_a_valid_file_is_an_error() {
        let full = images();
        assert!(parse(&full, IMAGES_MAGIC, Path::new("t")).is_ok());
        for len in 0..full.len() {
            let r = parse(&full[..len], IMAGES_MAGIC, Path::new("t"));
            assert!(
                matches!(r, Err(DataError::Truncated { .. })),
                "cut at {len}: {r:?}"
            );
        }
    }

    #[test]
    fn headers_that_disagree_with_the_data_are_errors() {
        let mut extra = images();
        extra.push(99);
        assert!(matches!(
            parse(&extra, IMAGES_MAGIC, Path::new("t")),
            Err(DataError::LengthMismatch {
                declared: 12,
                present: 13,
                ..
            })
        ));
        // a header claiming 4 G × 4 G × 4 G images must not allocate anything
        let huge = [
            0, 0, 8, 3, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1,
        ];
        assert!(matches!(
            parse(&huge, IMAGES_MAGIC, Path::new("t")),
            Err(DataError::LengthMismatch {
                declared: u64::MAX,
                ..
            })
        ));
        assert!(matches!(
            parse(&images(), LABELS_MAGIC, Path::new("t")),
            Err(DataError::BadMagic {
                expected: LABELS_MAGIC,
                found: IMAGES_MAGIC,
                ..
            })
        ));
    }

    #[test]
    fn gzip_is_detected_by_content() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&images()).unwrap();
        let gz = enc.finish().unwrap();
        assert!(is_gzip(&gz));
        let raw = decompress(gz.clone(), Path::new("x.idx")).unwrap();
        assert_eq!(raw, images());
        // a corrupt stream is an error naming the file
        let mut bad = gz;
        let last = bad.len() - 5;
        bad[last] ^= 0xff;
        bad.truncate(bad.len() - 2);
        assert!(matches!(
            decompress(bad, Path::new("x.idx")),
            Err(DataError::Gzip { .. })
        ));
    }
}
