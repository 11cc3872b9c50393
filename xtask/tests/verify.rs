//! The verifier proven able to fail, its JSON parseable, and the homework covered.

use std::process::Command;

use xtask::verify::{self, Options};

#[test]
fn the_standard_suite_passes_and_covers_every_question() {
    let suite = verify::standard_suite();
    let report = suite.run(None);
    assert!(report.passed(), "{report}");
    let ids: Vec<&str> = report.results.iter().map(|r| r.id.as_str()).collect();
    let questions = ('a'..='m')
        .map(|c| format!("1{c}"))
        .chain(('a'..='r').map(|c| format!("2{c}")))
        .chain(('a'..='d').map(|c| format!("3{c}")));
    let mut count = 0;
    for q in questions {
        assert!(ids.contains(&q.as_str()), "question {q} has no check");
        count += 1;
    }
    assert_eq!(count, 35);
}

#[test]
fn a_planted_wrong_gradient_fails_through_the_user_registration_path() {
    let mut suite = verify::standard_suite();
    verify::plant_bug(&mut suite);
    let mut out = Vec::new();
    let opts = Options {
        filter: Some("planted".into()),
        ..Options::default()
    };
    let report = verify::run(&suite, &opts, &mut out).unwrap();
    assert!(!report.passed());
    assert_eq!(report.results.len(), 1);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("FAIL"), "{text}");
    // the failure says where: tensor, entry, analytic and numeric values, relative error
    assert!(
        text.contains("input[") && text.contains("analytic") && text.contains("numeric"),
        "{text}"
    );
}

#[test]
fn the_binary_exits_non_zero_on_a_planted_bug() {
    let xtask = env!("CARGO_BIN_EXE_xtask");
    let failing = Command::new(xtask)
        .args(["verify", "--plant-bug", "--filter", "planted"])
        .output()
        .unwrap();
    assert!(!failing.status.success());
    assert!(String::from_utf8_lossy(&failing.stdout).contains("FAIL"));
    let passing = Command::new(xtask)
        .args(["verify", "--filter", "2p"])
        .output()
        .unwrap();
    assert!(
        passing.status.success(),
        "{}",
        String::from_utf8_lossy(&passing.stdout)
    );
}

#[test]
fn json_output_parses_and_carries_the_numbers() {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["verify", "--json", "--filter", "homework part 3"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["passed"], serde_json::Value::Bool(true));
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    for r in results {
        assert!(r["outcome"]["error"].is_number() && r["outcome"]["tolerance"].is_number());
    }
}

#[test]
fn unknown_arguments_and_empty_filters_are_errors() {
    let xtask = env!("CARGO_BIN_EXE_xtask");
    let bad = Command::new(xtask)
        .args(["verify", "--frobnicate"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown argument"));
    let none = Command::new(xtask)
        .args(["verify", "--filter", "no such check"])
        .output()
        .unwrap();
    assert!(!none.status.success());
}
