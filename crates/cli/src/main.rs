//! `retroprop`: train the homework's MLP (or a small CNN) on MNIST, evaluate a checkpoint, print
//! a network's summary, or classify one test image.
//!
//! ```text
//! retroprop train [--model mlp|cnn|resnet] [--epochs N] [--batch-size N | --full-batch] [--lr η] …
//! retroprop eval --checkpoint FILE [--data DIR]
//! retroprop summary [--model mlp|cnn|resnet|homework-cnn]
//! retroprop predict --checkpoint FILE --index N [--data DIR]
//! retroprop export --checkpoint FILE --out FILE.safetensors
//! retroprop import --weights FILE.safetensors [--model mlp|cnn|resnet | --arch FILE] --out FILE
//! retroprop explain mlp|binary|cnn|conv1d [--json] …
//! retroprop check ANSWERS.json
//! ```
//!
//! `eval` and `predict` take a checkpoint or a safetensors export, told apart by content.

mod budget;
mod check;
mod distributed;
mod explain;
mod networks;
mod optimizers;
mod plot;
mod resume;
mod rundir;
mod train;
mod weights;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use retroprop_data::Mnist;
use retroprop_layers::Init;
use retroprop_losses::CrossEntropy;
use retroprop_models::{Summary, evaluate, homework_cnn};

use crate::networks::{mnist_cnn, mnist_mlp};

/// Train, inspect and run the networks of the retroprop homework on MNIST.
#[derive(Parser, Debug)]
#[command(name = "retroprop", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a network on MNIST and write the checkpoint, metrics.csv and curves.svg.
    Train(train::TrainArgs),
    /// Test accuracy, loss and confusion matrix of a saved model.
    Eval {
        /// The checkpoint written by `retroprop train` (or a safetensors export).
        #[arg(long)]
        checkpoint: PathBuf,
        /// Directory with the four MNIST files [default: the shipped data/mnist].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Memory evaluation may use, in GiB [default: half of physical memory].
        #[arg(long, value_parser = budget::parse_gib)]
        memory_budget: Option<f64>,
    },
    /// The layer table: output shapes and parameter counts.
    Summary {
        /// Which network.
        #[arg(long, value_enum, default_value_t = SummaryModel::Mlp)]
        model: SummaryModel,
        /// Hidden units of the MLP (d_h).
        #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..), allow_negative_numbers = true)]
        hidden: u64,
    },
    /// Write a model as safetensors, in PyTorch's names and layouts.
    Export(weights::ExportArgs),
    /// Read a safetensors file (from PyTorch or `export`) into a checkpoint.
    Import(weights::ImportArgs),
    /// Every quantity of the homework on a small instance, with its formula and value.
    Explain(explain::ExplainArgs),
    /// Grade a student's answers (the schema of `explain --json`) and name each mistake;
    /// exits with 1 if any answer is wrong.
    Check(check::CheckArgs),
    /// Classify one test image: the digit, its probabilities, and the image.
    Predict {
        /// The checkpoint written by `retroprop train` (or a safetensors export).
        #[arg(long)]
        checkpoint: PathBuf,
        /// Index of the test image (0–9999).
        #[arg(long, allow_negative_numbers = true)]
        index: usize,
        /// Directory with the four MNIST files [default: the shipped data/mnist].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Memory prediction may use, in GiB [default: half of physical memory].
        #[arg(long, value_parser = budget::parse_gib)]
        memory_budget: Option<f64>,
    },
}

/// The networks `summary` can show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SummaryModel {
    /// The MLP of part 2 on MNIST: 784 → d_h softplus → 10.
    Mlp,
    /// The small MNIST CNN.
    Cnn,
    /// The residual MNIST CNN (conv–BN–ReLU, residual blocks, global average pooling).
    Resnet,
    /// The CNN of question 3: 3×128×128 → conv → pool → conv.
    HomeworkCnn,
}

/// The shipped MNIST: `data/mnist` under the current directory if it exists, else the copy in
/// the source tree this program was built from.
fn default_data() -> PathBuf {
    let local = PathBuf::from("data/mnist");
    if local.is_dir() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
}

fn load_data(dir: Option<PathBuf>) -> Result<Mnist, String> {
    Mnist::load(dir.unwrap_or_else(default_data)).map_err(|e| e.to_string())
}

/// The test split only: `eval` and `predict` need no training file.
fn load_test_data(dir: Option<PathBuf>) -> Result<retroprop_data::Images, String> {
    Mnist::load_test(dir.unwrap_or_else(default_data)).map_err(|e| e.to_string())
}

/// Refuses test images of another size than the model takes, naming both.
fn check_image_size(
    model: &retroprop_models::Sequential<f32>,
    images: &retroprop_data::Images,
    model_name: &str,
) -> Result<(), String> {
    let (rows, cols) = images.shape();
    let takes = model.input_shape();
    if rows * cols != takes.len() {
        return Err(format!(
            "the test images are {rows}×{cols} = {} values, but {model_name} takes {takes} = {} values",
            rows * cols,
            takes.len()
        ));
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train::run(args),
        Command::Eval {
            checkpoint,
            data,
            json,
            memory_budget,
        } => eval(&checkpoint, data, json, &budget::Budget::new(memory_budget)),
        Command::Summary { model, hidden } => summary(model, hidden as usize),
        Command::Export(args) => weights::export(&args),
        Command::Import(args) => weights::import(&args),
        Command::Explain(args) => explain::run(args),
        Command::Check(args) => match check::run(&args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::from(1),
            Err(e) => {
                // 2, not 1: a teacher's script tells an unreadable file from wrong answers
                eprintln!("retroprop: error: {e}");
                return ExitCode::from(2);
            }
        },
        Command::Predict {
            checkpoint,
            index,
            data,
            memory_budget,
        } => predict(
            &checkpoint,
            index,
            data,
            &budget::Budget::new(memory_budget),
        ),
    };
    match result {
        Ok(()) => {
            distributed::finish();
            ExitCode::SUCCESS
        }
        Err(message) => {
            distributed::fail(&message);
            eprintln!("retroprop: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Loads a checkpoint for inference: refused if its parameters are not finite or if one
/// example's activations would not fit in the budget (evaluation then runs in chunks that do).
fn load_model(
    path: &Path,
    budget: &budget::Budget,
) -> Result<retroprop_models::Sequential<f32>, String> {
    let model = weights::load_any(path)?;
    let memory = retroprop_models::MemoryEstimate::of(&model);
    budget.check(
        memory.inference_bytes(1),
        &format!("{}: one example through this model", path.display()),
        "this model is too large for this machine",
    )?;
    if let Some((param, index, value)) = model.first_non_finite_param() {
        return Err(format!(
            "{}: parameter {param}[{index}] is {value}: this model cannot predict anything (it was saved by a run that diverged); train it again with a lower --lr or --weight-decay",
            path.display()
        ));
    }
    Ok(model)
}

fn eval(
    path: &Path,
    data: Option<PathBuf>,
    json: bool,
    budget: &budget::Budget,
) -> Result<(), String> {
    let model = load_model(path, budget)?;
    let test = load_test_data(data)?;
    check_image_size(&model, &test, &path.display().to_string())?;
    let ev = evaluate(&model, &test, &CrossEntropy::default()).map_err(|e| e.to_string())?;
    if json {
        let doc = serde_json::json!({
            "checkpoint": path,
            "test_loss": ev.loss,
            "test_accuracy": ev.accuracy,
            "examples": ev.examples,
            "confusion": ev.confusion,
        });
        println!("{doc}");
    } else {
        println!("{}", Summary::of(&model));
        println!(
            "\ntest: {} images, loss {:.4}, accuracy {:.2}%\n\nconfusion matrix (rows: true digit, columns: predicted)\n{}",
            ev.examples,
            ev.loss,
            100.0 * ev.accuracy,
            ev.confusion
        );
    }
    Ok(())
}

fn summary(model: SummaryModel, hidden: usize) -> Result<(), String> {
    let net = match model {
        SummaryModel::Mlp => mnist_mlp::<f32>(hidden, Init::Zeros),
        SummaryModel::Cnn => mnist_cnn::<f32>(Init::Zeros),
        SummaryModel::Resnet => networks::mnist_resnet::<f32>(Init::Zeros),
        SummaryModel::HomeworkCnn => homework_cnn::<f32>(Init::Zeros),
    }
    .map_err(|e| e.to_string())?;
    println!("{}", Summary::of(&net));
    Ok(())
}

/// Grey levels from light to dark, two characters per pixel so the digit keeps its aspect.
const SHADES: [&str; 5] = ["  ", "░░", "▒▒", "▓▓", "██"];

fn predict(
    path: &Path,
    index: usize,
    data: Option<PathBuf>,
    budget: &budget::Budget,
) -> Result<(), String> {
    let model = load_model(path, budget)?;
    let test = &load_test_data(data)?;
    check_image_size(&model, test, &path.display().to_string())?;
    let (Some(pixels), Some(x), Some(label)) = (
        test.image(index),
        test.column::<f32>(index),
        test.label(index),
    ) else {
        return Err(match test.len() {
            0 => "the test set is empty: there is no image to predict".to_string(),
            len => format!("--index {index}: the test set has images 0 to {}", len - 1),
        });
    };
    let p = model.predict_proba(&x).map_err(|e| e.to_string())?;
    let predicted = p.column(0).argmax().0;
    let (_, cols) = test.shape();
    for row in pixels.chunks(cols) {
        let line: String = row
            .iter()
            .map(|&b| SHADES[usize::from(b) * (SHADES.len() - 1) / 255])
            .collect();
        println!("{line}");
    }
    println!(
        "\ntest image #{index}: label {label}, predicted {predicted} ({:.2}%)",
        100.0 * p[predicted]
    );
    for (digit, &prob) in p.column(0).iter().enumerate() {
        let bar = "█".repeat((prob * 40.0).round() as usize);
        println!("  {digit}  {:>6.2}%  {bar}", 100.0 * prob);
    }
    Ok(())
}
