//! docs/homework.md agrees with itself: its verdict table files each of the 35 questions exactly
//! once, under the verdict its own section gives.

use std::collections::BTreeMap;
use std::path::Path;

/// The four verdicts, as the table's first column and each section's `Answer key: **…**` say.
const VERDICTS: [&str; 4] = [
    "correct",
    "correct result, flawed derivation",
    "incomplete",
    "wrong",
];

fn questions() -> Vec<String> {
    ('a'..='m')
        .map(|c| format!("1{c}"))
        .chain(('a'..='r').map(|c| format!("2{c}")))
        .chain(('a'..='d').map(|c| format!("3{c}")))
        .collect()
}

fn document() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/homework.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Removes parenthesised notes (`2b (sums to m)` → `2b `), which may name other questions.
fn without_notes(cell: &str) -> String {
    let mut depth = 0usize;
    cell.chars()
        .filter(|&c| match c {
            '(' => {
                depth += 1;
                false
            }
            ')' => {
                depth = depth.saturating_sub(1);
                false
            }
            _ => depth == 0,
        })
        .collect()
}

/// Question ids (`1a` … `3d`) in a table cell, in order, with repeats.
fn ids_in(cell: &str) -> Vec<String> {
    without_notes(cell)
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| {
            let b = w.as_bytes();
            b.len() == 2 && (b'1'..=b'3').contains(&b[0]) && b[1].is_ascii_lowercase()
        })
        .map(str::to_string)
        .collect()
}

/// The table: question → every verdict row it appears in.
fn table(doc: &str) -> BTreeMap<String, Vec<String>> {
    let mut filed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let start = doc
        .find("| | verdict on the answer key |")
        .expect("the verdict table's header");
    for line in doc[start..].lines().skip(2) {
        let Some(row) = line.strip_prefix('|') else {
            break;
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert!(cells.len() >= 2, "malformed table row: {line}");
        let verdict = cells[0];
        assert!(
            VERDICTS.contains(&verdict),
            "unknown verdict row `{verdict}`"
        );
        for id in ids_in(cells[1]) {
            filed.entry(id).or_default().push(verdict.to_string());
        }
    }
    filed
}

/// Each section `### 1a — …`: the verdict of its `Answer key: **…**`.
fn sections(doc: &str) -> BTreeMap<String, Vec<String>> {
    let mut verdicts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for section in doc.split("\n### ").skip(1) {
        let id: String = section.chars().take(2).collect();
        let text = section.split_whitespace().collect::<Vec<_>>().join(" ");
        let found: Vec<String> = text
            .match_indices("Answer key: **")
            .filter_map(|(at, m)| {
                let rest = &text[at + m.len()..];
                rest.find("**").map(|end| rest[..end].to_string())
            })
            .collect();
        verdicts.entry(id).or_default().extend(found);
    }
    verdicts
}

#[test]
fn the_verdict_table_lists_every_question_once() {
    let filed = table(&document());
    for q in questions() {
        match filed.get(&q).map(Vec::as_slice) {
            None | Some([]) => panic!("question {q} is in no row of the verdict table"),
            Some([_]) => {}
            Some(rows) => panic!("question {q} is listed {} times: {rows:?}", rows.len()),
        }
    }
    let unknown: Vec<&String> = filed.keys().filter(|k| !questions().contains(k)).collect();
    assert!(
        unknown.is_empty(),
        "the table names no such question: {unknown:?}"
    );
}

#[test]
fn every_section_gives_one_verdict_and_the_table_agrees() {
    let doc = document();
    let (filed, given) = (table(&doc), sections(&doc));
    for q in questions() {
        let verdict = match given.get(&q).map(Vec::as_slice) {
            Some([v]) => v,
            other => panic!("section {q} must give one `Answer key: **…**` verdict, has {other:?}"),
        };
        assert!(
            VERDICTS.contains(&verdict.as_str()),
            "section {q}: unknown verdict `{verdict}`"
        );
        assert_eq!(
            filed.get(&q).and_then(|rows| rows.first()),
            Some(verdict),
            "question {q}: the table and the section disagree"
        );
    }
}

#[test]
fn the_parser_sees_a_missing_and_a_duplicated_question() {
    // the checks above can fail: a table without 3d, and one with 2o twice
    let doc = document();
    let broken = doc.replacen(", 3d (says what, not why)", "", 1);
    assert!(!table(&broken).contains_key("3d"));
    let twice = doc.replacen("| wrong | 2b", "| wrong | 2o, 2b", 1);
    assert_eq!(table(&twice)["2o"].len(), 2);
    // and a note naming another question does not count as a listing
    assert_eq!(ids_in("2o (unlike 2b)"), vec!["2o".to_string()]);
}
