//! The safetensors import on arbitrary bytes: with the architecture from the file's metadata,
//! and into a network built here (as for a file written by PyTorch). It must return a model or
//! a typed `TensorsError` — never panic, never build a network larger than the file's values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use retroprop_layers::{Init, Layer};
use retroprop_models::safetensors as st;
use retroprop_models::{Standardization, mlp_classifier};

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = st::from_bytes::<f32>(data) {
        // a loaded model exports to bytes that load again, with the same values
        let bytes = st::to_bytes(&model).expect("a loaded model exports");
        let again = st::from_bytes::<f32>(&bytes).expect("an export loads");
        assert_eq!(again.param_count(), model.param_count());
    }
    let standardize = Some(Standardization { mean: 0.5, std: 0.25 });
    let mut net = mlp_classifier::<f64>(4, 3, 2, standardize, Init::Zeros).expect("a small MLP");
    let _ = st::load_into_bytes(&mut net, data);
});
