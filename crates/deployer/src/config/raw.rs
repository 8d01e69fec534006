//! The file as written: serde structs that keep every validated value's
//! span, and [`Source`], which turns a span (or toml's own error) into a
//! `file:line: key` [`ConfigError`].

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use super::stage::SettingAt;

/// The text being parsed, to turn spans into `file:line: key` errors.
pub(super) struct Source<'a> {
    pub(super) file: &'a str,
    pub(super) text: &'a str,
}

impl Source<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    pub(super) fn error(
        &self,
        span: Range<usize>,
        key: String,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_string(),
            line: self.line_of(span.start),
            key,
            message: message.into(),
        }
    }

    /// Where the value at `span` is, named `key`.
    pub(super) fn setting_at(&self, span: Range<usize>, key: String) -> SettingAt {
        SettingAt {
            file: self.file.to_string(),
            line: self.line_of(span.start),
            key,
        }
    }

    /// A serde or syntax error from toml, placed at its key.
    pub(super) fn toml_error(&self, err: &toml::de::Error) -> ConfigError {
        let span = err.span().unwrap_or(0..0);
        let message = err.message().trim_end();
        let key = if message.starts_with("missing field") {
            // The span is the table that lacks the field: name that table.
            table_at(self.text, &span).map(|path| format!("[{}]", path.join(".")))
        } else {
            key_at(self.text, span.start)
                .map(|path| display_key(&path))
                .or_else(|| self.key_text(&span))
        };
        self.error(span, key.unwrap_or_default(), message)
    }

    /// When the document does not parse (a duplicate key, ...), the key is
    /// the text at the span, under the last `[table]` header above it.
    fn key_text(&self, span: &Range<usize>) -> Option<String> {
        let text = self.text.get(span.clone())?.trim();
        let bare = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !bare {
            return None;
        }
        let header = self.text[..span.start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|line| line.starts_with('['));
        Some(match header {
            Some(header) => format!("{header} {text}"),
            None => text.to_string(),
        })
    }
}

/// The dotted path of the deepest key whose name or value covers `offset`.
fn key_at(text: &str, offset: usize) -> Option<Vec<String>> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut best = None;
    deepest_key(doc.get_ref(), offset, &mut Vec::new(), &mut best);
    best
}

/// The path of the table whose span is exactly `span`; `None` for the
/// document itself.
fn table_at(text: &str, span: &Range<usize>) -> Option<Vec<String>> {
    fn find(
        table: &toml::de::DeTable<'_>,
        span: &Range<usize>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        for (key, value) in table {
            path.push(key.get_ref().to_string());
            if let toml::de::DeValue::Table(inner) = value.get_ref() {
                if value.span() == *span {
                    return Some(path.clone());
                }
                if let Some(found) = find(inner, span, path) {
                    return Some(found);
                }
            }
            path.pop();
        }
        None
    }
    let doc = toml::de::DeTable::parse(text).ok()?;
    find(doc.get_ref(), span, &mut Vec::new())
}

fn deepest_key(
    table: &toml::de::DeTable<'_>,
    offset: usize,
    path: &mut Vec<String>,
    best: &mut Option<Vec<String>>,
) {
    for (key, value) in table {
        path.push(key.get_ref().to_string());
        let covers =
            |span: Range<usize>| span.start <= offset && offset < span.end.max(span.start + 1);
        let deeper = best.as_ref().is_none_or(|b| b.len() < path.len());
        if deeper && (covers(key.span()) || covers(value.span())) {
            *best = Some(path.clone());
        }
        // Tables made by `[a.b]` headers need not lie inside their parent's
        // span, so every table is searched.
        match value.get_ref() {
            toml::de::DeValue::Table(inner) => deepest_key(inner, offset, path, best),
            toml::de::DeValue::Array(items) => {
                for item in items.iter() {
                    if let toml::de::DeValue::Table(inner) = item.get_ref() {
                        deepest_key(inner, offset, path, best);
                    }
                }
            }
            _ => {}
        }
        path.pop();
    }
}

/// `["stages", "prod", "function", "memory"]` → `[stages.prod.function] memory`.
fn display_key(path: &[String]) -> String {
    match path.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, tables)) => format!("[{}] {last}", tables.join(".")),
    }
}

// ---------------------------------------------------------------------------
// The file as written. Keys are kebab-case; every table is optional except
// `[app]`, and every field within a table is optional so that a stage table
// overrides only what it names.

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a deploy.toml document"
)]
pub(super) struct RawFile {
    pub(super) app: RawApp,
    pub(super) function: Option<RawFunction>,
    pub(super) image: Option<RawImage>,
    pub(super) ecr: Option<RawEcr>,
    pub(super) api: Option<RawApi>,
    pub(super) smoke_test: Option<RawSmokeTest>,
    #[serde(default)]
    pub(super) stages: BTreeMap<Spanned<String>, Spanned<RawStage>>,
    pub(super) alarms: Option<super::alarms::RawAlarms>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a table with `name` and `region`"
)]
pub(super) struct RawApp {
    pub(super) name: Spanned<String>,
    pub(super) region: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a stage table"
)]
pub(super) struct RawStage {
    pub(super) region: Option<Spanned<String>>,
    pub(super) profile: Option<Spanned<String>>,
    pub(super) endpoint_url: Option<Spanned<String>>,
    pub(super) dummy_credentials: Option<Spanned<bool>>,
    pub(super) protected: Option<Spanned<bool>>,
    pub(super) function: Option<RawFunction>,
    pub(super) image: Option<RawImage>,
    /// Only for a stage with a repository of its own (its `repository`
    /// key, or `protected`); spanned to refuse it at its line otherwise.
    pub(super) ecr: Option<Spanned<RawStageEcr>>,
    pub(super) api: Option<RawApi>,
    pub(super) smoke_test: Option<RawSmokeTest>,
    /// How long the stage lives after its last deployment (`7d`, `12h`):
    /// `deployer prune` removes it then.
    pub(super) ttl: Option<Spanned<String>>,
    pub(super) alarms: Option<super::alarms::RawAlarms>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a [function] table"
)]
pub(super) struct RawFunction {
    pub(super) package: Option<Spanned<String>>,
    pub(super) binary: Option<Spanned<String>>,
    pub(super) memory: Option<Spanned<i64>>,
    pub(super) timeout: Option<Spanned<i64>>,
    pub(super) architecture: Option<RawArchitecture>,
    pub(super) environment: Option<BTreeMap<Spanned<String>, String>>,
    pub(super) tracing: Option<bool>,
    pub(super) log_retention_days: Option<Spanned<i64>>,
    pub(super) provisioned_concurrency: Option<Spanned<i64>>,
    pub(super) reserved_concurrency: Option<Spanned<i64>>,
    pub(super) keep_versions: Option<Spanned<i64>>,
}

#[derive(Deserialize, Clone, Copy)]
pub(super) enum RawArchitecture {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "an [image] table"
)]
pub(super) struct RawImage {
    pub(super) dockerfile_dir: Option<Spanned<String>>,
    pub(super) base_image: Option<Spanned<String>>,
    pub(super) include: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "an [ecr] table"
)]
pub(super) struct RawEcr {
    pub(super) untagged_expire_days: Option<Spanned<i64>>,
    pub(super) keep_tagged: Option<Spanned<i64>>,
    pub(super) scan_on_push: Option<bool>,
    pub(super) immutable_tags: Option<bool>,
}

/// A stage's `[stages.X.ecr]`: the shared table's keys and the name of
/// the stage's own repository.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "an [ecr] table"
)]
pub(super) struct RawStageEcr {
    pub(super) repository: Option<Spanned<String>>,
    pub(super) untagged_expire_days: Option<Spanned<i64>>,
    pub(super) keep_tagged: Option<Spanned<i64>>,
    pub(super) scan_on_push: Option<bool>,
    pub(super) immutable_tags: Option<bool>,
}

impl RawStageEcr {
    /// The keys the shared `[ecr]` table has too.
    pub(super) fn settings(&self) -> RawEcr {
        RawEcr {
            untagged_expire_days: self.untagged_expire_days.clone(),
            keep_tagged: self.keep_tagged.clone(),
            scan_on_push: self.scan_on_push,
            immutable_tags: self.immutable_tags,
        }
    }
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "an [api] table"
)]
pub(super) struct RawApi {
    pub(super) path: Option<Spanned<String>>,
    pub(super) methods: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) cors: Option<RawCors>,
    pub(super) throttling: Option<RawThrottling>,
    pub(super) auth: Option<RawAuth>,
    pub(super) domain: Option<Spanned<RawDomain>>,
}

/// `[api.domain]`: the stage's custom domain name.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "an [api.domain] table"
)]
pub(super) struct RawDomain {
    pub(super) name: Spanned<String>,
    pub(super) certificate_arn: Option<Spanned<String>>,
    pub(super) hosted_zone_id: Option<Spanned<String>>,
    pub(super) base_path: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a [cors] table"
)]
pub(super) struct RawCors {
    pub(super) allow_origins: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) allow_headers: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a [throttling] table"
)]
pub(super) struct RawThrottling {
    pub(super) rate_limit: Option<Spanned<f64>>,
    pub(super) burst_limit: Option<Spanned<i64>>,
}

#[derive(Deserialize, Clone, Copy)]
pub(super) enum RawAuth {
    #[serde(rename = "none")]
    None,
    #[serde(rename = "api_key")]
    ApiKey,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a [smoke-test] table"
)]
pub(super) struct RawSmokeTest {
    pub(super) enabled: Option<bool>,
    pub(super) date: Option<Spanned<String>>,
    pub(super) public_path: Option<bool>,
}
