//! The folder tree is the architecture, and dependencies point down only:
//! a module of src/ may use (`crate::...`) modules of its own layer or of
//! layers below it, never above. The layers, lowest first:
//!
//! 0. `error`, `util` (SIMD, parallel sums, FFT, process hooks)
//! 1. `model` (kernels, Green's functions, potentials, closed forms)
//! 2. `particles` (clouds, initial laws, particle files)
//! 3. `density` (estimators), `coupling` (backends)
//! 4. `energy` (the free-energy terms)
//! 5. `stepper` (the problem, one JKO step, the simulation)
//! 6. `io` (scenario, output streams, checkpoints)
//! 7. `driver` (a run to a directory)
//! 8. `eulerian` (the grid twin and its runs), `distributed` (runs under MPI)
//! 9. `compare`
//! 10. `export` (ParaView files of finished runs), `plot` (figures of runs;
//!     uses `compare` for the densities and distances)
//!
//! Doc comments may mention any module; code may not reach up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const LAYERS: [(&str, u32); 16] = [
    ("error", 0),
    ("util", 0),
    ("model", 1),
    ("particles", 2),
    ("density", 3),
    ("coupling", 3),
    ("energy", 4),
    ("stepper", 5),
    ("io", 6),
    ("driver", 7),
    ("eulerian", 8),
    ("distributed", 8),
    ("compare", 9),
    ("export", 10),
    ("plot", 10),
    ("lib", 11),
];

fn layer(module: &str) -> Option<u32> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file of src/ belongs to (`src/density/mesh.rs` -> density).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Every `crate::name` in the code of `text` (comments skipped).
fn uses(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (k, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push((k + 1, name));
            rest = after;
        }
    }
    out
}

#[test]
fn dependencies_point_down_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut violations = Vec::new();
    for f in &files {
        let module = module_of(&src, f);
        if module == "main" {
            continue;
        }
        let Some(own) = layer(&module) else {
            panic!(
                "{}: module `{module}` has no layer: add it to LAYERS (and to the README's \"Code layout\")",
                f.display()
            );
        };
        let text = std::fs::read_to_string(f).unwrap();
        for (line, used) in uses(&text) {
            *seen.entry(format!("{module} -> {used}")).or_default() += 1;
            let Some(theirs) = layer(&used) else {
                violations.push(format!(
                    "{}:{line}: crate::{used} is no module",
                    f.display()
                ));
                continue;
            };
            if theirs > own {
                violations.push(format!(
                    "{}:{line}: `{module}` (layer {own}) uses `{used}` (layer {theirs})",
                    f.display()
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "upward dependencies:\n{}",
        violations.join("\n")
    );
    // The scan must have seen the tree (a test that cannot fail is a defect).
    assert!(seen.contains_key("energy -> density"), "{seen:?}");
    assert!(seen.contains_key("plot -> compare"), "{seen:?}");
    assert!(seen.len() > 20, "{seen:?}");
}

/// The checker catches an upward use (it would otherwise pass vacuously).
#[test]
fn an_upward_use_is_caught() {
    let found = uses("use crate::io::scenario::Scenario; // crate::driver in a comment");
    assert_eq!(found, vec![(1, "io".to_string())]);
    assert!(layer("io").unwrap() > layer("density").unwrap());
}
