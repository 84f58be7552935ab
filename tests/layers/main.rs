//! The layers hold inside each crate as Cargo holds them between crates: no module imports,
//! directly or round about, a module that imports it back.
//!
//! A module is a top-level module of its crate (its child modules are part of it), or, under
//! `routes`, one area (`routes::orders`); it imports another when its source names
//! `crate::other`. Test modules are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).expect("a source directory") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                found.push(path);
            }
        }
    }
    found
}

/// The module a file belongs to: `auth` for `auth.rs` and `auth/access.rs`, `routes::orders`
/// for `routes/orders.rs` and `routes/orders/queries.rs`; `None` for the crate root and tests.
fn module_of(root: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(root).ok()?.with_extension("");
    let parts: Vec<String> = relative
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .filter(|part| part != "mod")
        .collect();
    if parts.iter().any(|part| part == "tests") {
        return None;
    }
    match parts.as_slice() {
        [] => None,
        [only] if only == "lib" || only == "main" => None,
        [routes, area, ..] if routes == "routes" => Some(format!("routes::{area}")),
        [first, ..] => Some(first.clone()),
    }
}

/// The modules each module names, from `crate::a` and `crate::routes::b` paths outside its
/// `#[cfg(test)]` part.
fn imports(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in sources(root) {
        let Some(module) = module_of(root, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("a source file");
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        let named = graph.entry(module.clone()).or_default();
        for (at, _) in text.match_indices("crate::") {
            let rest = &text[at + "crate::".len()..];
            let mut segments = rest
                .split("::")
                .map(|segment| {
                    segment
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                        .collect::<String>()
                })
                .take(2);
            let first = segments.next().unwrap_or_default();
            let second = segments.next().unwrap_or_default();
            let target = if first == "routes" && !second.is_empty() {
                format!("routes::{second}")
            } else {
                first
            };
            let within = module.starts_with(&format!("{target}::"))
                || target.starts_with(&format!("{module}::"));
            if !target.is_empty() && target != module && !within {
                named.insert(target);
            }
        }
    }
    graph
}

/// A cycle through `start`, if there is one: the modules along it.
fn cycle_through(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut pending = vec![(start.to_owned(), vec![start.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((module, path)) = pending.pop() {
        for next in graph.get(&module).into_iter().flatten() {
            if next == start {
                return Some(path);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                pending.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace");
    let mut cycles = Vec::new();
    for member in [
        "domain",
        "application",
        "adapters",
        "command-api",
        "anjia",
        "projections",
    ] {
        let graph = imports(&workspace.join(member).join("src"));
        assert!(graph.len() > 2, "{member}: no modules found");
        for module in graph.keys() {
            if let Some(cycle) = cycle_through(&graph, module) {
                cycles.push(format!("{member}: {}", cycle.join(" → ")));
            }
        }
    }
    assert!(cycles.is_empty(), "import circles:\n{}", cycles.join("\n"));
}

#[test]
fn the_check_finds_a_circle_when_there_is_one() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(module, named)| {
        (
            module.to_owned(),
            named.into_iter().map(str::to_owned).collect(),
        )
    })
    .collect();
    assert_eq!(
        cycle_through(&graph, "a"),
        Some(vec!["a".to_owned(), "b".to_owned(), "c".to_owned()])
    );
    assert_eq!(cycle_through(&graph, "d"), None);
}
