//! The documents a user reads: `README.md`, `CHANGELOG.md`, `docs/*.md` and
//! `data/README.md`.
//! Every relative link (and its `#anchor`) resolves to a file of the
//! checkout, the README stays a front door (short, no issue numbers), and
//! `docs/iam-policy.md`'s table of broad statements stays in step with what
//! `deployer policy` prints. Pure file reading and one run of the binary
//! with `--account`: no local AWS.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::workspace_root;

/// The README's budget: a front door, the reference lives in docs/.
const README_MAX_LINES: usize = 250;

/// The documents a user reads, relative to the workspace root.
fn documents() -> Vec<PathBuf> {
    let root = workspace_root();
    let mut docs = vec![
        PathBuf::from("README.md"),
        PathBuf::from("CHANGELOG.md"),
        PathBuf::from("data/README.md"),
    ];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .map(|path| path.strip_prefix(&root).unwrap().to_path_buf())
        .collect();
    pages.sort();
    docs.extend(pages);
    docs
}

/// Each document with its text.
fn texts() -> Vec<(PathBuf, String)> {
    let root = workspace_root();
    documents()
        .into_iter()
        .map(|doc| {
            let text = std::fs::read_to_string(root.join(&doc)).unwrap();
            (doc, text)
        })
        .collect()
}

/// Fails on any problem found, and when too few items were read for the
/// check to mean anything (a parser that finds nothing passes nothing).
fn assert_none_found(checked: usize, what: &str, problems: &[String]) {
    assert!(
        checked >= 20,
        "read too few {what} ({checked}): is the parser broken?"
    );
    assert!(
        problems.is_empty(),
        "broken {what}:\n{}",
        problems.join("\n")
    );
}

/// The lines outside fenced code blocks, numbered from 1: what is inside
/// a fence is an example, not a link or a heading.
fn outside_fences(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            lines.push((i + 1, line));
        }
    }
    lines
}

/// The prose of each line outside fences, without its `code` spans
/// (odd-numbered pieces between backticks).
fn prose_lines(text: &str) -> Vec<(usize, String)> {
    outside_fences(text)
        .into_iter()
        .map(|(n, line)| {
            let prose = line
                .split('`')
                .enumerate()
                .filter(|(i, _)| i % 2 == 0)
                .map(|(_, piece)| piece)
                .collect();
            (n, prose)
        })
        .collect()
}

/// The targets of `[text](target)` links, with their line numbers. Code
/// spans count as text here, since a link's text may be `code`.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in outside_fences(text) {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            found.push((n, after[..end].trim().to_string()));
            rest = &after[end..];
        }
    }
    found
}

/// GitHub's anchor of a heading: lower case, punctuation other than `-`
/// and `_` dropped, spaces as `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors a Markdown file's headings give (a repeated heading gets
/// `-1`, `-2`, … as on GitHub).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for (_, line) in outside_fences(text) {
        if !line.starts_with('#') {
            continue;
        }
        let base = slug(line.trim_start_matches('#'));
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// Why `target`, linked from `doc`, does not resolve; None when it does.
fn broken(root: &Path, doc: &Path, target: &str) -> Option<String> {
    if target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let (file, anchor) = match target.split_once('#') {
        Some((file, anchor)) => (file, Some(anchor)),
        None => (target, None),
    };
    let path = if file.is_empty() {
        root.join(doc)
    } else {
        root.join(doc.parent().unwrap()).join(file)
    };
    // Inside the repository: a link that climbs out of it points at
    // nothing a reader of the repository has.
    let resolved = path.canonicalize().ok();
    let Some(resolved) = resolved.filter(|p| p.starts_with(root)) else {
        return Some(format!("no file {}", path.display()));
    };
    let anchor = anchor?;
    if resolved.extension().is_none_or(|ext| ext != "md") {
        return None;
    }
    let text = std::fs::read_to_string(&resolved).unwrap();
    (!anchors(&text).contains(anchor))
        .then(|| format!("no heading with anchor #{anchor} in {}", resolved.display()))
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let root = workspace_root().canonicalize().unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (doc, text) in texts() {
        for (line, target) in links(&text) {
            checked += 1;
            if let Some(why) = broken(&root, &doc, &target) {
                failures.push(format!("{}:{line}: ({target}): {why}", doc.display()));
            }
        }
    }
    assert_none_found(checked, "links", &failures);
}

#[test]
fn the_link_check_catches_a_missing_file_and_a_missing_anchor() {
    let root = workspace_root().canonicalize().unwrap();
    let readme = Path::new("README.md");
    assert_eq!(broken(&root, readme, "docs/testing.md"), None);
    assert_eq!(broken(&root, readme, "https://example.com/x"), None);
    assert!(broken(&root, readme, "docs/no-such-page.md").is_some());
    assert!(broken(&root, readme, "docs/testing.md#no-such-heading").is_some());
    assert!(broken(&root, readme, "../outside-the-repository").is_some());
    assert_eq!(
        named_paths("see `shared/design/prediction.md` and `{app}/x.md`, `/a/b.md`"),
        ["shared/design/prediction.md"],
        "a path in code is named; a pattern or an absolute name is not"
    );
    assert_eq!(
        slug(" What `up` does"),
        "what-up-does",
        "GitHub's anchor of a heading with code"
    );
}

/// The `code` spans of a line that name a file of the repository: a
/// relative path with a `/`, no spaces and no placeholders, ending in a
/// file extension. (`/deployer/locks/…` is a log group, `{app}/x` a pattern.)
fn named_paths(line: &str) -> Vec<String> {
    line.split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| {
            span.contains('/')
                && !span.starts_with('/')
                && !span.contains("://")
                && !span.contains(|c: char| c.is_whitespace() || "{}<>*$:…".contains(c))
                && Path::new(span).extension().is_some_and(|ext| {
                    ["md", "rs", "yml", "toml", "py", "json", "csv"]
                        .iter()
                        .any(|e| ext == *e)
                })
        })
        .map(str::to_string)
        .collect()
}

/// Where a path named in a document may be relative to: the repository,
/// the document's folder, or a crate (its `tests/…`, `src/…`).
fn path_bases(root: &Path, doc: &Path) -> Vec<PathBuf> {
    let mut bases = vec![root.to_path_buf(), root.join(doc.parent().unwrap())];
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        bases.push(entry.unwrap().path());
    }
    bases
}

#[test]
fn every_file_a_document_names_in_code_exists() {
    let root = workspace_root().canonicalize().unwrap();
    let mut missing = Vec::new();
    let mut checked = 0;
    for (doc, text) in texts() {
        let bases = path_bases(&root, &doc);
        for (line, text) in outside_fences(&text) {
            for path in named_paths(text) {
                checked += 1;
                if !bases.iter().any(|base| base.join(&path).exists()) {
                    missing.push(format!(
                        "{}:{line}: `{path}` is not in the repository",
                        doc.display()
                    ));
                }
            }
        }
    }
    assert_none_found(checked, "paths", &missing);
}

#[test]
fn the_readme_is_a_front_door() {
    let text = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let lines = text.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, more than {README_MAX_LINES}: move the reference to docs/"
    );
    // The first command deploys: scripts/try, then the tests.
    let try_at = text
        .find("scripts/try")
        .expect("README.md names scripts/try");
    let test_at = text
        .find("scripts/test")
        .expect("README.md names scripts/test");
    assert!(
        try_at < test_at,
        "README.md's first command is scripts/try, then scripts/test"
    );
}

#[test]
fn no_document_a_user_reads_narrates_issue_numbers() {
    let mut found = Vec::new();
    for (doc, text) in texts() {
        for (line, prose) in prose_lines(&text) {
            let lower = prose.to_lowercase();
            let numbered = lower.match_indices("issue").any(|(at, word)| {
                lower[at + word.len()..]
                    .trim_start_matches([' ', '#', 's'])
                    .starts_with(|c: char| c.is_ascii_digit())
            });
            if numbered {
                found.push(format!("{}:{line}: {}", doc.display(), prose.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "a user cannot look up our issues; say what changed instead (CHANGELOG.md):\n{}",
        found.join("\n")
    );
}

/// The `Sid`s in the first column of docs/iam-policy.md's table.
fn documented_sids(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| line.starts_with("| `"))
        .flat_map(|line| {
            let first = line.split('|').nth(1).unwrap_or_default();
            first
                .split(',')
                .map(|sid| sid.trim().trim_matches('`').to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_iam_policy_page_names_every_broad_statement_deployer_policy_prints() {
    let output = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(["policy", "--stage", "prod", "--account", "123456789012"])
        .current_dir(workspace_root())
        .env("CI", "true")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", crate::cli::describe(&output));
    let policy: Value = serde_json::from_slice(&output.stdout).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    let printed: BTreeSet<String> = statements
        .iter()
        .map(|s| s["Sid"].as_str().unwrap().to_string())
        .collect();
    // Broad: a wildcard in a resource, or an API Gateway collection.
    let broad: BTreeSet<String> = statements
        .iter()
        .filter(|s| {
            let resources = match &s["Resource"] {
                Value::Array(list) => list.clone(),
                one => vec![one.clone()],
            };
            resources.iter().any(|r| {
                let r = r.as_str().unwrap_or_default();
                r.contains('*') || r.ends_with("::/restapis")
            })
        })
        .map(|s| s["Sid"].as_str().unwrap().to_string())
        .collect();
    let page = std::fs::read_to_string(workspace_root().join("docs/iam-policy.md")).unwrap();
    let documented = documented_sids(&page);
    assert!(
        broad.len() >= 5,
        "too few broad statements found: {broad:?}"
    );
    let undocumented: Vec<_> = broad.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "docs/iam-policy.md's table does not say why these statements are broad: {undocumented:?}"
    );
    let stale: Vec<_> = documented.difference(&printed).collect();
    assert!(
        stale.is_empty(),
        "docs/iam-policy.md's table names statements `deployer policy` no longer prints: {stale:?}"
    );
}
