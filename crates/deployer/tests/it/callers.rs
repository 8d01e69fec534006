//! Every `pub` function, type and constant of the deployer's library is
//! used in `src/` outside the unit tests. The library is `pub` for these
//! tests, so the compiler cannot tell what only tests call: such code is
//! something `up` never runs, and a test through it checks a path no user
//! takes (the adapters' tests go through `util::up_path`, the way `up`
//! does, instead).
//!
//! A look at the text, not the compiler's: a name counts as used when it
//! appears anywhere in the sources besides its definition, so a common
//! name (`new`, `name`) always passes. It catches what matters here, an
//! item whose name nothing else in `src/` mentions.

use std::path::{Path, PathBuf};

/// The `.rs` files under `dir`, recursively, unit-test files left out.
fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && !path.to_string_lossy().ends_with("tests.rs")
        {
            out.push(path);
        }
    }
}

/// The lines of `text` that are code, with their numbers: no comments,
/// and nothing of the unit tests (`#[cfg(test)] mod tests { ... }` ends a
/// file; `#[cfg(test)] mod tests;` names a file left out already).
fn code_lines(text: &str) -> Vec<(usize, &str)> {
    let mut lines = text.lines().enumerate();
    let mut code = Vec::new();
    while let Some((number, line)) = lines.next() {
        let trimmed = line.trim();
        if trimmed == "#[cfg(test)]" {
            match lines.next() {
                Some((_, next)) if next.trim_end().ends_with('{') => break,
                _ => continue,
            }
        }
        if !trimmed.starts_with("//") {
            code.push((number + 1, line));
        }
    }
    code
}

/// The name a line defines as `pub`: a function (`async` or `const` too),
/// a type, a trait, a constant or a static.
fn public_item(line: &str) -> Option<&str> {
    const KEYWORDS: &[&str] = &[
        "fn ",
        "async fn ",
        "const fn ",
        "const ",
        "static ",
        "struct ",
        "enum ",
        "type ",
        "trait ",
    ];
    let rest = line.trim_start().strip_prefix("pub ")?;
    let rest = KEYWORDS
        .iter()
        .find_map(|keyword| rest.strip_prefix(keyword))?;
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    Some(&rest[..end])
}

/// How often `name` appears in `text` as a whole word.
fn word_count(text: &str, name: &str) -> usize {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(name)
        .filter(|(at, _)| {
            let before = text[..*at].chars().next_back();
            let after = text[at + name.len()..].chars().next();
            !before.is_some_and(is_word) && !after.is_some_and(is_word)
        })
        .count()
}

#[test]
fn every_public_item_is_used_outside_the_tests() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    files.sort();
    let sources: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (path, text)
        })
        .collect();
    let code: String = sources
        .iter()
        .flat_map(|(_, text)| code_lines(text))
        .map(|(_, line)| line)
        .collect::<Vec<_>>()
        .join("\n");

    let mut unused = Vec::new();
    for (path, text) in &sources {
        for (number, line) in code_lines(text) {
            let Some(name) = public_item(line) else {
                continue;
            };
            if word_count(&code, name) < 2 {
                let path = path.strip_prefix(&src).unwrap().display();
                unused.push(format!("{path}:{number}: {name}"));
            }
        }
    }
    assert!(
        unused.is_empty(),
        "public items nothing in src/ uses (only tests, or no one):\n{}",
        unused.join("\n")
    );
}

#[test]
fn the_scan_sees_definitions_and_words_as_the_compiler_would() {
    assert_eq!(
        public_item("    pub async fn read_role(client: &Client)"),
        Some("read_role")
    );
    assert_eq!(public_item("pub fn new<T>(x: T)"), Some("new"));
    assert_eq!(public_item("pub const fn zero() -> u8"), Some("zero"));
    assert_eq!(public_item("pub const LIMIT: u32 = 1;"), Some("LIMIT"));
    assert_eq!(public_item("pub struct Names {"), Some("Names"));
    assert_eq!(public_item("    pub name: String,"), None);
    assert_eq!(public_item("pub(crate) fn hidden()"), None);
    assert_eq!(public_item("fn private()"), None);
    assert_eq!(
        word_count("read_role(); read_roles(); x.read_role", "read_role"),
        2
    );
    let text = "pub fn a() {}\n// a()\n#[cfg(test)]\nmod tests;\nfn b() { a() }\n#[cfg(test)]\nmod tests {\n    a();\n}\n";
    assert_eq!(
        code_lines(text),
        [(1, "pub fn a() {}"), (5, "fn b() { a() }")]
    );
}
