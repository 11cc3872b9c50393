//! What the PyTorch comparison tests share: the fixtures' directory and MNIST's test images.

use std::path::PathBuf;

use retroprop_data::{Images, Mnist};

/// A file of `tests/fixtures/torch`.
pub fn fixture(name: &str) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch");
    std::fs::read(dir.join(name)).unwrap()
}

/// MNIST's 10 000 test images, shipped in the repository.
pub fn test_images() -> Images {
    Mnist::load_test(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")).unwrap()
}
