//! A header that does not decode is explained in words: cut short, naming a layer kind this
//! version does not know, or larger than any this version writes — each file here has a valid
//! checksum, so only the header's own decoding can tell what is wrong. And the boundaries of
//! the header's checks: nesting exactly as deep as allowed loads, and a file cut right after its
//! header says how long it should be.

use std::path::PathBuf;

use retroprop_layers::{Init, Layer, Relu, Shape};
use retroprop_models::Sequential;
use retroprop_models::checkpoint::{self, CheckpointError};

/// The 64-bit FNV-1a checksum the format ends with.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A checkpoint of format `version` whose header is `header`, with some value bytes after it
/// and a correct checksum.
fn file_with_header(version: u32, header: &[u8]) -> Vec<u8> {
    let mut out = checkpoint::MAGIC.to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(&[0; 16]);
    let checksum = fnv1a(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

/// The header of a real checkpoint (the bytes between the prefix and the values).
fn header_of(bytes: &[u8]) -> Vec<u8> {
    let len = u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
    bytes[20..20 + len].to_vec()
}

fn header_detail(bytes: &[u8]) -> String {
    match checkpoint::from_bytes::<f32>(bytes) {
        Err(CheckpointError::Header { detail }) => detail,
        other => panic!("expected a header error, got {other:?}"),
    }
}

#[test]
fn a_header_cut_short_says_so() {
    let net = retroprop_models::mlp::<f32>(784, 16, 10, Init::HeUniform { seed: 1 }).unwrap();
    let header = header_of(&checkpoint::to_bytes::<f32>(&net).unwrap());
    let cut = &header[..header.len() / 2];
    let detail = header_detail(&file_with_header(checkpoint::FORMAT_VERSION, cut));
    assert!(detail.contains("ends early"), "{detail}");
}

#[test]
fn a_length_beyond_the_limit_says_the_header_is_too_large() {
    // the first field (the scalar's name) claims 2²¹ bytes, twice the limit: bincode's varint
    // marker 252, then a u32
    let mut header = vec![252];
    let claimed = 2 * checkpoint::MAX_HEADER_BYTES as u32;
    header.extend_from_slice(&claimed.to_le_bytes());
    let detail = header_detail(&file_with_header(checkpoint::FORMAT_VERSION, &header));
    assert!(detail.contains("larger than any"), "{detail}");
}

#[test]
fn an_unknown_layer_kind_of_version_1_says_the_file_may_be_newer() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-mlp-f32.ckpt");
    let mut header = header_of(&std::fs::read(path).unwrap());
    // scalar "f32" (length 3, 3 bytes), the node count, then the first node's variant index
    assert_eq!(&header[..4], &[3, b'f', b'3', b'2']);
    assert_eq!(header[5], 0, "the first node is the Sequential");
    header[5] = 200;
    let detail = header_detail(&file_with_header(1, &header));
    assert!(detail.contains("does not know"), "{detail}");
    // a malformation of another kind is called malformed, not unknown
    header[5] = 0;
    header[0] = 250;
    let detail = header_detail(&file_with_header(1, &header));
    assert!(!detail.contains("does not know"), "{detail}");
}

#[test]
fn nesting_exactly_as_deep_as_allowed_loads_and_one_more_is_refused() {
    let nested = |depth: usize| {
        let mut net = Sequential::<f32>::new(Shape::Flat(2))
            .push(Relu::new())
            .unwrap();
        for _ in 1..depth {
            net = Sequential::new(Shape::Flat(2)).push(net).unwrap();
        }
        net
    };
    let deepest = nested(checkpoint::MAX_DEPTH);
    let loaded = checkpoint::from_bytes::<f32>(&checkpoint::to_bytes(&deepest).unwrap()).unwrap();
    assert_eq!(loaded.spec(), deepest.spec());
    let too_deep = checkpoint::to_bytes(&nested(checkpoint::MAX_DEPTH + 1)).unwrap();
    match checkpoint::from_bytes::<f32>(&too_deep) {
        Err(CheckpointError::Header { detail }) => assert!(detail.contains("nesting"), "{detail}"),
        other => panic!("expected a header error, got {other:?}"),
    }
}

#[test]
fn a_file_cut_right_after_its_header_says_how_long_it_should_be() {
    let net = retroprop_models::mlp::<f32>(4, 3, 2, Init::HeUniform { seed: 1 }).unwrap();
    let bytes = checkpoint::to_bytes::<f32>(&net).unwrap();
    let header_end = 20 + header_of(&bytes).len();
    // the header and 8 more bytes (where the checksum would be): every value is missing
    let cut = &bytes[..header_end + 8];
    match checkpoint::from_bytes::<f32>(cut) {
        Err(CheckpointError::Truncated { needed, got }) => {
            assert_eq!((needed, got), (bytes.len() as u64, cut.len() as u64));
        }
        other => panic!("expected a truncation, got {other:?}"),
    }
    // cut inside the header: at least the header and the checksum are needed
    let cut = &bytes[..header_end - 3];
    match checkpoint::from_bytes::<f32>(cut) {
        Err(CheckpointError::Truncated { needed, got }) => {
            assert_eq!((needed, got), (header_end as u64 + 8, cut.len() as u64));
        }
        other => panic!("expected a truncation, got {other:?}"),
    }
}

/// The bytes of a file: `body`, then its checksum.
fn with_checksum(mut body: Vec<u8>) -> Vec<u8> {
    let checksum = fnv1a(&body);
    body.extend_from_slice(&checksum.to_le_bytes());
    body
}

#[test]
fn a_short_file_is_truncated_if_it_starts_like_a_checkpoint_and_foreign_otherwise() {
    // the prefix (magic, version, header length) and the checksum: 28 bytes at least
    for len in [1, 4, 8, 20, 27] {
        let mut file = checkpoint::MAGIC.to_vec();
        file.extend_from_slice(&checkpoint::FORMAT_VERSION.to_le_bytes());
        file.extend_from_slice(&[0; 16]);
        match checkpoint::from_bytes::<f32>(&file[..len]) {
            Err(CheckpointError::Truncated { needed, got }) => {
                assert_eq!((needed, got), (28, len as u64), "{len} bytes");
            }
            other => panic!("{len} bytes: expected a truncation, got {other:?}"),
        }
    }
    for foreign in [&b"XYZ"[..], b"RETROPRX", b"not a checkpoint at all"] {
        assert!(
            matches!(
                checkpoint::from_bytes::<f32>(foreign),
                Err(CheckpointError::BadMagic)
            ),
            "{foreign:?}"
        );
    }
}

#[test]
fn a_file_of_exactly_the_minimum_length_is_read_not_called_truncated() {
    // magic, version, an empty header, the checksum: 28 bytes, whole
    let mut body = checkpoint::MAGIC.to_vec();
    body.extend_from_slice(&checkpoint::FORMAT_VERSION.to_le_bytes());
    body.extend_from_slice(&0u64.to_le_bytes());
    let file = with_checksum(body);
    assert_eq!(file.len(), 28);
    let detail = header_detail(&file);
    assert!(detail.contains("ends early"), "{detail}");
}

#[test]
fn a_header_longer_than_the_file_is_a_size_error_with_both_numbers() {
    let mut body = checkpoint::MAGIC.to_vec();
    body.extend_from_slice(&checkpoint::FORMAT_VERSION.to_le_bytes());
    body.extend_from_slice(&30u64.to_le_bytes());
    body.extend_from_slice(&[7; 26]);
    match checkpoint::from_bytes::<f32>(&with_checksum(body)) {
        Err(CheckpointError::HeaderSize {
            declared,
            available,
        }) => assert_eq!((declared, available), (30, 26)),
        other => panic!("expected a header size error, got {other:?}"),
    }
}

#[test]
fn a_whole_file_with_a_flipped_value_byte_is_corrupted_not_truncated() {
    let net = retroprop_models::mlp::<f32>(4, 3, 2, Init::HeUniform { seed: 1 }).unwrap();
    let mut bytes = checkpoint::to_bytes::<f32>(&net).unwrap();
    let at = bytes.len() - 12;
    bytes[at] ^= 0x40;
    assert!(matches!(
        checkpoint::from_bytes::<f32>(&bytes),
        Err(CheckpointError::ChecksumMismatch { .. })
    ));
}

/// A layer whose description does not say its parameter's size (as a hand-written layer might
/// forget to): files of two sizes have the same architecture, and only the parameter entries
/// tell them apart.
struct Forgetful(retroprop_layers::Param<f32>);

impl Forgetful {
    fn new(n: usize) -> Self {
        let value = nalgebra::DMatrix::from_element(n, n, 0.5);
        Self(retroprop_layers::Param::new(
            "w",
            retroprop_layers::ParamKind::Weight,
            value,
        ))
    }
}

impl Layer<f32> for Forgetful {
    fn name(&self) -> &'static str {
        "test.Forgetful"
    }
    fn spec(&self) -> retroprop_layers::LayerSpec {
        retroprop_layers::LayerSpec::unit("test.Forgetful")
    }
    fn output_shape(&self, s: Shape) -> Result<Shape, retroprop_layers::LayerError> {
        Ok(s)
    }
    fn forward(
        &mut self,
        x: &nalgebra::DMatrix<f32>,
    ) -> Result<nalgebra::DMatrix<f32>, retroprop_layers::LayerError> {
        Ok(x.clone())
    }
    fn backward(
        &mut self,
        g: &nalgebra::DMatrix<f32>,
    ) -> Result<nalgebra::DMatrix<f32>, retroprop_layers::LayerError> {
        Ok(g.clone())
    }
    fn infer(
        &self,
        x: &nalgebra::DMatrix<f32>,
    ) -> Result<nalgebra::DMatrix<f32>, retroprop_layers::LayerError> {
        Ok(x.clone())
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &retroprop_layers::Param<f32>)) {
        f("w", &self.0);
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut retroprop_layers::Param<f32>)) {
        f("w", &mut self.0);
    }
}

#[test]
fn parameters_of_another_shape_are_an_architecture_mismatch_naming_both() {
    let small = Sequential::<f32>::new(Shape::Flat(2))
        .push(Forgetful::new(2))
        .unwrap();
    let bytes = checkpoint::to_bytes(&small).unwrap();
    let mut large = Sequential::<f32>::new(Shape::Flat(2))
        .push(Forgetful::new(3))
        .unwrap();
    match checkpoint::load_into_bytes(&mut large, &bytes) {
        Err(CheckpointError::ArchitectureMismatch { detail }) => {
            assert!(detail.contains("2×2") && detail.contains("3×3"), "{detail}");
        }
        other => panic!("expected an architecture mismatch, got {other:?}"),
    }
    // the same shape loads
    let mut same = Sequential::<f32>::new(Shape::Flat(2))
        .push(Forgetful::new(2))
        .unwrap();
    checkpoint::load_into_bytes(&mut same, &bytes).unwrap();
}
