//! `retroprop export` and `retroprop import`: weights in and out through safetensors, and the
//! format detection `eval` and `predict` use.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use retroprop_layers::{Init, LayerSpec};
use retroprop_models::safetensors as st;
use retroprop_models::{Sequential, checkpoint};

use crate::networks::{mnist_cnn, mnist_mlp, mnist_resnet};

/// The built-in networks a PyTorch file can be imported as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ImportModel {
    /// `nn.Sequential(nn.Linear(784, H), nn.Softplus(), nn.Linear(H, 10))` (H = --hidden).
    Mlp,
    /// The small MNIST CNN (see docs/pytorch.md for its PyTorch module).
    Cnn,
    /// The residual MNIST CNN (`retroprop summary --model resnet`; docs/pytorch.md).
    Resnet,
}

/// Options of `retroprop export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The checkpoint to export (written by `retroprop train` or `import`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// The safetensors file to write.
    #[arg(long)]
    out: PathBuf,
}

/// Options of `retroprop import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The safetensors file (from `safetensors.torch.save_file(model.state_dict(), …)` or
    /// `retroprop export`).
    #[arg(long)]
    weights: PathBuf,
    /// The network the file holds, for a file written by PyTorch (which does not record it).
    #[arg(long, value_enum, conflicts_with = "arch")]
    model: Option<ImportModel>,
    /// Hidden units of the MLP.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..), allow_negative_numbers = true)]
    hidden: u64,
    /// A JSON file with the network's architecture (a retroprop LayerSpec, as `retroprop
    /// export` writes in the metadata key retroprop.architecture).
    #[arg(long, value_name = "FILE")]
    arch: Option<PathBuf>,
    /// Mean and standard deviation of the inputs, `MEAN,STD`, for a network whose first layer
    /// standardises (the built-in ones do): the normalisation the PyTorch model was trained
    /// behind (`transforms.Normalize`) [default: the file's metadata, else MNIST's 0.1307,0.3081].
    #[arg(long, value_name = "MEAN,STD", value_parser = mean_std)]
    standardize: Option<(f64, f64)>,
    /// The checkpoint to write.
    #[arg(long)]
    out: PathBuf,
}

fn mean_std(s: &str) -> Result<(f64, f64), String> {
    let (m, d) = s
        .split_once(',')
        .ok_or_else(|| format!("`{s}`: give MEAN,STD, e.g. 0.1307,0.3081"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<f64>()
            .map_err(|_| format!("`{v}` is not a number"))
    };
    let (mean, std) = (parse(m)?, parse(d)?);
    if !(mean.is_finite() && std.is_finite() && std > 0.0) {
        return Err(format!(
            "`{s}`: the mean must be finite and the std finite and positive"
        ));
    }
    Ok((mean, std))
}

/// Reads a model for inference from a checkpoint or a safetensors export, told apart by
/// content, not by extension.
pub fn load_any(path: &Path) -> Result<Sequential<f32>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if st::is_safetensors(&bytes) {
        return st::from_bytes::<f32>(&bytes).map_err(|e| match e {
            st::TensorsError::NoArchitecture => format!(
                "{}: a safetensors file without retroprop's architecture (written by PyTorch?): import it first, `retroprop import --weights {} --model mlp|cnn --out model.ckpt`",
                path.display(),
                path.display()
            ),
            other => format!("{}: {other}", path.display()),
        });
    }
    checkpoint::from_bytes::<f32>(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn export(args: &ExportArgs) -> Result<(), String> {
    let model = load_any(&args.checkpoint)?;
    st::export(&model, &args.out).map_err(|e| e.to_string())?;
    let names = st::torch_names(&model);
    println!(
        "wrote {} ({} tensors, PyTorch names {}…); load it with model.load_state_dict(safetensors.torch.load_file(\"{}\"))",
        args.out.display(),
        names.len(),
        names.first().map_or("", |(_, t)| t.as_str()),
        args.out.display()
    );
    Ok(())
}

pub fn import(args: &ImportArgs) -> Result<(), String> {
    let bytes =
        std::fs::read(&args.weights).map_err(|e| format!("{}: {e}", args.weights.display()))?;
    let named = |e: st::TensorsError| format!("{}: {e}", args.weights.display());
    let model = match (&args.model, &args.arch) {
        (None, None) => st::from_bytes::<f32>(&bytes).map_err(named)?,
        (model, arch) => {
            let mut net = match (model, arch) {
                (Some(ImportModel::Mlp), _) => mnist_mlp::<f32>(args.hidden as usize, Init::Zeros),
                (Some(ImportModel::Cnn), _) => mnist_cnn::<f32>(Init::Zeros),
                (Some(ImportModel::Resnet), _) => mnist_resnet::<f32>(Init::Zeros),
                (None, Some(file)) => {
                    let text = std::fs::read_to_string(file)
                        .map_err(|e| format!("--arch {}: {e}", file.display()))?;
                    let spec: LayerSpec = serde_json::from_str(&text).map_err(|e| {
                        format!(
                            "--arch {}: not a retroprop architecture: {e}",
                            file.display()
                        )
                    })?;
                    Sequential::from_spec(&spec)
                }
                (None, None) => unreachable!("handled above"),
            }
            .map_err(|e| e.to_string())?;
            st::load_into_bytes(&mut net, &bytes).map_err(named)?;
            net
        }
    };
    let mut model = model;
    if let Some((mean, std)) = args.standardize {
        if model.layers().first().map(|l| l.name()) != Some("Standardize") {
            return Err("--standardize: this network does not start with a standardisation".into());
        }
        for (name, v) in [("0.mean", mean), ("0.std", std)] {
            retroprop_layers::Layer::set_buffer(
                &mut model,
                name,
                nalgebra::DMatrix::from_element(1, 1, v as f32),
            )
            .map_err(|e| e.to_string())?;
        }
    }
    checkpoint::save(&model, &args.out).map_err(|e| e.to_string())?;
    println!(
        "imported {} into {} ({} parameters)",
        args.weights.display(),
        args.out.display(),
        retroprop_layers::Layer::param_count(&model)
    );
    Ok(())
}
