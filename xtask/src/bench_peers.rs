//! `cargo xtask bench-peers`: PyTorch and retroprop side by side, interleaved, in one sweep.
//!
//! Each round runs the PyTorch peer (`benches/peers/torch_bench.py`, eager, the same thread
//! count) and then our criterion benches of the same workloads; two rounds by default, so a
//! machine that drifts during the sweep shows as a spread instead of a false ratio. The table
//! gives, per round, both times and retroprop ÷ PyTorch (below 1: we are faster): for us
//! criterion's point estimate (the middle of its `time: [low estimate high]`), for PyTorch the
//! median of the script's timed repetitions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use crate::cargo;

/// One workload of the table: our criterion id, the peer's JSON path, and the factor that
/// turns our measured unit into the peer's (the MNIST CNN bench runs 100 of an epoch's 938
/// steps).
struct Workload {
    label: &'static str,
    ours: &'static str,
    peer: (&'static str, &'static str),
    scale: f64,
}

const fn workload(
    label: &'static str,
    ours: &'static str,
    peer: (&'static str, &'static str),
    scale: f64,
) -> Workload {
    Workload {
        label,
        ours,
        peer,
        scale,
    }
}

const WORKLOADS: &[Workload] = &[
    workload(
        "MLP epoch, batch 128",
        "train/mlp_epoch/n128",
        ("mlp", "epoch_seconds"),
        1.0,
    ),
    workload(
        "MLP full-batch step",
        "train/mlp_full_step",
        ("mlp_full", "step_seconds"),
        1.0,
    ),
    workload(
        "homework CNN forward, batch 16",
        "conv2d/homework_q3/n16/forward",
        ("cnn_hw", "forward_nograd"),
        1.0,
    ),
    workload(
        "homework CNN forward + backward",
        "conv2d/homework_q3/n16/forward_backward",
        ("cnn_hw", "forward_backward"),
        1.0,
    ),
    workload(
        "MNIST CNN epoch, batch 64",
        "train/mnist_cnn/100_steps/n64",
        ("mnist_cnn", "epoch_seconds"),
        60_000.0 / 64.0 / 100.0,
    ),
];

const HELP: &str = "\
usage: cargo xtask bench-peers [--venv DIR] [--rounds N] [--threads N] [--out DIR]

Runs PyTorch (eager) and retroprop's benches interleaved, N rounds (default 2), and prints
retroprop / PyTorch per workload. Nothing else should run on the machine meanwhile.
  --venv DIR     virtual environment with torch and numpy [default: $RETROPROP_PEERS_VENV,
                 else ~/.venv-peers]
  --threads N    threads for both sides [default: 2]
  --out DIR      where logs and JSON go [default: target/bench-peers]
";

struct Options {
    venv: PathBuf,
    rounds: usize,
    threads: usize,
    out: PathBuf,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let mut opts = Options {
        venv: std::env::var_os("RETROPROP_PEERS_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".venv-peers")),
        rounds: 2,
        threads: 2,
        out: PathBuf::from("target/bench-peers"),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n\n{HELP}"))
        };
        let number = |v: &String| {
            v.parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{flag} takes a positive integer, got `{v}`"))
        };
        match flag.as_str() {
            "--venv" => opts.venv = PathBuf::from(value()?),
            "--rounds" => opts.rounds = number(value()?)?,
            "--threads" => opts.threads = number(value()?)?,
            "--out" => opts.out = PathBuf::from(value()?),
            "--help" | "-h" => return Err(HELP.to_string()),
            other => return Err(format!("unknown flag `{other}`\n\n{HELP}")),
        }
    }
    Ok(opts)
}

/// Runs the sweep and prints the table.
pub(crate) fn run(args: &[String]) -> Result<ExitCode, String> {
    let opts = parse(args)?;
    let python = opts.venv.join("bin").join("python");
    let probe = Command::new(&python)
        .args(["-c", "import torch, numpy"])
        .stderr(Stdio::null())
        .status();
    if !matches!(probe, Ok(s) if s.success()) {
        return Err(format!(
            "no PyTorch in the virtual environment {} (looked for {} with torch and numpy).\n\
             Create one outside the workspace (about 5 minutes, ~1 GB):\n  \
             python3 -m venv {venv} && {venv}/bin/pip install numpy torch\n\
             or point to another with --venv DIR or RETROPROP_PEERS_VENV.",
            opts.venv.display(),
            python.display(),
            venv = opts.venv.display()
        ));
    }
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| format!("cannot create {}: {e}", opts.out.display()))?;
    let out = std::fs::canonicalize(&opts.out).map_err(|e| e.to_string())?;
    let root = std::env::current_dir().map_err(|e| e.to_string())?;
    println!("building the benches (not timed)");
    let built = cargo()
        .args(["bench", "-p", "retroprop-benches", "--no-run", "--quiet"])
        .status()
        .map_err(|e| e.to_string())?;
    if !built.success() {
        return Err("cargo bench --no-run failed".into());
    }
    let mut rounds = Vec::new();
    for round in 1..=opts.rounds {
        println!("== round {round}: PyTorch");
        let peer = run_peer(&python, &root, &out, opts.threads, round)?;
        println!("== round {round}: retroprop");
        let ours = run_ours(&out, opts.threads, round)?;
        rounds.push((peer, ours));
    }
    print_table(&rounds);
    println!("logs and JSON in {}", out.display());
    Ok(ExitCode::SUCCESS)
}

fn run_peer(
    python: &Path,
    root: &Path,
    out: &Path,
    threads: usize,
    round: usize,
) -> Result<serde_json::Value, String> {
    let log = out.join(format!("torch_r{round}.log"));
    let file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let status = Command::new(python)
        .arg(root.join("benches/peers/torch_bench.py"))
        .args(["--threads", &threads.to_string()])
        .args(["--workloads", "mlp,mlp_full,cnn_hw,mnist_cnn"])
        .args(["--epochs", "3", "--tag", &format!("r{round}")])
        .env("RESULTS_DIR", out)
        .env("MNIST_DIR", root.join("data/mnist"))
        .stdout(file.try_clone().map_err(|e| e.to_string())?)
        .stderr(file)
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("the PyTorch peer failed: see {}", log.display()));
    }
    let json = out.join(format!("torch_t{threads}r{round}.json"));
    let text = std::fs::read_to_string(&json).map_err(|e| format!("{}: {e}", json.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", json.display()))
}

fn run_ours(out: &Path, threads: usize, round: usize) -> Result<BTreeMap<String, f64>, String> {
    let output = cargo()
        .args(["bench", "-p", "retroprop-benches", "--quiet"])
        .args(["--bench", "conv2d", "--bench", "train", "--"])
        .args(["--noplot", "homework_q3|mlp_epoch|mlp_full_step|mnist_cnn"])
        .env("RAYON_NUM_THREADS", threads.to_string())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    std::fs::write(out.join(format!("retroprop_r{round}.log")), &text)
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(format!("cargo bench failed (round {round})"));
    }
    Ok(criterion_estimates(&text))
}

/// `id → seconds` (the point estimate) from criterion's report: an id line, then `time: [low median high]` (the id
/// and the times share a line when the id is short).
fn criterion_estimates(text: &str) -> BTreeMap<String, f64> {
    let mut estimates = BTreeMap::new();
    let mut id = String::new();
    for line in text.lines() {
        let (head, times) = match line.find("time:") {
            Some(at) => (&line[..at], Some(&line[at + 5..])),
            None => (line, None),
        };
        if !head.trim().is_empty() && !head.starts_with(' ') {
            id = head.trim().to_string();
        }
        let Some(times) = times else { continue };
        let parts: Vec<&str> = times
            .trim()
            .trim_matches(|c| c == '[' || c == ']')
            .split_whitespace()
            .collect();
        if let [_, _, median, unit, ..] = parts.as_slice()
            && let Ok(value) = median.parse::<f64>()
        {
            let factor = match *unit {
                "ns" => 1e-9,
                "µs" | "us" => 1e-6,
                "ms" => 1e-3,
                _ => 1.0,
            };
            estimates.insert(id.clone(), value * factor);
        }
    }
    estimates
}

fn print_table(rounds: &[(serde_json::Value, BTreeMap<String, f64>)]) {
    println!();
    println!(
        "retroprop ÷ PyTorch (retroprop: criterion's estimate; PyTorch: median of its runs; \
         below 1 = retroprop faster)"
    );
    println!();
    print!("| workload |");
    for r in 1..=rounds.len() {
        print!(" retroprop r{r} | PyTorch r{r} | ratio r{r} |");
    }
    println!();
    println!("|---|{}", "---|---|---|".repeat(rounds.len()));
    for w in WORKLOADS {
        print!("| {} |", w.label);
        for (peer, ours) in rounds {
            let us = ours.get(w.ours).map(|s| s * w.scale);
            let them = peer[w.peer.0][w.peer.1]["median"].as_f64();
            let cell = |v: Option<f64>| v.map_or("—".to_string(), seconds);
            let ratio = match (us, them) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => "—".into(),
            };
            print!(" {} | {} | {ratio} |", cell(us), cell(them));
        }
        println!();
    }
}

fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.3} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_criterion_estimates_in_seconds() {
        let text = "\
conv2d/homework_q3/n16/forward
                        time:   [5.9167 ms 6.0214 ms 6.1458 ms]
train/mlp_full_step     time:   [412.50 ms 415.02 ms 420.11 ms]
                        change: [-1.0% +0.2% +1.1%]
";
        let m = criterion_estimates(text);
        assert_eq!(m.len(), 2);
        assert!((m["conv2d/homework_q3/n16/forward"] - 6.0214e-3).abs() < 1e-12);
        assert!((m["train/mlp_full_step"] - 0.41502).abs() < 1e-12);
    }
}
