//! The host's shape, held by tests: no import cycle among `host/src`'s modules, a request's
//! path reads one way (nothing imports the interceptor adapter), and the library's root stays
//! about a dozen types.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `host/src` of this workspace.
fn host_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../host/src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every top-level module of `host/src` (`bin/` and `lib.rs` aside) and the top-level modules
/// its non-test code names through `crate::` (in `use` lists too, and in doc links).
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = host_src();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" || top == "bin" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        // Test modules may reach anywhere; the shape is about the code that ships.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let deps = graph.entry(top.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            if let Some(list) = rest.strip_prefix('{') {
                let list = &list[..list.find('}').unwrap_or(list.len())];
                for item in list.split(',') {
                    deps.insert(leading_name(item.trim()));
                }
            } else {
                deps.insert(leading_name(rest));
            }
        }
        deps.remove(&top);
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| modules.contains(d));
    }
    graph
}

fn leading_name(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
        .collect()
}

/// The modules on some cycle, by repeated removal of modules that import nothing left.
fn modules_on_cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let mut left = graph.clone();
    loop {
        let leaves: Vec<String> = left
            .iter()
            .filter(|(_, deps)| deps.iter().all(|d| !left.contains_key(d)))
            .map(|(m, _)| m.clone())
            .collect();
        if leaves.is_empty() {
            return left.into_keys().collect();
        }
        for leaf in leaves {
            left.remove(&leaf);
        }
    }
}

#[test]
fn host_modules_import_no_cycle() {
    let graph = module_graph();
    assert!(
        graph.len() > 20 && graph["host"].contains("flow") && graph["flow"].contains("chain"),
        "the scan sees the modules and their imports: {graph:?}"
    );
    let cyclic = modules_on_cycles(&graph);
    let shown: Vec<String> = cyclic
        .iter()
        .map(|m| {
            format!(
                "{m} -> {:?}",
                graph[m].intersection(&cyclic).collect::<Vec<_>>()
            )
        })
        .collect();
    assert!(cyclic.is_empty(), "import cycle among: {shown:#?}");
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let mut graph = BTreeMap::new();
    graph.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    graph.insert("b".to_owned(), BTreeSet::from(["a".to_owned()]));
    graph.insert("c".to_owned(), BTreeSet::from(["a".to_owned()]));
    graph.insert("d".to_owned(), BTreeSet::new());
    assert_eq!(
        modules_on_cycles(&graph),
        BTreeSet::from(["a".to_owned(), "b".to_owned(), "c".to_owned()])
    );
}

#[test]
fn nothing_reaches_back_up() {
    let graph = module_graph();
    // The interceptor adapter sits on top; the vocabulary at the bottom imports nothing above it.
    for (module, deps) in &graph {
        assert!(
            !deps.contains("intercept"),
            "`{module}` imports `intercept`"
        );
    }
    for leaf in ["decision", "events", "clock"] {
        assert!(graph[leaf].is_empty(), "`{leaf}` imports {:?}", graph[leaf]);
    }
    for low in ["action", "denial", "error"] {
        for high in [
            "host", "flow", "chain", "policy", "server", "sidecar", "wire",
        ] {
            assert!(!graph[low].contains(high), "`{low}` imports `{high}`");
        }
    }
}

#[test]
fn the_library_root_exports_about_a_dozen_types() {
    let lib = std::fs::read_to_string(host_src().join("lib.rs")).unwrap();
    let mut root = Vec::new();
    for line in lib.lines().filter(|l| l.starts_with("pub use ")) {
        let names = line
            .trim_start_matches("pub use ")
            .trim_end_matches(';')
            .rsplit("::")
            .next()
            .unwrap_or_default()
            .trim_matches(|c| c == '{' || c == '}');
        root.extend(names.split(',').map(|n| n.trim().to_owned()));
    }
    assert!(root.contains(&"PolicyHost".to_owned()), "{root:?}");
    assert!(
        root.len() <= 14,
        "the root re-exports {} items; put new ones in a module of their concept: {root:?}",
        root.len()
    );
}
