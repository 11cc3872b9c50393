//! House checks that read the repository rather than run code (rust-analyzer's "tidy" tests
//! are the model): the crate graph drawn in `docs/architecture.md` must be the one the
//! manifests declare.
//!
//! The drawing is the block after the line `<!-- crate graph: checked by cargo xtask tidy -->`:
//! one line per workspace crate, `name ──▶ dependency, dependency, …` (names without the
//! `retroprop-` prefix; `retroprop` is the program), listing its normal (not dev) dependencies
//! inside the workspace.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The marker line that precedes the checked drawing.
pub const MARKER: &str = "<!-- crate graph: checked by cargo xtask tidy -->";

/// A crate graph: each crate and the workspace crates it depends on.
pub type Graph = BTreeMap<String, BTreeSet<String>>;

/// The short name of a workspace package: `retroprop-layers` → `layers`.
fn short(name: &str) -> String {
    name.strip_prefix("retroprop-").unwrap_or(name).to_string()
}

/// The graph `cargo metadata --no-deps` declares: normal dependencies between workspace
/// packages.
///
/// # Errors
/// A message if the JSON is not cargo's metadata.
pub fn graph_from_metadata(metadata: &str) -> Result<Graph, String> {
    let doc: serde_json::Value =
        serde_json::from_str(metadata).map_err(|e| format!("cargo metadata: {e}"))?;
    let packages = doc["packages"]
        .as_array()
        .ok_or("cargo metadata: no `packages` array")?;
    let members: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let mut graph = Graph::new();
    for package in packages {
        let name = package["name"].as_str().ok_or("a package without a name")?;
        let deps = package["dependencies"].as_array().into_iter().flatten();
        let normal = deps
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str())
            .filter(|d| members.contains(d))
            .map(short)
            .collect();
        graph.insert(short(name), normal);
    }
    Ok(graph)
}

/// The graph drawn in the document.
///
/// # Errors
/// A message if the marker or the block is missing or a line does not parse.
pub fn graph_from_doc(doc: &str) -> Result<Graph, String> {
    let after = doc
        .split_once(MARKER)
        .ok_or_else(|| format!("docs/architecture.md has no line `{MARKER}`"))?
        .1;
    let block = after
        .split_once("```text\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .ok_or("the crate graph is not followed by a ```text block")?
        .0;
    let mut graph = Graph::new();
    for (k, line) in block.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (name, deps) = match line.split_once("──▶") {
            Some((n, d)) => (n, d),
            None => (line, ""),
        };
        let name = name
            .split_whitespace()
            .next()
            .ok_or_else(|| format!("crate graph, line {}: `{line}` names no crate", k + 1))?;
        let deps = deps
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty() && *d != "—")
            .map(str::to_string)
            .collect();
        if graph.insert(name.to_string(), deps).is_some() {
            return Err(format!("crate graph: `{name}` is drawn twice"));
        }
    }
    Ok(graph)
}

/// Every disagreement between the drawing and the manifests, for people.
pub fn differences(drawn: &Graph, declared: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for (name, deps) in declared {
        match drawn.get(name) {
            None => out.push(format!("`{name}` is a workspace crate but is not drawn")),
            Some(d) => {
                for missing in deps.difference(d) {
                    out.push(format!(
                        "`{name}` depends on `{missing}` (its Cargo.toml) but the drawing lacks the edge"
                    ));
                }
                for extra in d.difference(deps) {
                    out.push(format!(
                        "the drawing has `{name}` ──▶ `{extra}`, which its Cargo.toml does not declare"
                    ));
                }
            }
        }
    }
    for name in drawn.keys().filter(|n| !declared.contains_key(*n)) {
        out.push(format!("`{name}` is drawn but is not a workspace crate"));
    }
    out
}

/// Checks the repository at `root`: `docs/architecture.md` against `cargo metadata`.
///
/// # Errors
/// The differences, or why they could not be computed.
pub fn check(root: &Path, metadata: &str) -> Result<(), String> {
    let doc = std::fs::read_to_string(root.join("docs/architecture.md"))
        .map_err(|e| format!("docs/architecture.md: {e}"))?;
    let diffs = differences(&graph_from_doc(&doc)?, &graph_from_metadata(metadata)?);
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "docs/architecture.md's crate graph disagrees with the manifests:\n  {}",
            diffs.join("\n  ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> String {
        let out = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo runs");
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    }

    fn root() -> &'static Path {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
    }

    #[test]
    fn the_drawing_matches_the_manifests() {
        check(root(), &metadata()).unwrap();
    }

    #[test]
    fn a_deliberate_mismatch_is_reported_edge_by_edge() {
        let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
        let declared = graph_from_metadata(&metadata()).unwrap();
        // the drawing claims data depends on models (it did before the redesign) and forgets
        // that losses depends on activations
        let mut drawn = graph_from_doc(&doc).unwrap();
        drawn.get_mut("data").unwrap().insert("models".to_string());
        drawn.get_mut("losses").unwrap().remove("activations");
        drawn.insert("ghost".to_string(), BTreeSet::new());
        let diffs = differences(&drawn, &declared);
        assert_eq!(diffs.len(), 3, "{diffs:#?}");
        assert!(
            diffs.iter().any(|d| d.contains("`data` ──▶ `models`")),
            "{diffs:#?}"
        );
        assert!(
            diffs
                .iter()
                .any(|d| d.contains("`losses` depends on `activations`"))
        );
        assert!(diffs.iter().any(|d| d.contains("`ghost` is drawn")));
        // and a document whose block says so fails the check as a whole
        let broken = doc.replacen("data        ──▶ core", "data        ──▶ core, models", 1);
        assert_ne!(broken, doc, "the test edits the real drawing");
        let dir = std::env::temp_dir().join(format!("tidy-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("docs")).unwrap();
        std::fs::write(dir.join("docs/architecture.md"), broken).unwrap();
        let err = check(&dir, &metadata()).unwrap_err();
        assert!(err.contains("`data` ──▶ `models`"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
