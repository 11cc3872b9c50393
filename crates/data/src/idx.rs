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
/// Every member of a multi-member stream is decoded (as `gunzip` does: `cat a.gz b.gz` is a
/// valid gzip file of both contents); bytes after the last member that are not a member are
/// refused.
///
/// # Errors
/// [`DataError::Gzip`] for a corrupt or cut stream, [`DataError::TrailingBytes`] for data
/// after it, [`DataError::TooLarge`] beyond [`MAX_DECOMPRESSED`] in all.
pub fn decompress(bytes: Vec<u8>, file: &Path) -> Result<Vec<u8>, DataError> {
    if !is_gzip(&bytes) {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    let mut rest: &[u8] = &bytes;
    while !rest.is_empty() {
        if !is_gzip(rest) {
            return Err(DataError::TrailingBytes {
                file: file.to_path_buf(),
                bytes: rest.len(),
            });
        }
        let budget = (MAX_DECOMPRESSED + 1).saturating_sub(out.len() as u64);
        let mut member = flate2::bufread::GzDecoder::new(rest);
        (&mut member)
            .take(budget)
            .read_to_end(&mut out)
            .map_err(|e| gzip_error(file, &e))?;
        if out.len() as u64 > MAX_DECOMPRESSED {
            return Err(DataError::TooLarge {
                file: file.to_path_buf(),
                limit: MAX_DECOMPRESSED,
            });
        }
        rest = member.into_inner();
    }
    Ok(out)
}

/// The decoder's error in plain words (flate2's own messages repeat "corrupt gzip stream").
fn gzip_error(file: &Path, e: &std::io::Error) -> DataError {
    let message = if e.kind() == std::io::ErrorKind::UnexpectedEof {
        "the compressed data is cut short".to_string()
    } else {
        let text = e.to_string();
        let detail = text.strip_prefix("corrupt gzip stream ").unwrap_or(&text);
        format!("it {detail}")
            .replace("it does not have", "the data does not have")
            .replace("it invalid", "invalid")
    };
    DataError::Gzip {
        file: file.to_path_buf(),
        message,
    }
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

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn every_member_of_a_multi_member_stream_is_decoded() {
        // `cat a.gz b.gz`: the contents one after the other
        let (a, b) = (images(), vec![9u8; 300]);
        let mut both = gzip(&a);
        both.extend(gzip(&b));
        let mut want = a;
        want.extend(&b);
        assert_eq!(decompress(both, Path::new("x.gz")).unwrap(), want);
    }

    #[test]
    fn trailing_garbage_and_cut_streams_are_refused_in_plain_words() {
        let mut trailing = gzip(&images());
        trailing.extend(b"garbage!");
        let err = decompress(trailing, Path::new("x.gz")).unwrap_err();
        assert_eq!(
            err,
            DataError::TrailingBytes {
                file: "x.gz".into(),
                bytes: 8
            }
        );
        let mut cut = gzip(&images());
        cut.truncate(cut.len() / 2);
        let err = decompress(cut, Path::new("x.gz")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("cut short") && text.matches("corrupt").count() == 1,
            "{text}"
        );
        let mut flipped = gzip(&images());
        let at = flipped.len() - 6;
        flipped[at] ^= 0x55;
        let text = decompress(flipped, Path::new("x.gz"))
            .unwrap_err()
            .to_string();
        assert_eq!(text.matches("corrupt").count(), 1, "{text}");
    }
}
