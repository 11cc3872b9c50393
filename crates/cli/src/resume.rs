//! `train --resume`: what a run directory holds to continue a run, and metrics.csv written and
//! read back.

use std::fmt::Write as _;
use std::path::Path;

use retroprop_models::{Sequential, checkpoint};
use retroprop_optim::OptimizerState;

use crate::train::{EpochRecord, RunSettings, TrainArgs};

/// What `--resume` reads from a run directory.
pub(crate) struct Resumed {
    pub(crate) run: RunSettings,
    pub(crate) net: Sequential<f32>,
    pub(crate) optimizer: OptimizerState<f32>,
    pub(crate) done: usize,
    pub(crate) records: Vec<EpochRecord>,
    /// The run's best.ckpt (with --val-split), kept unless a new epoch beats it.
    pub(crate) best: Option<Vec<u8>>,
}

impl Resumed {
    pub(crate) fn read(dir: &Path, args: &TrainArgs) -> Result<Self, String> {
        let ckpt = dir.join("model.ckpt");
        let (net, training) = checkpoint::load_training::<f32>(&ckpt).map_err(|e| {
            format!(
                "--resume {}: cannot read its model.ckpt: {e}",
                dir.display()
            )
        })?;
        let training = training.ok_or_else(|| {
            format!(
                "--resume {}: its model.ckpt holds no training state (it was written by a run that diverged, or by `retroprop import`): start a new run instead",
                dir.display()
            )
        })?;
        let mut run: RunSettings = serde_json::from_str(&training.settings).map_err(|e| {
            format!(
                "--resume {}: the run's settings in model.ckpt are not this program's ({e})",
                dir.display()
            )
        })?;
        let epochs = args.epochs.ok_or_else(|| {
            format!(
                "--resume {} continues a run of {} epochs: give --epochs, the total to reach (more than {})",
                dir.display(),
                training.epochs_done,
                training.epochs_done
            )
        })?;
        run.epochs = epochs as usize;
        let metrics = dir.join("metrics.csv");
        let text = std::fs::read_to_string(&metrics)
            .map_err(|e| format!("--resume: {}: {e}", metrics.display()))?;
        let records = parse_metrics(&text)
            .filter(|r| r.len() == training.epochs_done)
            .ok_or_else(|| {
                format!(
                    "--resume: {} does not hold the {} epochs its model.ckpt has done",
                    metrics.display(),
                    training.epochs_done
                )
            })?;
        let best = match std::fs::read(dir.join("best.ckpt")) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("--resume {}: best.ckpt: {e}", dir.display())),
        };
        Ok(Self {
            run,
            net,
            optimizer: training.optimizer,
            done: training.epochs_done,
            records,
            best,
        })
    }
}

/// The records of a metrics.csv written by [`metrics_csv`]; `None` if it is not one.
fn parse_metrics(text: &str) -> Option<Vec<EpochRecord>> {
    let mut lines = text.lines();
    lines
        .next()
        .filter(|h| h.starts_with("epoch,learning_rate,"))?;
    lines
        .map(|line| {
            let v: Vec<&str> = line.split(',').collect();
            let f = |k: usize| v.get(k)?.parse::<f64>().ok();
            // an empty validation column: no --val-split
            let g = |k: usize| match v.get(k) {
                Some(&"") | None => Some(None),
                Some(text) => text.parse::<f64>().ok().map(Some),
            };
            (v.len() == 8 || v.len() == 10).then_some(())?;
            Some(EpochRecord {
                epoch: v[0].parse().ok()?,
                learning_rate: f(1)?,
                train_loss: f(2)?,
                train_accuracy: f(3)?,
                test_loss: f(4)?,
                test_accuracy: f(5)?,
                train_seconds: f(6)?,
                eval_seconds: f(7)?,
                val_loss: g(8)?,
                val_accuracy: g(9)?,
            })
        })
        .collect()
}

pub(crate) fn metrics_csv(records: &[EpochRecord]) -> String {
    let mut csv = String::from(
        "epoch,learning_rate,train_loss,train_accuracy,test_loss,test_accuracy,train_seconds,eval_seconds,val_loss,val_accuracy\n",
    );
    for r in records {
        let _ = writeln!(
            csv,
            "{},{},{:.6},{:.6},{:.6},{:.6},{:.4},{:.4},{},{}",
            r.epoch,
            r.learning_rate,
            r.train_loss,
            r.train_accuracy,
            r.test_loss,
            r.test_accuracy,
            r.train_seconds,
            r.eval_seconds,
            r.val_loss.map_or(String::new(), |v| format!("{v:.6}")),
            r.val_accuracy.map_or(String::new(), |v| format!("{v:.6}")),
        );
    }
    csv
}
