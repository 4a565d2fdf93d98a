//! The crate's layers, as `lib.rs` and DESIGN.md ("Layers") draw them, checked against the
//! code: every `crate::` and `super::` path in `src/` (test modules aside) is an arrow from
//! the top-level module it is written in to the one it names. An arrow may point down or
//! sideways within a layer, never up, and the arrows may not form a cycle.
//!
//! A new top-level module must be placed in [`LAYERS`] before this test passes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom first. The one place the allowed order is written.
const LAYERS: &[&[&str]] = &[
    &["config", "acl", "amqp", "proxy_protocol", "balance", "log"],
    &["tls", "net"],
    &["state"],
    &["health", "proxy", "http", "dns"],
    &["stats"],
    &["runtime"],
];

type Graph = BTreeMap<String, BTreeMap<String, Vec<String>>>;

#[test]
fn imports_point_down_the_layers_and_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = Graph::new();
    for file in rust_files(&src) {
        let rel = file.strip_prefix(&src).expect("under src");
        let Some(module) = module_path(rel) else {
            continue; // lib.rs and main.rs: the root and the binary
        };
        let text = std::fs::read_to_string(&file).expect("readable source");
        let from = module[0].clone();
        for target in arrows(&module, &code_only(&text)) {
            if target != from {
                graph
                    .entry(from.clone())
                    .or_default()
                    .entry(target)
                    .or_default()
                    .push(rel.display().to_string());
            }
        }
        graph.entry(from).or_default();
    }
    let mut problems = Vec::new();
    for (from, targets) in &graph {
        let Some(lf) = layer(from) else {
            problems.push(format!("module `{from}` is in no layer (add it to LAYERS)"));
            continue;
        };
        for (to, files) in targets {
            match layer(to) {
                None => problems.push(format!("module `{to}` is in no layer (add it to LAYERS)")),
                Some(lt) if lt > lf => problems.push(format!(
                    "`{from}` imports `{to}`, a layer above it (in {})",
                    files.join(", ")
                )),
                Some(_) => {}
            }
        }
    }
    if let Some(cycle) = find_cycle(&graph) {
        problems.push(format!("cycle: {}", cycle.join(" -> ")));
    }
    assert!(graph.len() >= 10, "the walk found the modules: {graph:?}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The reader and the cycle finder themselves, on made-up code: the test above can fail.
#[test]
fn the_reader_sees_grouped_paths_super_and_cycles() {
    let module = vec!["proxy".to_string()];
    let text = code_only(
        "use crate::{state::X, net};\n// use crate::runtime::Y;\nuse super::stats::Z;\n\
         fn f() { crate::log::g(); }\n#[cfg(test)]\nmod tests {\n    use crate::runtime::W;\n}\n",
    );
    let found: BTreeSet<String> = arrows(&module, &text).into_iter().collect();
    let expected: BTreeSet<String> = ["state", "net", "stats", "log"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, expected);
    let nested = vec!["proxy".to_string(), "session".to_string()];
    assert_eq!(arrows(&nested, "use super::forward;"), vec!["proxy"]);

    let mut g = Graph::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a")] {
        g.entry(a.into())
            .or_default()
            .insert(b.into(), vec![String::new()]);
    }
    assert!(find_cycle(&g).is_some());
    g.get_mut("c").expect("c").clear();
    assert!(find_cycle(&g).is_none());
}

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// `proxy/session.rs` → `[proxy, session]`, `proxy/mod.rs` → `[proxy]`, `tls.rs` → `[tls]`.
fn module_path(rel: &Path) -> Option<Vec<String>> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?.to_string();
    if parts.is_empty() && (stem == "lib" || stem == "main") {
        return None;
    }
    if stem != "mod" {
        parts.push(stem);
    }
    Some(parts)
}

/// The text without comments and without `#[cfg(test)]` items.
fn code_only(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            // Skip the item that follows: up to its closing brace, or its `;`.
            let mut depth = 0i32;
            let mut opened = false;
            for item in lines.by_ref() {
                depth += item.matches('{').count() as i32 - item.matches('}').count() as i32;
                opened |= item.contains('{');
                if (opened && depth <= 0) || (!opened && item.trim_end().ends_with(';')) {
                    break;
                }
            }
            continue;
        }
        let code = match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// The top-level modules named by `crate::` and `super::` paths in `text`, written in the
/// module at `module` (its path from the crate root).
fn arrows(module: &[String], text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        if text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue; // `$crate::` or an identifier ending in "crate"
        }
        out.extend(names_after(&text[i + "crate::".len()..]));
    }
    for (i, _) in text.match_indices("super::") {
        if text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
            continue; // counted from its first `super::`
        }
        let mut rest = &text[i..];
        let mut up = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            up += 1;
            rest = r;
        }
        if up < module.len() {
            out.push(module[0].clone());
        } else {
            out.extend(names_after(rest));
        }
    }
    out
}

/// `state::X` → `[state]`; `{state::X, net}` → `[state, net]`.
fn names_after(rest: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest)];
    };
    let mut names = Vec::new();
    let mut depth = 0;
    let mut start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => start = true,
            c if start && !c.is_whitespace() => {
                names.push(ident(&group[i..]));
                start = false;
            }
            _ => {}
        }
    }
    names.retain(|n| !n.is_empty() && n != "self");
    names
}

/// One cycle of the graph, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(|t| t.keys()) {
            if let Some(cycle) = visit(next, graph, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut done, &mut Vec::new()))
}
