//! Checks of single values, each turning a bad one into a `file:line: key`
//! error at the value's span: names, regions, origins, header names, paths
//! and ranges.

use std::path::PathBuf;

use toml::Spanned;

use super::raw::Source;
use super::{ConfigError, MAX_APP_LEN, MAX_STAGE_LEN};

pub(super) fn check_app_name(src: &Source<'_>, name: &Spanned<String>) -> Result<(), ConfigError> {
    let n = name.get_ref();
    let key = "[app] name".to_string();
    if n.is_empty() {
        return Err(src.error(name.span(), key, "must not be empty"));
    }
    if !is_lower_name(n) {
        return Err(src.error(
            name.span(),
            key,
            format!("must be lowercase letters, digits and `-`, starting with a letter, got {n:?}"),
        ));
    }
    // The name is the ECR repository's: CreateRepository wants 2 to 256
    // characters matching `[a-z0-9]+(?:[._-][a-z0-9]+)*` ("CreateRepository",
    // Amazon ECR API Reference), so no `-` at the end and no `--`.
    if n.len() < 2 || n.ends_with('-') || n.contains("--") {
        return Err(src.error(
            name.span(),
            key,
            format!(
                "must be at least 2 characters, not end with `-` and hold no `--`: it names the ECR repository, got {n:?}"
            ),
        ));
    }
    if n.len() > MAX_APP_LEN {
        return Err(src.error(
            name.span(),
            key,
            format!(
                "must be at most {MAX_APP_LEN} characters so that `{{app}}-{{stage}}-exec` fits IAM's 64-character role names, got {}",
                n.len()
            ),
        ));
    }
    Ok(())
}

pub(super) fn check_stage_name(
    src: &Source<'_>,
    name: &Spanned<String>,
) -> Result<(), ConfigError> {
    let n = name.get_ref();
    if !is_stage_name(n) {
        return Err(src.error(
            name.span(),
            format!("[stages] {n}"),
            format!(
                "a stage name is 1 to {MAX_STAGE_LEN} lowercase letters, digits and `-`, starting with a letter"
            ),
        ));
    }
    Ok(())
}

/// 1 to [`MAX_STAGE_LEN`] of `[a-z][a-z0-9-]*`: what every name made from
/// a stage's fits.
pub(super) fn is_stage_name(name: &str) -> bool {
    is_lower_name(name) && name.len() <= MAX_STAGE_LEN
}

/// An ECR repository name: 2 to 256 characters, path components of
/// lowercase letters and digits separated by single `.`, `_` or `-`,
/// joined by `/` (CreateRepository's `repositoryName`, Amazon ECR API
/// Reference: `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`).
pub(super) fn check_repository_name(name: &str) -> Result<(), String> {
    let component = |c: &str| {
        !c.is_empty()
            && c.split(['.', '_', '-']).all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            })
    };
    if (2..=256).contains(&name.len()) && name.split('/').all(component) {
        Ok(())
    } else {
        Err(format!(
            "must be an ECR repository name: 2 to 256 lowercase letters and digits, \
             separated by single `.`, `_`, `-` or `/`, got {name:?}"
        ))
    }
}

/// `[a-z][a-z0-9-]*`
fn is_lower_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The shape of an AWS region: `us-east-1`, `ap-southeast-2`, `us-gov-west-1`.
pub fn check_region(region: &str) -> Result<(), String> {
    let parts: Vec<&str> = region.split('-').collect();
    let shaped = parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts.last().is_some_and(|n| {
            !n.is_empty() && n.len() <= 2 && n.chars().all(|c| c.is_ascii_digit())
        });
    if !shaped {
        return Err(format!(
            "must be an AWS region such as us-east-1, got {region:?}"
        ));
    }
    // The isolated partitions (us-iso-east-1, us-isob-east-1, eu-isoe-west-1,
    // ...) have their own ARN prefixes and endpoint domains, which the
    // deployer does not know (`crate::names` knows aws, aws-cn, aws-us-gov).
    if parts[1].starts_with("iso") {
        return Err(format!(
            "{region:?} is in an isolated AWS partition, which the deployer does not support (only the aws, aws-cn and aws-us-gov partitions)"
        ));
    }
    Ok(())
}

pub(super) fn non_empty(
    src: &Source<'_>,
    value: &Spanned<String>,
    key: String,
) -> Result<String, ConfigError> {
    if value.get_ref().trim().is_empty() {
        return Err(src.error(value.span(), key, "must not be empty"));
    }
    Ok(value.get_ref().clone())
}

/// A non-empty list whose every item passes `check` (which says what is
/// wrong with one item). The items become header values, the function's
/// environment and API Gateway's quoted mapping values, so anything that
/// could break out of those is refused here.
pub(super) fn checked_list(
    src: &Source<'_>,
    values: &Spanned<Vec<Spanned<String>>>,
    key: String,
    what: &str,
    check: fn(&str) -> Result<(), String>,
) -> Result<Vec<String>, ConfigError> {
    if values.get_ref().is_empty() {
        return Err(src.error(values.span(), key, format!("must list at least one {what}")));
    }
    values
        .get_ref()
        .iter()
        .map(|value| {
            check(value.get_ref())
                .map(|()| value.get_ref().clone())
                .map_err(|message| src.error(value.span(), key.clone(), message))
        })
        .collect()
}

/// `*`, or `scheme://host[:port]` as a browser sends it in `Origin`: no
/// path, no trailing slash.
pub(super) fn check_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    let shaped = host.is_some_and(|host| {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    });
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "must be `*` or an origin such as https://app.example.com (scheme, host and port, no path), got {origin:?}"
        ))
    }
}

/// An HTTP header name (letters, digits, `-`, `_`), or `*`.
pub(super) fn check_header_name(name: &str) -> Result<(), String> {
    let shaped = name == "*"
        || (!name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')));
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "must be a header name of letters, digits, `-` and `_` (or `*`), got {name:?}"
        ))
    }
}

/// A path inside the workspace: relative, and not climbing out of it.
pub(super) fn relative_path(
    src: &Source<'_>,
    value: &Spanned<String>,
    key: String,
) -> Result<PathBuf, ConfigError> {
    let path = PathBuf::from(value.get_ref());
    let inside = !value.get_ref().is_empty()
        && path.components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        });
    if !inside {
        return Err(src.error(
            value.span(),
            key,
            format!(
                "must be a relative path inside the workspace, got {:?}",
                value.get_ref()
            ),
        ));
    }
    Ok(path)
}

pub(super) fn in_range<T: TryFrom<i64>>(
    src: &Source<'_>,
    value: &Spanned<i64>,
    min: i64,
    max: i64,
    unit: &str,
    key: String,
) -> Result<T, ConfigError> {
    let v = *value.get_ref();
    let out_of_range = || {
        src.error(
            value.span(),
            key.clone(),
            format!("must be between {min} and {max} {unit}, got {v}"),
        )
    };
    if !(min..=max).contains(&v) {
        return Err(out_of_range());
    }
    T::try_from(v).map_err(|_| out_of_range())
}
