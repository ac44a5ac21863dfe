//! Guards the determinism invariants of docs/ARCHITECTURE.md at the source level: no code of the
//! simulated world (core and protocols) reads the OS clock, OS entropy or the environment, or uses
//! std's `HashMap`/`HashSet` (whose `RandomState` makes iteration order differ per process; the
//! `Fx` maps hash deterministically and are only used as lookup tables).

use std::path::{Path, PathBuf};

/// Identifiers that must not appear in the simulated world's library code.
const FORBIDDEN: &[&str] = &[
    "std::time::Instant",
    "Instant::now",
    "SystemTime",
    "thread_rng",
    "OsRng",
    "StdRng",
    "from_entropy",
    "std::env::var",
    "std::thread::spawn",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn core_and_protocols_never_read_ambient_state() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in ["core", "protocols"] {
        rust_files(&crates.join(krate).join("src"), &mut files);
    }
    assert!(files.len() > 10, "found the sources ({} files)", files.len());
    let mut offences = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN {
                if code.contains(word) {
                    offences.push(format!("{}:{}: {word}", file.display(), number + 1));
                }
            }
            for word in ["HashMap", "HashSet"] {
                let randomly_ordered = code.match_indices(word).any(|(at, _)| !code[..at].ends_with("Fx"));
                if randomly_ordered {
                    offences.push(format!(
                        "{}:{}: std {word} (use BTreeMap/BTreeSet or an Fx map)",
                        file.display(),
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(offences.is_empty(), "ambient nondeterminism in the simulated world:\n{}", offences.join("\n"));
}
