//! Saving to a file named without a directory (the directory synced after the rename is then
//! the current one), and a training checkpoint read back whole. One test in this binary: it
//! changes the process's current directory.

use nalgebra::DMatrix;
use retroprop_layers::{Init, Layer};
use retroprop_models::checkpoint::{self, TrainingState};
use retroprop_models::mlp;
use retroprop_optim::{Momentum, Optimizer, Sgd};

#[test]
fn a_training_checkpoint_saved_under_a_bare_file_name_reads_back_whole() {
    let dir = std::env::temp_dir().join(format!("retroprop-bare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::env::set_current_dir(&dir).unwrap();

    let mut net = mlp::<f64>(3, 4, 2, Init::HeUniform { seed: 2 }).unwrap();
    let mut sgd = Sgd::new(0.1)
        .unwrap()
        .with_momentum(Momentum::Heavy { mu: 0.9 })
        .unwrap();
    let x = DMatrix::from_fn(3, 5, |i, j| (i + 2 * j) as f64 / 7.0 - 0.5);
    net.zero_grad();
    let y = net.forward(&x).unwrap();
    net.backward(&y.map(|v| v - 0.25)).unwrap();
    sgd.step(&mut net).unwrap();
    let state = TrainingState {
        optimizer: sgd.state(),
        epochs_done: 3,
        settings: r#"{"lr":0.1}"#.to_string(),
    };

    checkpoint::save_training(&net, &state, "run.ckpt").unwrap();
    let (loaded, training) = checkpoint::load_training::<f64>("run.ckpt").unwrap();
    assert_eq!(loaded.infer(&x).unwrap(), net.infer(&x).unwrap());
    let training = training.expect("the training state was saved");
    assert_eq!(training.epochs_done, 3);
    assert_eq!(training.settings, state.settings);
    assert_eq!(training.optimizer.steps, state.optimizer.steps);
    let values = |s: &TrainingState<f64>| -> Vec<f64> {
        s.optimizer
            .slots
            .iter()
            .flat_map(|s| s.values.clone())
            .collect()
    };
    assert_eq!(values(&training), values(&state));
    assert!(
        values(&state).iter().any(|&v| v != 0.0),
        "momentum was recorded"
    );
    // nothing but the checkpoint is left in the directory (no temporary file)
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["run.ckpt"]);
    std::env::set_current_dir(std::env::temp_dir()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
