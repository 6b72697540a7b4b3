//! The shape of the code, checked: the modules' imports form no cycle, and
//! each top-level module imports only from the layers below its own (the
//! README's "Architecture" section draws them).
//!
//! The graph is read from the source text: every `crate::`, `super::` and
//! child-module path outside test code is an edge from its file's module to
//! the longest module its path names. That is coarser than rustc's name
//! resolution (a path in a string counts too) and errs towards reporting.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom to top. A module may import from the layers before its own only;
/// modules of one layer do not import each other.
const LAYERS: &[&[&str]] = &[
    &["config", "process", "interrupt", "templates"],
    &["aws"],
    &["model", "names"],
    &["resources"],
    &[
        "engine",
        "state",
        "local_plane",
        "image",
        "registry_credentials",
    ],
    &["database"],
    &["blueprint", "verify", "drift"],
    &["output", "iam_policy"],
    &["onboarding"],
    &["ops"],
    &["cli"],
    &[""],
];

type Graph = BTreeMap<String, BTreeSet<String>>;

fn module_files(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "main" | "lib")
            ) {
                parts.pop();
            }
            out.insert(parts.join("::"), path);
        }
    }
    out
}

/// The file without comment lines and without items under `#[cfg(test)]`.
fn code_outside_tests(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut kept = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim() == "#[cfg(test)]" {
            let indent = line.len() - line.trim_start().len();
            i += 1;
            if lines.get(i).is_some_and(|l| l.trim_end().ends_with(';')) {
                i += 1;
                continue;
            }
            while i < lines.len() {
                let l = lines[i];
                i += 1;
                if l.len() - l.trim_start().len() == indent && l.trim_start().starts_with('}') {
                    break;
                }
            }
            continue;
        }
        if !line.trim_start().starts_with("//") {
            kept.push(line);
        }
        i += 1;
    }
    kept.join("\n")
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(path: &str) -> Vec<String> {
    let Some(open) = path.find('{') else {
        return vec![path.trim().trim_end_matches("::").to_string()];
    };
    let prefix = &path[..open];
    let inner = &path[open + 1..path.rfind('}').unwrap_or(path.len())];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .map(str::trim)
        .filter(|item| !item.is_empty() && *item != "self")
        .flat_map(|item| expand(&format!("{prefix}{}", item.split(" as ").next().unwrap())))
        .collect()
}

/// Every path that starts at `start` in `code` (`crate::`, `super::`...),
/// with its brace groups.
fn paths_after<'a>(code: &'a str, start: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(start) {
        let before = rest[..at].chars().last();
        let tail = &rest[at + start.len()..];
        rest = tail;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut depth = 0;
        let end = tail
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '{' => depth += 1,
                    '}' if depth > 0 => depth -= 1,
                    _ => {}
                }
                depth == 0 && !(c.is_alphanumeric() || c == '_' || c == ':' || c == '{' || c == '}')
            })
            .map_or(tail.len(), |(i, _)| i);
        out.push(&tail[..end]);
    }
    out
}

fn graph(src: &Path) -> Graph {
    let files = module_files(src);
    let resolve = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|m| files.contains_key(m))
    };
    let mut edges = Graph::new();
    for (module, file) in &files {
        let code = code_outside_tests(&std::fs::read_to_string(file).unwrap());
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p).to_string();
        let mut targets = Vec::new();
        for path in paths_after(&code, "crate::") {
            targets.extend(expand(path));
        }
        for path in paths_after(&code, "super::") {
            let prefix = if parent.is_empty() {
                String::new()
            } else {
                format!("{parent}::")
            };
            targets.extend(expand(path).into_iter().map(|p| format!("{prefix}{p}")));
        }
        let children = files.keys().filter(|m| {
            m.rsplit_once("::").map_or("", |(p, _)| p) == module.as_str() && !m.is_empty()
        });
        for child in children {
            let name = child.rsplit("::").next().unwrap();
            let here = if module.is_empty() {
                String::new()
            } else {
                format!("{module}::")
            };
            for path in paths_after(&code, &format!("{name}::"))
                .into_iter()
                .chain(paths_after(&code, &format!("self::{name}::")))
            {
                targets.extend(
                    expand(path)
                        .into_iter()
                        .map(|p| format!("{here}{name}::{p}")),
                );
            }
        }
        let set = edges.entry(module.clone()).or_default();
        for target in targets {
            if let Some(found) = resolve(&target) {
                if found != *module {
                    set.insert(found);
                }
            }
        }
    }
    edges
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(edges: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        for w in s.edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w.as_str()) {
                visit(s, w);
                let low = s.low[v].min(s.low[w.as_str()]);
                s.low.insert(v, low);
            } else if s.stack.contains(&w.as_str()) {
                let low = s.low[v].min(s.index[w.as_str()]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let at = s.stack.iter().rposition(|m| *m == v).unwrap();
            let component: Vec<String> = s.stack.drain(at..).map(String::from).collect();
            if component.len() > 1 {
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.found
}

fn layer_of(module: &str) -> Option<usize> {
    let top = module.split("::").next().unwrap();
    LAYERS.iter().position(|layer| layer.contains(&top))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_module_imports_another_that_imports_it_back() {
    let found = cycles(&graph(&src()));
    assert!(
        found.is_empty(),
        "import cycles (each line: modules that reach each other):\n{}",
        found
            .iter()
            .map(|c| c.join(" ↔ "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_import_points_down_the_layers() {
    let edges = graph(&src());
    let mut wrong = Vec::new();
    for (from, targets) in &edges {
        let Some(from_layer) = layer_of(from) else {
            wrong.push(format!("{from} is in no layer of LAYERS"));
            continue;
        };
        for to in targets {
            let same_top = from.split("::").next() == to.split("::").next();
            match layer_of(to) {
                _ if same_top => {}
                Some(to_layer) if to_layer < from_layer => {}
                _ => wrong.push(format!("{from} → {to}")),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that point up or across the layers:\n{}",
        wrong.join("\n")
    );
}

/// Longer functions read worse split (README, "Architecture"): a scheduling
/// loop, two matches over every event or change, and the table of ARNs.
const LONG_FUNCTIONS_ALLOWED: &[&str] = &[
    "engine/apply.rs:run_waves",
    "output.rs:emit",
    "output.rs:print_changes",
    "iam_policy.rs:resources",
];
const MAX_FUNCTION_LINES: usize = 80;
const MAX_FILE_LINES: usize = 800;

/// The source files, with their text before the unit tests.
fn sources() -> Vec<(String, String)> {
    module_files(&src())
        .into_values()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let code = match text.find("\n#[cfg(test)]\nmod tests") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            let name = path.strip_prefix(src()).unwrap().display().to_string();
            (name, code)
        })
        .collect()
}

/// (name, lines) of each function, from its `fn` line to the closing brace
/// at its indentation.
fn functions(code: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let signature = ["pub(crate) ", "pub(super) ", "pub ", ""]
            .iter()
            .filter_map(|p| trimmed.strip_prefix(p))
            .find_map(|rest| {
                let rest = rest.strip_prefix("async ").unwrap_or(rest);
                rest.strip_prefix("fn ")
            });
        let Some(rest) = signature else { continue };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let close = " ".repeat(indent) + "}";
        if let Some(end) = lines[i..].iter().position(|l| *l == close) {
            found.push((name, end + 1));
        }
    }
    found
}

#[test]
fn every_module_opens_with_what_it_is_for() {
    let bare: Vec<String> = sources()
        .into_iter()
        .filter(|(_, code)| !code.starts_with("//!"))
        .map(|(name, _)| name)
        .collect();
    assert!(bare.is_empty(), "modules without a //! header: {bare:?}");
}

#[test]
fn no_function_passes_80_lines_and_no_file_800_apart_from_the_allowed() {
    let mut wrong = Vec::new();
    for (file, code) in sources() {
        let lines = code.lines().count();
        if lines > MAX_FILE_LINES {
            wrong.push(format!("{file}: {lines} lines before its tests"));
        }
        for (name, length) in functions(&code) {
            let id = format!("{file}:{name}");
            if length > MAX_FUNCTION_LINES && !LONG_FUNCTIONS_ALLOWED.contains(&id.as_str()) {
                wrong.push(format!("{id}: {length} lines"));
            }
        }
    }
    assert!(wrong.is_empty(), "too long:\n{}", wrong.join("\n"));
}

#[test]
fn the_length_check_measures_a_function_from_its_signature_to_its_brace() {
    let code = "pub async fn short() {\n    one();\n}\n\nimpl X {\n    fn inner(\n        a: u8,\n    ) {\n        two();\n    }\n}\n";
    assert_eq!(
        functions(code),
        [("short".to_string(), 3), ("inner".to_string(), 5)]
    );
}

/// The checker itself: it must see the cycles it is there to catch.
#[test]
fn the_checker_finds_a_cycle_and_an_upward_import() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir(src.join("resources")).unwrap();
    std::fs::write(src.join("main.rs"), "mod resources;\nmod blueprint;\n").unwrap();
    std::fs::write(
        src.join("resources/mod.rs"),
        "mod ecs;\npub fn create() { ecs::create() }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("resources/ecs.rs"),
        "use crate::blueprint::{NAME, other::{X}};\npub fn create() { super::helper() }\n#[cfg(test)]\nmod tests { use crate::cli::Y; }\n",
    )
    .unwrap();
    std::fs::write(src.join("blueprint.rs"), "use crate::resources::create;\n").unwrap();
    let edges = graph(src);
    assert_eq!(
        edges["resources::ecs"],
        BTreeSet::from(["blueprint".to_string(), "resources".to_string()])
    );
    let found = cycles(&edges);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].len(), 3, "{found:?}");
}
