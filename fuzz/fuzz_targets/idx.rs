//! The IDX parser on arbitrary bytes: raw, and after gzip detection. It must return `Ok` or a
//! typed error — never panic, never allocate from an unchecked header size.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use retroprop_data::idx::{IMAGES_MAGIC, LABELS_MAGIC, decompress, parse};

fuzz_target!(|data: &[u8]| {
    let file = Path::new("fuzz-input");
    for magic in [IMAGES_MAGIC, LABELS_MAGIC] {
        if let Ok(idx) = parse(data, magic, file) {
            // a successful parse is consistent with its header
            let declared: usize = idx.dims.iter().product();
            assert_eq!(declared, idx.data.len());
        }
    }
    if let Ok(raw) = decompress(data.to_vec(), file) {
        let _ = parse(&raw, IMAGES_MAGIC, file);
    }
});
