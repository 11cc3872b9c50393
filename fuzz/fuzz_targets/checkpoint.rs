//! The checkpoint loader on arbitrary bytes, as f32 and as f64. It must return a model or a
//! typed `CheckpointError` — never panic, never allocate from a size it has not checked, never
//! recurse on the file's nesting.
#![no_main]

use libfuzzer_sys::fuzz_target;
use retroprop_models::{Layer, MemoryEstimate, checkpoint};

fuzz_target!(|data: &[u8]| {
    if let Ok((model, training)) = checkpoint::from_bytes_with::<f32>(data) {
        // a loaded model is consistent: its estimate and its parameter count are computable,
        // and it saves to bytes that load again (the same architecture and values)
        let _ = MemoryEstimate::of(&model);
        let bytes =
            checkpoint::to_bytes_with(&model, training.as_ref()).expect("a loaded model saves");
        let (again, again_training) =
            checkpoint::from_bytes_with::<f32>(&bytes).expect("a saved model loads");
        assert_eq!(again.param_count(), model.param_count());
        assert_eq!(again_training, training);
    }
    let _ = checkpoint::from_bytes::<f64>(data);
});
