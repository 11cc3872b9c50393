//! `retroprop train`.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use retroprop_data::Images;
use retroprop_data::{Augmentation, mnist};
use retroprop_layers::Init;
use retroprop_losses::CrossEntropy;
use std::sync::Arc;

use retroprop_models::collective::{DataParallel, Local, evaluate_sharded};
use retroprop_models::{
    BatchSize, Clip, EarlyStopping, Evaluation, Event, FitConfig, MemoryEstimate, ModelError,
    Sequential, Summary, TrainingState, Verdict, checkpoint, evaluate, fit,
};

use crate::networks::{mnist_cnn, mnist_mlp, mnist_resnet};
use retroprop_optim::{Constant, Cosine, Exponential, OneCycle, Optimizer, Schedule, StepDecay};
use serde::Serialize;

use crate::budget::Budget;
use crate::optimizers::OptimizerKind;
use crate::resume::{Resumed, metrics_csv};

mod args;

use crate::rundir::RunDir;
use crate::{load_data, plot};
pub use args::{ModelKind, ScheduleKind, TrainArgs};

/// Every setting of a run, after defaults.
#[derive(Clone, Debug, Serialize)]
struct Settings {
    /// What a resumed run must repeat (stored in the checkpoint).
    #[serde(flatten)]
    run: RunSettings,
    threads: usize,
    train_images: usize,
    val_images: usize,
    test_images: usize,
}

/// The settings that decide a run's result: saved in its checkpoint, so `--resume` continues
/// with them (the thread count is not among them: the bits do not depend on it).
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub(crate) struct RunSettings {
    pub(crate) model: ModelKind,
    #[serde(default)]
    pub(crate) optimizer: OptimizerKind,
    #[serde(default)]
    pub(crate) clip_norm: Option<f64>,
    pub(crate) epochs: usize,
    pub(crate) batch: Option<usize>,
    pub(crate) full_batch: bool,
    pub(crate) lr: f64,
    pub(crate) momentum: f64,
    pub(crate) weight_decay: f64,
    pub(crate) lr_step: usize,
    pub(crate) lr_gamma: f64,
    #[serde(default)]
    pub(crate) schedule: ScheduleKind,
    #[serde(default)]
    pub(crate) warmup: usize,
    pub(crate) hidden: usize,
    pub(crate) seed: u64,
    pub(crate) limit: Option<u64>,
    #[serde(default)]
    pub(crate) augment: bool,
    /// Chunked data-parallel gradients (a run trained with --distributed).
    #[serde(default)]
    pub(crate) reduce: Option<crate::distributed::Reduce>,
    #[serde(default)]
    pub(crate) val_split: Option<f64>,
    #[serde(default)]
    pub(crate) patience: Option<usize>,
}

/// One line of metrics.csv.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct EpochRecord {
    pub(crate) epoch: usize,
    pub(crate) learning_rate: f64,
    pub(crate) train_loss: f64,
    pub(crate) train_accuracy: f64,
    pub(crate) test_loss: f64,
    pub(crate) test_accuracy: f64,
    pub(crate) train_seconds: f64,
    pub(crate) eval_seconds: f64,
    /// On the validation set held out by --val-split.
    pub(crate) val_loss: Option<f64>,
    pub(crate) val_accuracy: Option<f64>,
}

/// `YYYYMMDD-HHMMSS` in UTC, without a date library (Howard Hinnant's civil-from-days).
fn timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn output_dir(args: &TrainArgs) -> Result<PathBuf, String> {
    let dir = match &args.out {
        Some(d) => d.clone(),
        None => {
            let base = PathBuf::from("runs").join(format!("{}-{}", args.model.name(), timestamp()));
            let mut dir = base.clone();
            let mut k = 1;
            while dir.exists() {
                k += 1;
                dir = PathBuf::from(format!("{}-{k}", base.display()));
            }
            dir
        }
    };
    Ok(dir)
}

/// A hyperparameter for people: plain decimals between 10⁻⁴ and 10⁶ (`0.05`), scientific
/// notation beyond (`5e-5`; `1e300`, not a 301-digit number).
fn number(v: f64) -> String {
    if v == 0.0 || (1e-4..1e6).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// Prints to stderr when stdout carries JSON, to stdout otherwise (nothing on the quiet ranks
/// of a distributed run).
fn say(json: bool, line: &str) {
    if crate::distributed::quiet() {
        return;
    }
    if json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

pub fn run(args: TrainArgs) -> Result<(), String> {
    // first: the other ranks become quiet before anything is printed
    let collective = if args.distributed {
        Some(crate::distributed::world()?)
    } else {
        None
    };
    let rank = collective.as_ref().map_or(0, |c| c.rank());
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads as usize)
            .build_global()
            .map_err(|e| format!("--threads {threads}: {e}"))?;
    }
    let resumed = match &args.resume {
        Some(dir) => Some(Resumed::read(dir, &args)?),
        None => None,
    };
    let run = match &resumed {
        Some(r) => r.run.clone(),
        None => RunSettings::from_args(&args),
    };
    let mut mnist = load_data(args.data.clone())?;
    if let Some(n) = run.limit {
        let n = n as usize;
        mnist.train = mnist.train.take(n);
        mnist.test = mnist.test.take((n / 6).max(1));
    }
    let val = match run.val_split {
        Some(fraction) => Some(hold_out(&mut mnist.train, fraction, run.seed)?),
        None => None,
    };
    let settings = Settings {
        run,
        threads: rayon::current_num_threads(),
        train_images: mnist.train.len(),
        val_images: val.as_ref().map_or(0, Images::len),
        test_images: mnist.test.len(),
    };
    let budget = Budget::new(args.memory_budget);
    if settings.run.model == ModelKind::Mlp && args.resume.is_none() {
        // checked before the model is built: its parameters alone could exhaust memory
        let h = settings.run.hidden;
        let params = h
            .checked_mul(784 + 1)
            .and_then(|p| p.checked_add(h.checked_mul(10)?))
            .and_then(|p| p.checked_add(10))
            .unwrap_or(usize::MAX);
        budget.check(
            params.saturating_mul(3 * 4),
            &format!("--hidden {h}: the MLP's {params} parameters (values, gradients, momentum)"),
            "choose a smaller --hidden",
        )?;
    }
    let (mut net, mut records, done, optimizer_state, best) = match resumed {
        Some(r) => (r.net, r.records, r.done, Some(r.optimizer), r.best),
        None => {
            let seed = settings.run.seed;
            let net = match settings.run.model {
                ModelKind::Mlp => {
                    mnist_mlp::<f32>(settings.run.hidden, Init::XavierUniform { seed })
                }
                ModelKind::Cnn => mnist_cnn::<f32>(Init::HeUniform { seed }),
                ModelKind::Resnet => mnist_resnet::<f32>(Init::HeNormal { seed }),
            }
            .map_err(|e| e.to_string())?;
            (net, Vec::new(), 0, None, None)
        }
    };
    // the test set is checked now, not after the first epoch
    crate::check_image_size(
        &net,
        &mnist.test,
        &format!("the {} model", settings.run.model.name()),
    )?;
    let memory = MemoryEstimate::of(&net);
    let batch = settings.run.batch.unwrap_or(memory.training_chunk());
    let training = match settings.run.batch {
        Some(batch) => memory.training_bytes(batch),
        None => memory.full_batch_training_bytes(),
    };
    budget.check(
        training.max(memory.inference_bytes(memory.inference_chunk())),
        &format!(
            "training {} with batches of {batch}",
            settings.run.model.name()
        ),
        "choose a smaller --batch-size (or --hidden)",
    )?;
    // locked before training, so a second run on the same --out is refused at once; only
    // rank 0 of a distributed run writes it
    let out = match &args.resume {
        Some(dir) => dir.clone(),
        None => output_dir(&args)?,
    };
    let run_dir = if rank == 0 {
        Some(RunDir::open(&out)?)
    } else {
        None
    };
    let json = args.json;
    if !json && !crate::distributed::quiet() {
        println!("{}\n", Summary::of(&net));
    }
    say(
        json,
        &format!(
            "{} {} on {} images ({} test), {} epochs, {}, {:?}, η {}, momentum {}, λ {}, {} threads",
            if done > 0 {
                format!("resuming after epoch {done}:")
            } else {
                "training".to_string()
            },
            settings.run.model.name(),
            settings.train_images,
            settings.test_images,
            settings.run.epochs,
            settings
                .run
                .batch
                .map_or("full batch".to_string(), |b| format!("batch {b}")),
            settings.run.optimizer,
            number(settings.run.lr),
            number(settings.run.momentum),
            number(settings.run.weight_decay),
            settings.threads
        ),
    );

    let mut optimizer = settings
        .run
        .optimizer
        .build(
            settings.run.lr,
            settings.run.momentum,
            settings.run.weight_decay,
        )
        .map_err(|e| e.to_string())?;
    if let Some(state) = optimizer_state {
        optimizer.restore(state).map_err(|e| e.to_string())?;
    }
    let run = &settings.run;
    let schedule: Box<dyn Schedule> = match run.schedule {
        ScheduleKind::Step if run.lr_step > 0 => Box::new(StepDecay {
            step: run.lr_step,
            gamma: run.lr_gamma,
        }),
        ScheduleKind::Step => Box::new(Constant),
        ScheduleKind::Exponential => Box::new(Exponential {
            gamma: run.lr_gamma,
        }),
        ScheduleKind::Cosine => Box::new(Cosine {
            epochs: run.epochs,
            warmup: run.warmup,
            min_lr: 0.0,
        }),
        ScheduleKind::Onecycle => Box::new(OneCycle::new(run.epochs)),
    };
    let config = FitConfig {
        epochs: settings.run.epochs,
        done,
        batch: settings.run.batch.map_or(BatchSize::Full, BatchSize::Mini),
        seed: settings.run.seed,
        schedule,
        clip: settings.run.clip_norm.map_or(Clip::None, Clip::Norm),
        parallel: settings.run.reduce.map(|reduce| DataParallel {
            collective: collective.clone().unwrap_or_else(|| Arc::new(Local)),
            mode: reduce.mode(),
        }),
        augment: if settings.run.augment {
            Some(Augmentation::new(mnist::IMAGE, 2, 10.0).map_err(|e| e.to_string())?)
        } else {
            None
        },
    };
    let mut validation = match &val {
        Some(set) => {
            // without --patience the best model is still kept; training never stops early
            let patience = settings.run.patience.unwrap_or(usize::MAX);
            let mut watch = EarlyStopping::new(patience, 0.0).map_err(|e| e.to_string())?;
            for r in &records {
                if let Some(v) = r.val_loss {
                    watch.update(r.epoch, v);
                }
            }
            Some(Validation {
                set,
                watch,
                best_bytes: best,
            })
        }
        None => None,
    };
    let (new_records, diverged) = match train_loop(
        &mut net,
        &mnist.train,
        &mnist.test,
        validation.as_mut(),
        optimizer.as_mut(),
        &config,
        &settings,
        json,
    ) {
        Ok(records) => (records, None),
        Err(Stop::Diverged { records, error }) => (records, Some(error)),
        Err(Stop::Failed(error)) => return Err(flag_hint(&error, &settings)),
        Err(Stop::Message(message)) => return Err(message),
    };
    if let Some(error) = &diverged
        && new_records.is_empty()
    {
        return Err(format!(
            "{}\nnothing was written: {} keeps what it held before",
            flag_hint(error, &settings),
            out.display()
        ));
    }

    let started = Instant::now();
    let final_eval = evaluate_on(&net, &mnist.test, &config).map_err(|e| e.to_string())?;
    let ckpt = out.join("model.ckpt");
    records.extend(new_records);
    // a diverged run keeps its last good model, but not an optimizer state to resume from
    let training = match &diverged {
        None => Some(TrainingState {
            optimizer: optimizer.state(),
            epochs_done: settings.run.epochs,
            settings: serde_json::to_string(&settings.run).map_err(|e| e.to_string())?,
        }),
        Some(_) => None,
    };
    let model_bytes =
        checkpoint::to_bytes_with(&net, training.as_ref()).map_err(|e| e.to_string())?;
    let col = |f: fn(&EpochRecord) -> f64| records.iter().map(f).collect::<Vec<f64>>();
    let curves = plot::curves(
        &col(|r| r.train_loss),
        &col(|r| r.test_loss),
        &col(|r| r.train_accuracy),
        &col(|r| r.test_accuracy),
    );
    let metrics = metrics_csv(&records);
    let mut files: Vec<(&str, &[u8])> = vec![
        ("model.ckpt", &model_bytes),
        ("metrics.csv", metrics.as_bytes()),
        ("curves.svg", curves.as_bytes()),
    ];
    let best = validation
        .as_ref()
        .and_then(|v| Some((v.watch.best()?, v.best_bytes.as_ref()?)));
    if let Some((_, bytes)) = best {
        files.push(("best.ckpt", bytes));
    }
    // the files replace the previous run together, or not at all
    match &run_dir {
        Some(dir) => dir.commit(&files)?,
        // the other ranks of a distributed run hold the same model: rank 0 wrote it
        None => return Ok(()),
    }
    let train_seconds: f64 = records.iter().map(|r| r.train_seconds).sum();
    if let Some(error) = &diverged {
        return Err(format!(
            "{}\nwrote the model of epoch {} (test accuracy {:.2}%), its metrics.csv and curves.svg to {}",
            flag_hint(error, &settings),
            records.len(),
            100.0 * final_eval.accuracy,
            out.display()
        ));
    }
    if json {
        let doc = serde_json::json!({
            "settings": settings,
            "test_accuracy": final_eval.accuracy,
            "test_loss": final_eval.loss,
            "train_seconds": train_seconds,
            "epochs": records,
            "confusion": final_eval.confusion,
            "checkpoint": ckpt,
            "best": best.map(|((epoch, val_loss), _)| serde_json::json!({
                "epoch": epoch,
                "val_loss": val_loss,
                "checkpoint": out.join("best.ckpt"),
            })),
            "stopped_early": records.len() < settings.run.epochs,
            "out": out,
        });
        println!("{doc}");
    } else {
        println!(
            "\ntest accuracy {:.2}% (loss {:.4}) after {} epochs; {:.2} s of training\n\nconfusion matrix (rows: true digit, columns: predicted)\n{}\n\nwrote {}, metrics.csv and curves.svg ({:.1} s)",
            100.0 * final_eval.accuracy,
            final_eval.loss,
            records.len(),
            train_seconds,
            final_eval.confusion,
            ckpt.display(),
            started.elapsed().as_secs_f64()
        );
        if let Some(((epoch, val_loss), _)) = best {
            println!(
                "best validation loss {val_loss:.4} at epoch {epoch}: {}",
                out.join("best.ckpt").display()
            );
        }
    }
    Ok(())
}

/// The validation set of --val-split, the early-stopping watch and the best model's bytes.
struct Validation<'a> {
    set: &'a Images,
    watch: EarlyStopping,
    best_bytes: Option<Vec<u8>>,
}

/// Holds out `fraction` of `train` (at least one image, at most all but one), chosen by a
/// seeded shuffle.
fn hold_out(train: &mut Images, fraction: f64, seed: u64) -> Result<Images, String> {
    let n = train.len();
    let held = ((n as f64 * fraction).round() as usize).max(1);
    if held >= n {
        return Err(format!(
            "--val-split {fraction} of {n} training images leaves none to train on: choose a smaller fraction"
        ));
    }
    Ok(train.split_validation(held, seed ^ 0x7A11_DA7E))
}

/// Why training stopped before its last epoch.
enum Stop {
    /// `fit` found a non-finite loss or parameter; the model holds its last good epoch, whose
    /// records are kept.
    Diverged {
        records: Vec<EpochRecord>,
        error: ModelError,
    },
    /// Anything else the library reports.
    Failed(ModelError),
    /// A failure of this program's own.
    Message(String),
}

/// The library's message, with the flags of this program that change what went wrong.
fn flag_hint(error: &ModelError, settings: &Settings) -> String {
    match error {
        ModelError::Diverged { .. } => format!(
            "{error} (here --lr {:e}, --weight-decay {:e})",
            settings.run.lr, settings.run.weight_decay
        ),
        ModelError::Schedule { .. } => format!(
            "{error} (here --lr-gamma {:e} every --lr-step {} epochs)",
            settings.run.lr_gamma, settings.run.lr_step
        ),
        other => other.to_string(),
    }
}

/// Evaluates on a whole set, shared among the ranks of a distributed run.
fn evaluate_on(
    model: &Sequential<f32>,
    set: &Images,
    config: &FitConfig,
) -> Result<Evaluation, ModelError> {
    let loss = CrossEntropy::default();
    match &config.parallel {
        Some(p) => evaluate_sharded(model, set, &loss, p.collective.as_ref()),
        None => evaluate(model, set, &loss),
    }
}

/// Runs `fit` with a progress bar per epoch and a test evaluation after each epoch.
#[allow(clippy::too_many_arguments)]
fn train_loop(
    net: &mut Sequential<f32>,
    train: &Images,
    test: &Images,
    mut validation: Option<&mut Validation<'_>>,
    optimizer: &mut dyn Optimizer<f32>,
    config: &FitConfig,
    settings: &Settings,
    json: bool,
) -> Result<Vec<EpochRecord>, Stop> {
    let loss = CrossEntropy::default();
    let style = ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos:>6}/{len:6} {msg}")
        .expect("a valid template")
        .progress_chars("=> ");
    let mut bar: Option<ProgressBar> = None;
    let mut epoch_started = Instant::now();
    let mut records = Vec::new();
    let mut failure: Option<ModelError> = None;
    let mut unsaved: Option<String> = None;
    let fitted = fit(net, train, &loss, optimizer, config, |event, model| {
        match event {
            Event::Step {
                epoch,
                seen,
                total,
                loss,
                accuracy,
                ..
            } => {
                let b = bar.get_or_insert_with(|| {
                    epoch_started = Instant::now();
                    let b = ProgressBar::new(*total as u64).with_style(style.clone());
                    b.set_prefix(format!("epoch {epoch}/{}", settings.run.epochs));
                    b
                });
                let rate = *seen as f64 / epoch_started.elapsed().as_secs_f64().max(1e-9);
                b.set_position(*seen as u64);
                b.set_message(format!(
                    "loss {loss:.4}  acc {:.2}%  {rate:.0} ex/s",
                    100.0 * accuracy
                ));
            }
            Event::Epoch(stats) => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                let t = Instant::now();
                let ev: Evaluation = match evaluate_on(model, test, config) {
                    Ok(ev) => ev,
                    Err(e) => {
                        failure = Some(e);
                        return ControlFlow::Break(());
                    }
                };
                let mut verdict = None;
                let val = match validation.as_deref_mut() {
                    Some(v) => match evaluate_on(model, v.set, config) {
                        Ok(val) => {
                            let seen = v.watch.update(stats.epoch, val.loss);
                            if seen == Verdict::Improved {
                                match checkpoint::to_bytes(model) {
                                    Ok(bytes) => v.best_bytes = Some(bytes),
                                    Err(e) => {
                                        unsaved =
                                            Some(format!("cannot encode the best model: {e}"));
                                        return ControlFlow::Break(());
                                    }
                                }
                            }
                            verdict = Some(seen);
                            Some(val)
                        }
                        Err(e) => {
                            failure = Some(e);
                            return ControlFlow::Break(());
                        }
                    },
                    None => None,
                };
                let record = EpochRecord {
                    epoch: stats.epoch,
                    learning_rate: stats.learning_rate,
                    train_loss: stats.train_loss,
                    train_accuracy: stats.train_accuracy,
                    test_loss: ev.loss,
                    test_accuracy: ev.accuracy,
                    train_seconds: stats.seconds,
                    eval_seconds: t.elapsed().as_secs_f64(),
                    val_loss: val.as_ref().map(|v| v.loss),
                    val_accuracy: val.as_ref().map(|v| v.accuracy),
                };
                let val_text = val.as_ref().map_or(String::new(), |v| {
                    format!(" | val loss {:.4} acc {:.2}%", v.loss, 100.0 * v.accuracy)
                });
                say(
                    json,
                    &format!(
                        "epoch {:>2}/{}: train loss {:.4} acc {:.2}%{val_text} | test loss {:.4} acc {:.2}% | {:.2} s ({:.0} images/s)",
                        record.epoch,
                        settings.run.epochs,
                        record.train_loss,
                        100.0 * record.train_accuracy,
                        record.test_loss,
                        100.0 * record.test_accuracy,
                        record.train_seconds,
                        settings.train_images as f64 / record.train_seconds.max(1e-9)
                    ),
                );
                records.push(record);
                if verdict == Some(Verdict::Stop) {
                    let patience = settings.run.patience.unwrap_or(0);
                    say(
                        json,
                        &format!(
                            "early stop: the validation loss has not improved for {patience} epochs"
                        ),
                    );
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    });
    if let Some(b) = bar.take() {
        b.finish_and_clear();
    }
    if let Some(message) = unsaved {
        return Err(Stop::Message(message));
    }
    match (fitted, failure) {
        (_, Some(e)) => Err(Stop::Failed(e)),
        (Ok(_), None) => Ok(records),
        (Err(error @ ModelError::Diverged { .. }), None) => Err(Stop::Diverged { records, error }),
        (Err(e), None) => Err(Stop::Failed(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_beyond_a_million_or_below_a_ten_thousandth_are_scientific() {
        assert_eq!(number(0.05), "0.05");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(1e300), "1e300");
        assert_eq!(number(2.5e-7), "2.5e-7");
        assert_eq!(number(0.00005), "5e-5");
        assert_eq!(number(0.0005), "0.0005");
    }

    #[test]
    fn timestamp_has_the_expected_shape() {
        let t = timestamp();
        assert_eq!(t.len(), 15);
        assert_eq!(&t[8..9], "-");
        assert!(t[..4].parse::<u32>().unwrap() >= 2024);
    }
}
