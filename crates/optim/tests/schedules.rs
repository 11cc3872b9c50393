//! Every schedule against PyTorch's scheduler of the same name (`fixtures/make_schedules.py`):
//! the rate of every epoch to 1e-12 relative.

use retroprop_optim::{Cosine, Exponential, OneCycle, Schedule, StepDecay};
use serde_json::Value;

fn schedule(s: &Value) -> Box<dyn Schedule> {
    let f = |k: &str| s[k].as_f64().unwrap();
    let u = |k: &str| s[k].as_u64().unwrap() as usize;
    match s["kind"].as_str().unwrap() {
        "step" => Box::new(StepDecay {
            step: u("step"),
            gamma: f("gamma"),
        }),
        "exponential" => Box::new(Exponential { gamma: f("gamma") }),
        "cosine" => Box::new(Cosine {
            epochs: u("epochs"),
            warmup: u("warmup"),
            min_lr: f("min_lr"),
        }),
        "onecycle" => Box::new(OneCycle {
            epochs: u("epochs"),
            pct_start: f("pct_start"),
            div: f("div"),
            final_div: f("final_div"),
        }),
        other => panic!("unknown schedule {other}"),
    }
}

#[test]
fn every_schedule_gives_pytorchs_rate_at_every_epoch() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/schedules.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let base = doc["base"].as_f64().unwrap();
    let all = doc["schedules"].as_object().unwrap();
    assert_eq!(all.len(), 5);
    for (name, s) in all {
        let ours = schedule(&s["settings"]);
        let mut worst = 0.0f64;
        for (epoch, want) in s["rates"].as_array().unwrap().iter().enumerate() {
            let want = want.as_f64().unwrap();
            let got = ours.rate(base, epoch);
            let rel = (got - want).abs() / want.abs();
            worst = worst.max(rel);
            assert!(
                rel <= 1e-12,
                "{name}, epoch {epoch}: {got} against PyTorch's {want}"
            );
        }
        eprintln!("{name}: worst relative difference from PyTorch {worst:.1e}");
    }
}
