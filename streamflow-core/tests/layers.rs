//! The core's modules depend on one another without cycles, bottom up in the order its crate
//! documentation gives. Read from the source: every `crate::<module>` a module's code names
//! (comments aside) is an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top-level modules, bottom up: each may use only those before it.
const LAYERS: &[&str] = &[
    // vocabulary
    "error",
    "time",
    "money",
    "position",
    "retry",
    "dead_letter",
    // certificates, for the connectors
    "tls",
    // the seam, and what a restart needs
    "schema",
    "batch",
    "checkpoint",
    "csv",
    // what the workers share
    "metrics",
    "control",
    // connectors in, and the built-in schema
    "kafka",
    "source",
    "streams",
    // the rules
    "lateness",
    "aggregate",
    // out
    "sink",
    // the timely glue
    "dataflow",
];

/// The modules each top-level module's code names.
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = vec![src.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") || path == src.join("lib.rs") {
            continue;
        }
        let relative = path.strip_prefix(&src).unwrap();
        let module =
            relative.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let code: String =
            text.lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        let used = edges.entry(module.clone()).or_default();
        for name in named_modules(&code) {
            if name != module && LAYERS.contains(&name.as_str()) {
                used.insert(name);
            }
        }
    }
    edges
}

/// The first segment after each `crate::` in `code`, and in `crate::{a, b::c}` each group's first
/// segments (`a`, `b`).
fn named_modules(code: &str) -> BTreeSet<String> {
    let ident = |text: &str| -> String { text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let mut names = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `streamflow_core::…`
        }
        let rest = &code[at + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            names.insert(ident(rest));
            continue;
        };
        // The top-level items of the group, nested groups skipped.
        let (mut depth, mut item_start) = (0, true);
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => item_start = true,
                c if item_start && depth == 0 && !c.is_whitespace() => {
                    names.insert(ident(&group[i..]));
                    item_start = false;
                }
                _ => {}
            }
        }
    }
    names
}

#[test]
fn every_module_is_in_a_layer() {
    let modules: BTreeSet<String> = edges().into_keys().collect();
    let layered: BTreeSet<String> = LAYERS.iter().map(|m| m.to_string()).collect();
    assert_eq!(modules, layered);
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let place = |module: &str| LAYERS.iter().position(|m| *m == module).unwrap();
    let mut upward = Vec::new();
    for (module, used) in edges() {
        for other in used {
            if place(&other) > place(&module) {
                upward.push(format!("{module} → {other}"));
            }
        }
    }
    assert!(upward.is_empty(), "modules using modules above them: {upward:?}");
}

/// The reader finds what the checks above rely on.
#[test]
fn the_reader_sees_the_edges_it_should() {
    let code = "use crate::time::EventTime;\nuse crate::{\n    error::Error,\n    sink::{a, b},\n    money,\n};\nfn f() { crate::retry::x(); streamflow_core::csv::y(); }";
    let expected: BTreeSet<String> = ["time", "error", "sink", "money", "retry"].map(String::from).into();
    assert_eq!(named_modules(code), expected);
    let edges = edges();
    assert!(edges["dataflow"].contains("sink") && edges["dataflow"].contains("source"), "{:?}", edges["dataflow"]);
    assert!(edges["sink"].contains("checkpoint"), "{:?}", edges["sink"]);
    assert!(edges["time"].iter().all(|m| m == "error"), "{:?}", edges["time"]);
}
