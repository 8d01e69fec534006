//! Stage patterns and time to live: `[stages."pr-*"]` is the table of every
//! stage whose name it matches (a `*` stands for any run of characters),
//! so CI can deploy `pr-123` without editing deploy.toml, and `ttl = "7d"`
//! says how long such a stage may live after its last deployment before
//! `deployer prune` removes it.
//!
//! Which table a name gets: its exact `[stages.NAME]` always; else the
//! matching pattern with the most literal characters (`pr-1*` beats
//! `pr-*`); two matching patterns with as many is an error naming both
//! lines, since neither is the obvious choice.

use std::time::Duration;

use toml::Spanned;

use super::raw::{RawStage, Source};
use super::stage::Stage;
use super::{ConfigError, MAX_STAGE_LEN};

/// A stage's time to live, as written (`7d`, `36h`): the `deployer:ttl`
/// tag carries the text, so `prune` reads it back with [`Ttl::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ttl {
    pub text: String,
    pub duration: Duration,
}

/// The longest time to live: a year. A preview meant to outlive that is a
/// stage of its own (`[stages.NAME]` without `ttl`).
const MAX_TTL_HOURS: u64 = 365 * 24;

impl Ttl {
    /// `12h`, `7d` → a time to live: a whole number of hours or days, from
    /// one hour to a year.
    pub fn parse(text: &str) -> Result<Ttl, String> {
        let usage = || {
            format!(
                "must be a whole number of hours or days, from 1h to 365d (like \"7d\" or \"12h\"), got {text:?}"
            )
        };
        let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(usage)?;
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().map_err(|_| usage())?;
        let hours = match unit {
            "h" => Some(number),
            "d" => number.checked_mul(24),
            _ => None,
        }
        .filter(|hours| (1..=MAX_TTL_HOURS).contains(hours))
        .ok_or_else(usage)?;
        Ok(Ttl {
            text: text.to_string(),
            duration: Duration::from_secs(hours * 3600),
        })
    }
}

impl std::fmt::Display for Ttl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// One `[stages."pattern"]` table, resolved as a stage named after the
/// pattern itself (so `deployer policy --stage 'pr-*'` scopes to the
/// names every match shares).
#[derive(Debug, Clone)]
pub(super) struct Pattern {
    pub(super) glob: String,
    pub(super) line: usize,
    pub(super) stage: Stage,
}

/// Whether a stage key is a pattern.
pub(super) fn is_pattern(name: &str) -> bool {
    name.contains('*')
}

/// Whether `name` matches `glob`, where `*` matches any run of
/// characters, the empty one included.
pub fn glob_matches(glob: &str, name: &str) -> bool {
    let mut parts = glob.split('*');
    // No `*` at all: the whole name.
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// How specific a pattern is: its literal characters.
fn specificity(glob: &str) -> usize {
    glob.chars().filter(|c| *c != '*').count()
}

/// A pattern key: lowercase letters, digits, `-` and `*`, starting with a
/// letter or `*`, and short enough that a name it matches can still be a
/// stage name.
pub(super) fn check_pattern(src: &Source<'_>, name: &Spanned<String>) -> Result<(), ConfigError> {
    let n = name.get_ref();
    let shaped = n
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '*'))
        && n.starts_with(|c: char| c.is_ascii_lowercase() || c == '*')
        && specificity(n) < MAX_STAGE_LEN;
    if shaped {
        Ok(())
    } else {
        Err(src.error(
            name.span(),
            format!("[stages] \"{n}\""),
            format!(
                "a stage pattern is lowercase letters, digits, `-` and `*` (any run of \
                 characters), starting with a letter or `*`, with fewer than {MAX_STAGE_LEN} \
                 other than `*`"
            ),
        ))
    }
}

/// What a pattern table may not hold: `protected` (a stage callers depend
/// on is named, never matched, and never expires) and `[ecr]` (its stages
/// share the app's repository: one of their own would be every match's).
pub(super) fn check_pattern_table(
    src: &Source<'_>,
    name: &str,
    table: &RawStage,
) -> Result<(), ConfigError> {
    if let Some(protected) = &table.protected {
        return Err(src.error(
            protected.span(),
            format!("[stages.\"{name}\"] protected"),
            "a stage pattern cannot be protected: name a stage callers depend on in a \
             [stages.NAME] table of its own",
        ));
    }
    if let Some(ecr) = &table.ecr {
        return Err(src.error(
            ecr.span(),
            format!("[stages.\"{name}\".ecr]"),
            "the stages of a pattern share the app's ECR repository: set its keys in the \
             shared [ecr] table",
        ));
    }
    Ok(())
}

/// The stage's `ttl`, checked: a time to live, and never on a protected
/// stage (production does not expire).
pub(super) fn apply_ttl(
    src: &Source<'_>,
    stage: &mut Stage,
    table: &RawStage,
    name: &str,
) -> Result<(), ConfigError> {
    let Some(ttl) = &table.ttl else {
        return Ok(());
    };
    let key = format!("[stages.{name}] ttl");
    if stage.protected {
        return Err(src.error(
            ttl.span(),
            key,
            "a protected stage never expires: remove `ttl` or `protected`",
        ));
    }
    stage.ttl = Some(Ttl::parse(ttl.get_ref()).map_err(|m| src.error(ttl.span(), key, m))?);
    Ok(())
}

/// The pattern whose table `name` gets, if any: the most specific match;
/// two equally specific ones are an error naming both.
pub(super) fn best_match<'a>(
    file: &str,
    patterns: &'a [Pattern],
    name: &str,
) -> Result<Option<&'a Pattern>, ConfigError> {
    let mut matches: Vec<&Pattern> = patterns
        .iter()
        .filter(|p| glob_matches(&p.glob, name))
        .collect();
    matches.sort_by_key(|p| std::cmp::Reverse(specificity(&p.glob)));
    match matches.as_slice() {
        [first, second, ..] if specificity(&first.glob) == specificity(&second.glob) => {
            Err(ConfigError::Invalid {
                file: file.to_string(),
                line: first.line,
                key: format!("[stages.\"{}\"]", first.glob),
                message: format!(
                    "stage `{name}` matches both this pattern and `{}` (line {}) equally: \
                     make one more specific, or give `{name}` a [stages.{name}] table",
                    second.glob, second.line
                ),
            })
        }
        [first, ..] => Ok(Some(first)),
        [] => Ok(None),
    }
}

/// The stage `name` as its pattern makes it: the pattern's settings under
/// the name, which must be a valid stage name (it names the function, the
/// role and the API).
pub(super) fn stage_of(pattern: &Pattern, name: &str) -> Result<Stage, ConfigError> {
    if !super::check::is_stage_name(name) {
        return Err(ConfigError::Flag {
            flag: "--stage",
            message: format!(
                "`{name}` matches the pattern `{}`, but a stage name is 1 to {MAX_STAGE_LEN} \
                 lowercase letters, digits and `-`, starting with a letter (it becomes the \
                 function's, the role's and the API's names)",
                pattern.glob
            ),
        });
    }
    let mut stage = pattern.stage.clone();
    stage.name = name.to_string();
    stage.pattern = Some(pattern.glob.clone());
    Ok(stage)
}
