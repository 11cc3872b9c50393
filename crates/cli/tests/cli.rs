//! The `retroprop` program as a user runs it.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::retroprop;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("retroprop-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Trains the smallest useful MLP (one epoch on 600 images, 8 hidden units) into `out` and
/// returns its checkpoint.
fn small_run(out: &Path) -> PathBuf {
    let good = retroprop(&[
        "train",
        "--epochs",
        "1",
        "--limit",
        "600",
        "--hidden",
        "8",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(good.status.success(), "{}", stderr(&good));
    out.join("model.ckpt")
}

#[test]
fn summary_of_the_homework_cnn_answers_question_3() {
    let out = retroprop(&["summary", "--model", "homework-cnn"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for needle in [
        "32×64×64",
        "32×32×32",
        "64×32×32",
        "18,432",
        "65,536 values",
    ] {
        assert!(text.contains(needle), "missing {needle}:\n{text}");
    }
    let mlp = stdout(&retroprop(&["summary"]));
    assert!(mlp.contains("203,530"), "{mlp}"); // n_θ = 256·784 + 256 + 10·256 + 10
}

#[test]
fn train_eval_predict_on_a_subset() {
    let dir = temp_dir("train");
    let out_dir = dir.to_str().unwrap();
    let out = retroprop(&[
        "train", "--limit", "3000", "--epochs", "2", "--json", "--out", out_dir,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // stdout is exactly one JSON document; progress and epoch lines went to stderr
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    let accuracy = doc["test_accuracy"].as_f64().unwrap();
    assert!(
        accuracy > 0.8,
        "accuracy {accuracy} on 500 test images after 3000 training images"
    );
    assert_eq!(doc["epochs"].as_array().unwrap().len(), 2);
    assert!(stderr(&out).contains("epoch  2/2"));
    for file in ["model.ckpt", "metrics.csv", "curves.svg"] {
        assert!(dir.join(file).is_file(), "{file} not written");
    }
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(
        std::fs::read_to_string(dir.join("curves.svg"))
            .unwrap()
            .starts_with("<svg")
    );

    // eval on the full test set runs from the checkpoint alone
    let ckpt = dir.join("model.ckpt");
    let eval = retroprop(&["eval", "--checkpoint", ckpt.to_str().unwrap(), "--json"]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    let ev: serde_json::Value = serde_json::from_str(&stdout(&eval)).unwrap();
    assert_eq!(ev["examples"], 10_000);
    assert!(ev["test_accuracy"].as_f64().unwrap() > 0.8);

    let predict = retroprop(&[
        "predict",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--index",
        "0",
    ]);
    assert!(predict.status.success(), "{}", stderr(&predict));
    let text = stdout(&predict);
    assert!(text.contains("test image #0: label 7"), "{text}");
    assert!(text.contains("██"), "the digit is drawn");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn full_batch_is_one_step_per_epoch_and_its_loss_decreases() {
    let dir = temp_dir("full");
    let out = retroprop(&[
        "train",
        "--full-batch",
        "--limit",
        "6000",
        "--epochs",
        "6",
        "--json",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["settings"]["batch"], serde_json::Value::Null);
    let losses: Vec<f64> = doc["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["train_loss"].as_f64().unwrap())
        .collect();
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn errors_say_what_is_wrong_and_exit_non_zero() {
    let missing = retroprop(&["train", "--data", "/no/such/mnist"]);
    assert!(!missing.status.success());
    let msg = stderr(&missing);
    assert!(
        msg.contains("/no/such/mnist") && msg.contains("--data"),
        "{msg}"
    );

    let bad_flag = retroprop(&["train", "--lr", "-1"]);
    assert_eq!(bad_flag.status.code(), Some(2));
    assert!(stderr(&bad_flag).contains("--lr"), "{}", stderr(&bad_flag));

    let bad_momentum = retroprop(&["train", "--momentum", "1.5"]);
    assert!(
        stderr(&bad_momentum).contains("[0, 1)"),
        "{}",
        stderr(&bad_momentum)
    );

    let corrupt = temp_dir("corrupt");
    std::fs::create_dir_all(&corrupt).unwrap();
    let file = corrupt.join("model.ckpt");
    std::fs::write(&file, b"RETROPRP but then nonsense").unwrap();
    let eval = retroprop(&["eval", "--checkpoint", file.to_str().unwrap()]);
    assert!(!eval.status.success());
    assert!(stderr(&eval).contains("model.ckpt"), "{}", stderr(&eval));
    std::fs::remove_dir_all(&corrupt).unwrap();

    let none = retroprop(&["predict", "--checkpoint", "/no/model.ckpt", "--index", "0"]);
    assert!(!none.status.success());
    assert!(Path::new(env!("CARGO_BIN_EXE_retroprop")).is_file());
}

#[test]
fn a_diverging_run_keeps_the_good_model_and_exits_non_zero() {
    let dir = temp_dir("diverge");
    let out_dir = dir.to_str().unwrap();
    let small = ["--limit", "1200", "--hidden", "16", "--out", out_dir];
    let good = retroprop(&[&["train", "--epochs", "1"][..], &small].concat());
    assert!(good.status.success(), "{}", stderr(&good));
    let ckpt = dir.join("model.ckpt");
    let before = std::fs::read(&ckpt).unwrap();
    // η = 10⁶ diverges in the first epoch: nothing is written over the good run
    let bad = retroprop(&[&["train", "--epochs", "2", "--lr", "1e6"][..], &small].concat());
    assert!(!bad.status.success(), "a diverged run must fail");
    let message = stderr(&bad);
    assert!(
        message.contains("diverged at epoch 1, step")
            && message.contains("--lr 1e6")
            && message.contains("nothing was written"),
        "{message}"
    );
    assert_eq!(
        std::fs::read(&ckpt).unwrap(),
        before,
        "the good model was overwritten"
    );
    // and the good model still evaluates
    let eval = retroprop(&["eval", "--checkpoint", ckpt.to_str().unwrap()]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    // a schedule that reaches ∞ is refused before training, naming the flags
    let schedule = retroprop(
        &[
            &[
                "train",
                "--epochs",
                "3",
                "--lr-gamma",
                "1e300",
                "--lr-step",
                "1",
            ][..],
            &small,
        ]
        .concat(),
    );
    assert!(!schedule.status.success());
    assert!(
        stderr(&schedule).contains("--lr-gamma"),
        "{}",
        stderr(&schedule)
    );
    assert!(
        !stdout(&schedule).contains("epoch  1/3"),
        "{}",
        stdout(&schedule)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn predict_with_a_huge_index_is_an_error_not_a_panic() {
    let dir = temp_dir("index");
    let ckpt = small_run(&dir);
    let out = retroprop(&[
        "predict",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--index",
        "18446744073709551615",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the test set has images 0 to 9999")
            && !stderr(&out).contains("panicked"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn what_would_not_fit_in_memory_is_refused_before_allocating() {
    let dir = temp_dir("memory");
    let out_dir = dir.to_str().unwrap();
    // 5 million hidden units: 4·10⁹ parameters, 47 GiB with gradients and momentum
    let started = std::time::Instant::now();
    let out = retroprop(&["train", "--hidden", "5000000", "--out", out_dir]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("--hidden 5000000")
            && message.contains("GiB")
            && message.contains("memory budget")
            && message.contains("choose a smaller --hidden"),
        "{message}"
    );
    // refused from the shapes, not after trying: well under a second
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // an absurd --hidden names the flag instead of printing usize::MAX
    let huge = retroprop(&["train", "--hidden", "100000000000000", "--out", out_dir]);
    assert!(
        stderr(&huge).contains("--hidden 100000000000000"),
        "{}",
        stderr(&huge)
    );
    assert!(
        !stderr(&huge).contains("18446744073709551615"),
        "{}",
        stderr(&huge)
    );
    // a batch too large for a small budget names --batch-size
    let batch = retroprop(&[
        "train",
        "--batch-size",
        "60000",
        "--memory-budget",
        "0.5",
        "--out",
        out_dir,
    ]);
    assert!(
        stderr(&batch).contains("--batch-size"),
        "{}",
        stderr(&batch)
    );
    // a model whose single example does not fit is refused by eval with the figure
    let wide = retroprop_models::Sequential::<f32>::new(retroprop_layers::Shape::image(1, 28, 28))
        .push(
            retroprop_layers::Conv2d::new(
                retroprop_layers::Conv2dConfig::new((1, 28, 28), 10_000, 1),
                retroprop_layers::Init::Zeros,
            )
            .unwrap(),
        )
        .unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("wide.ckpt");
    retroprop_models::checkpoint::save(&wide, &ckpt).unwrap();
    let eval = retroprop(&[
        "eval",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--memory-budget",
        "0.01",
    ]);
    assert!(!eval.status.success());
    assert!(
        stderr(&eval).contains("one example through this model") && stderr(&eval).contains("MiB"),
        "{}",
        stderr(&eval)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn eval_and_predict_need_only_the_test_files() {
    let dir = temp_dir("testonly");
    let out_dir = dir.join("run");
    let ckpt = small_run(&out_dir);
    // a data directory with the two t10k files only (and a broken training label file)
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    for f in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(shipped.join(f), data.join(f)).unwrap();
    }
    std::fs::write(data.join("train-labels-idx1-ubyte"), b"broken").unwrap();
    let eval = retroprop(&[
        "eval",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    let predict = retroprop(&[
        "predict",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--index",
        "3",
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(predict.status.success(), "{}", stderr(&predict));
    // training needs the training files, and says which one is missing or broken
    let train = retroprop(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(!train.status.success());
    assert!(stderr(&train).contains("train-"), "{}", stderr(&train));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flags_and_numbers_are_named_in_plain_words() {
    // a negative count names its flag (not "unexpected argument '-1'")
    let out = retroprop(&["train", "--epochs", "-1"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--epochs"), "{}", stderr(&out));
    let out = retroprop(&["predict", "--checkpoint", "x", "--index", "-3"]);
    assert!(stderr(&out).contains("--index"), "{}", stderr(&out));
    // a huge η is printed in scientific notation, not as 301 digits
    let dir = temp_dir("eta");
    let out = retroprop(&[
        "train",
        "--lr",
        "1e300",
        "--limit",
        "600",
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("η 1e300") && !text.contains("0000000000"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes an IDX file: big-endian magic and dimensions, then the bytes.
fn idx(path: &Path, magic: u32, dims: &[u32], data: &[u8]) {
    let mut bytes = magic.to_be_bytes().to_vec();
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend(data);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn an_empty_test_set_and_bad_files_are_explained_without_a_panic() {
    let dir = temp_dir("empty");
    let ckpt = small_run(&dir.join("run"));
    // t10k files holding no image: predict and eval say so (the debug build used to underflow)
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    idx(
        &data.join("t10k-images-idx3-ubyte"),
        0x803,
        &[0, 28, 28],
        &[],
    );
    idx(&data.join("t10k-labels-idx1-ubyte"), 0x801, &[0], &[]);
    for command in [&["predict", "--index", "0"][..], &["eval"][..]] {
        let mut args = command.to_vec();
        args.extend([
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ]);
        let out = retroprop(&args);
        assert!(!out.status.success());
        let text = stderr(&out);
        assert!(
            text.contains("holds no image") && !text.contains("panicked"),
            "{text}"
        );
    }
    // a directory given as a checkpoint: its path once
    let out = retroprop(&["eval", "--checkpoint", dir.to_str().unwrap()]);
    let text = stderr(&out);
    assert_eq!(text.matches(dir.to_str().unwrap()).count(), 1, "{text}");
    // a truncated checkpoint is called truncated
    let bytes = std::fs::read(&ckpt).unwrap();
    let cut = dir.join("cut.ckpt");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let text = stderr(&retroprop(&["eval", "--checkpoint", cut.to_str().unwrap()]));
    assert!(
        text.contains("truncated") && !text.contains("checksum"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn test_images_of_the_wrong_size_are_refused_before_training() {
    let dir = temp_dir("testsize");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    for f in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"] {
        std::fs::copy(shipped.join(f), data.join(f)).unwrap();
    }
    // two test images of 14×14 instead of 28×28
    idx(
        &data.join("t10k-images-idx3-ubyte"),
        0x803,
        &[2, 14, 14],
        &[0; 2 * 196],
    );
    idx(&data.join("t10k-labels-idx1-ubyte"), 0x801, &[2], &[3, 4]);
    let out = retroprop(&[
        "train",
        "--limit",
        "600",
        "--data",
        data.to_str().unwrap(),
        "--out",
        dir.join("run").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(text.contains("14×14") && text.contains("784"), "{text}");
    assert!(
        !stdout(&out).contains("epoch") && !text.contains("epoch  1"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
