//! `retroprop export` / `import`, and `eval` on either format, as a user runs them.

use std::path::PathBuf;

mod common;
use common::retroprop;

use common::ok;

fn accuracy(json: &str) -> f64 {
    let doc: serde_json::Value = serde_json::from_str(json).unwrap();
    doc["test_accuracy"].as_f64().unwrap()
}

fn torch_fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models/tests/fixtures/torch")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn a_pytorch_file_imports_and_a_checkpoint_exports_and_evaluates_the_same() {
    let dir = std::env::temp_dir().join(format!("retroprop-weights-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = |n: &str| dir.join(n).display().to_string();
    // PyTorch's MLP: named by the user, since PyTorch does not record the architecture
    let torch = torch_fixture("mlp-f32.safetensors");
    let out = retroprop(&["eval", "--checkpoint", &torch]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("retroprop import"));
    ok(&[
        "import",
        "--weights",
        &torch,
        "--model",
        "mlp",
        "--hidden",
        "32",
        "--out",
        &path("mlp.ckpt"),
    ]);
    let measured: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(torch_fixture("accuracy.json")).unwrap())
            .unwrap();
    let acc = accuracy(&ok(&["eval", "--checkpoint", &path("mlp.ckpt"), "--json"]));
    assert_eq!(
        (acc * 10_000.0).round() as u64,
        measured["mlp"].as_u64().unwrap()
    );
    // a wrong width is refused with the shapes
    let out = retroprop(&[
        "import",
        "--weights",
        &torch,
        "--model",
        "mlp",
        "--out",
        &path("bad.ckpt"),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("[32, 784]"));
    // export: eval reads the safetensors file by content, to the same accuracy
    ok(&[
        "export",
        "--checkpoint",
        &path("mlp.ckpt"),
        "--out",
        &path("mlp.weights"),
    ]);
    let again = accuracy(&ok(&[
        "eval",
        "--checkpoint",
        &path("mlp.weights"),
        "--json",
    ]));
    assert_eq!(again, acc);
    // and an export imports back without naming the model (the file records it)
    ok(&[
        "import",
        "--weights",
        &path("mlp.weights"),
        "--out",
        &path("back.ckpt"),
    ]);
    assert_eq!(
        std::fs::read(path("back.ckpt")).unwrap(),
        std::fs::read(path("mlp.ckpt")).unwrap(),
        "the round trip gives the same checkpoint, byte for byte"
    );
    // the normalisation a PyTorch model was trained behind goes into the first layer
    ok(&[
        "import",
        "--weights",
        &torch,
        "--model",
        "mlp",
        "--hidden",
        "32",
        "--standardize",
        "0.5,0.25",
        "--out",
        &path("other.ckpt"),
    ]);
    let other = retroprop_models::checkpoint::load::<f32>(path("other.ckpt")).unwrap();
    let mut buffers = Vec::new();
    retroprop_layers::Layer::visit_buffers(&other, &mut |p, b| {
        buffers.push((p.to_string(), b.value()[0]))
    });
    assert_eq!(
        buffers,
        [("0.mean".to_string(), 0.5), ("0.std".to_string(), 0.25)]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
