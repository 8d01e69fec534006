//! Resolution of one stage: defaults ← the file's shared tables ← the
//! stage's own table (the flags come last, in [`super::Config::stage`]),
//! and the checks that need the whole stage (its image's inputs exist).

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use super::ConfigError;
use super::check::{
    check_header_name, check_origin, check_region, check_repository_name, checked_list, in_range,
    non_empty, relative_path,
};
use super::raw::{
    RawApi, RawArchitecture, RawAuth, RawEcr, RawFile, RawFunction, RawImage, RawSmokeTest,
    RawStage, Source,
};
use super::stage::{
    ApiSpec, Architecture, Auth, EcrSpec, FunctionSpec, ImageSpec, LOG_RETENTION_DAYS,
    SmokeTestSpec, Stage,
};

pub(super) fn resolve(
    src: &Source<'_>,
    raw: &RawFile,
    name: &str,
    table: &Spanned<RawStage>,
    root: &Path,
) -> Result<Stage, ConfigError> {
    let region = match (&table.get_ref().region, &raw.app.region) {
        (Some(region), _) => (region, format!("[stages.{name}] region")),
        (None, Some(region)) => (region, "[app] region".to_string()),
        (None, None) => {
            return Err(src.error(
                table.span(),
                format!("[stages.{name}] region"),
                format!("no region: set `region` in [app] or in [stages.{name}]"),
            ));
        }
    };
    check_region(region.0.get_ref()).map_err(|m| src.error(region.0.span(), region.1, m))?;

    let mut stage = Stage::defaults(raw.app.name.get_ref(), name, region.0.get_ref());
    stage.root = root.to_path_buf();

    let own = table.get_ref();
    if let Some(protected) = &own.protected {
        stage.protected = *protected.get_ref();
        stage.protected_at =
            Some(src.setting_at(protected.span(), format!("[stages.{name}] protected")));
    }
    own_repository(src, &mut stage, own, name)?;
    let own_ecr = own.ecr.as_ref().map(|ecr| ecr.get_ref().settings());
    let prefix = format!("stages.{name}.");
    for (tables, table_prefix) in [
        (Tables::shared(raw), ""),
        (Tables::stage(own, own_ecr.as_ref()), prefix.as_str()),
    ] {
        let at = |table: &str, key: &str| format!("[{table_prefix}{table}] {key}");
        if let Some(f) = tables.function {
            apply_function(src, &mut stage.function, f, &|k| at("function", k))?;
        }
        if let Some(i) = tables.image {
            apply_image(src, &mut stage.image, i, &|k| at("image", k))?;
        }
        if let Some(e) = tables.ecr {
            apply_ecr(src, &mut stage.ecr, e, &|k| at("ecr", k))?;
        }
        if let Some(a) = tables.api {
            apply_api(src, &mut stage.api, a, &|t, k| at(t, k))?;
        }
        if let Some(s) = tables.smoke_test {
            apply_smoke_test(src, &mut stage.smoke_test, s, &|k| at("smoke-test", k))?;
        }
    }

    if let Some(profile) = &own.profile {
        if profile.get_ref().trim().is_empty() {
            return Err(src.error(
                profile.span(),
                format!("[stages.{name}] profile"),
                "must not be empty",
            ));
        }
        stage.profile = Some(profile.get_ref().clone());
    }
    if let Some(url) = &own.endpoint_url {
        let u = url.get_ref();
        let host = u
            .strip_prefix("http://")
            .or_else(|| u.strip_prefix("https://"));
        if host.is_none_or(str::is_empty) {
            return Err(src.error(
                url.span(),
                format!("[stages.{name}] endpoint-url"),
                format!("must be an http:// or https:// URL, got {u:?}"),
            ));
        }
        stage.endpoint_url = Some(u.clone());
    }
    if let Some(dummy) = &own.dummy_credentials {
        // Fixed credentials only make sense against a local emulator; never
        // let them stand in for real ones.
        if *dummy.get_ref() && stage.endpoint_url.is_none() {
            return Err(src.error(
                dummy.span(),
                format!("[stages.{name}] dummy-credentials"),
                "needs `endpoint-url` (a local emulator such as moto); real AWS needs real credentials",
            ));
        }
        stage.dummy_credentials = *dummy.get_ref();
    }
    check_paths(src, &stage, raw, table, name)?;
    check_concurrency(&stage, table, src, name)?;
    super::pattern::apply_ttl(src, &mut stage, own, name)?;
    stage.alarms = super::alarms::resolve(
        src,
        raw.alarms.as_ref(),
        own.alarms.as_ref(),
        name,
        stage.protected,
        &stage.region,
    )?;
    Ok(stage)
}

/// The stage's own repository: named by `[stages.X.ecr] repository`, or
/// `{app}-{stage}` for a protected stage. A stage in the shared repository
/// may not set `[stages.X.ecr]` keys: its lifecycle policy would rewrite
/// the other stages'.
fn own_repository(
    src: &Source<'_>,
    stage: &mut Stage,
    own: &RawStage,
    name: &str,
) -> Result<(), ConfigError> {
    let ecr = own.ecr.as_ref();
    if let Some(repository) = ecr.and_then(|ecr| ecr.get_ref().repository.as_ref()) {
        let key = format!("[stages.{name}.ecr] repository");
        check_repository_name(repository.get_ref())
            .map_err(|m| src.error(repository.span(), key.clone(), m))?;
        stage.ecr.repository = Some(repository.get_ref().clone());
        stage.ecr.own_repository_at = Some(src.setting_at(repository.span(), key));
    } else if let Some(protected) = own.protected.as_ref().filter(|p| *p.get_ref()) {
        let key = format!("[stages.{name}] protected");
        stage.ecr.own_repository_at = Some(src.setting_at(protected.span(), key));
    }
    match ecr {
        Some(ecr) if stage.ecr.own_repository_at.is_none() => Err(src.error(
            ecr.span(),
            format!("[stages.{name}.ecr]"),
            format!(
                "stage `{name}` shares the ECR repository `{}` with the other unprotected \
                 stages: set its keys in the shared [ecr] table, or give the stage a \
                 repository of its own (`repository = \"...\"` here, or `protected = true`)",
                stage.repository_name()
            ),
        )),
        _ => Ok(()),
    }
}

/// Lambda refuses provisioned concurrency beyond the function's reserved
/// concurrency ("Configuring provisioned concurrency for a function"): said
/// here, at the line that set the provisioned amount, rather than by a
/// failed `up` after the alias moved.
fn check_concurrency(
    stage: &Stage,
    table: &Spanned<RawStage>,
    src: &Source<'_>,
    name: &str,
) -> Result<(), ConfigError> {
    let function = &stage.function;
    let (provisioned, reserved) = (
        function.provisioned_concurrency,
        function.reserved_concurrency,
    );
    if reserved == 0 || provisioned <= reserved {
        return Ok(());
    }
    let message = format!(
        "{provisioned} is more than the stage's reserved-concurrency ({reserved}): Lambda \
         refuses provisioned concurrency beyond the function's reservation; raise \
         reserved-concurrency or lower this"
    );
    // The provisioned amount is above 0, so a layer set it and said where.
    Err(match &function.provisioned_at {
        Some(at) => at.error(message),
        None => src.error(
            table.span(),
            format!("[stages.{name}.function] provisioned-concurrency"),
            message,
        ),
    })
}

/// The overridable tables of one layer.
struct Tables<'a> {
    function: Option<&'a RawFunction>,
    image: Option<&'a RawImage>,
    ecr: Option<&'a RawEcr>,
    api: Option<&'a RawApi>,
    smoke_test: Option<&'a RawSmokeTest>,
}

impl<'a> Tables<'a> {
    fn shared(raw: &'a RawFile) -> Tables<'a> {
        Tables {
            function: raw.function.as_ref(),
            image: raw.image.as_ref(),
            ecr: raw.ecr.as_ref(),
            api: raw.api.as_ref(),
            smoke_test: raw.smoke_test.as_ref(),
        }
    }

    /// A stage's tables; `ecr` only for a stage with a repository of its
    /// own (`own_repository` refuses it otherwise).
    fn stage(raw: &'a RawStage, ecr: Option<&'a RawEcr>) -> Tables<'a> {
        Tables {
            function: raw.function.as_ref(),
            image: raw.image.as_ref(),
            ecr,
            api: raw.api.as_ref(),
            smoke_test: raw.smoke_test.as_ref(),
        }
    }
}

/// Lambda sets these itself and refuses functions that set them.
const RESERVED_ENV_PREFIXES: [&str; 4] = ["AWS_", "_HANDLER", "_X_AMZN", "LAMBDA_"];

fn apply_function(
    src: &Source<'_>,
    spec: &mut FunctionSpec,
    raw: &RawFunction,
    key: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    if let Some(package) = &raw.package {
        spec.package = non_empty(src, package, key("package"))?;
    }
    if let Some(binary) = &raw.binary {
        spec.binary = non_empty(src, binary, key("binary"))?;
    }
    if let Some(memory) = &raw.memory {
        spec.memory_mb = in_range(src, memory, 128, 10240, "MB", key("memory"))?;
    }
    if let Some(timeout) = &raw.timeout {
        spec.timeout_s = in_range(src, timeout, 1, 900, "seconds", key("timeout"))?;
    }
    if let Some(keep) = &raw.keep_versions {
        spec.keep_versions = in_range(src, keep, 1, 100, "versions", key("keep-versions"))?;
    }
    if let Some(architecture) = raw.architecture {
        spec.architecture = match architecture {
            RawArchitecture::X86_64 => Architecture::X86_64,
            RawArchitecture::Arm64 => Architecture::Arm64,
        };
    }
    if let Some(environment) = &raw.environment {
        for (name, value) in environment {
            let n = name.get_ref();
            let shaped = n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !shaped {
                return Err(src.error(
                    name.span(),
                    key(&format!("environment.{n}")),
                    "an environment variable name is letters, digits and `_`, not starting with a digit",
                ));
            }
            if RESERVED_ENV_PREFIXES.iter().any(|p| n.starts_with(p)) {
                return Err(src.error(
                    name.span(),
                    key(&format!("environment.{n}")),
                    "reserved by Lambda (names starting with AWS_, LAMBDA_, _HANDLER or _X_AMZN)",
                ));
            }
            spec.environment.insert(n.clone(), value.clone());
        }
    }
    if let Some(tracing) = raw.tracing {
        spec.tracing = tracing;
    }
    if let Some(days) = &raw.log_retention_days {
        let v = *days.get_ref();
        spec.log_retention_days = LOG_RETENTION_DAYS
            .into_iter()
            .find(|allowed| i64::from(*allowed) == v)
            .ok_or_else(|| {
                src.error(
                    days.span(),
                    key("log-retention-days"),
                    format!(
                        "must be one of the retentions CloudWatch Logs accepts ({}), got {v}",
                        LOG_RETENTION_DAYS.map(|d| d.to_string()).join(", ")
                    ),
                )
            })?;
    }
    for (amount, field, at, unit, name) in [
        (
            &raw.provisioned_concurrency,
            &mut spec.provisioned_concurrency,
            &mut spec.provisioned_at,
            "environments (0: none)",
            "provisioned-concurrency",
        ),
        (
            &raw.reserved_concurrency,
            &mut spec.reserved_concurrency,
            &mut spec.reserved_at,
            "executions (0: none)",
            "reserved-concurrency",
        ),
    ] {
        if let Some(amount) = amount {
            *field = in_range(src, amount, 0, i64::from(i32::MAX), unit, key(name))?;
            *at = Some(src.setting_at(amount.span(), key(name)));
        }
    }
    Ok(())
}

fn apply_image(
    src: &Source<'_>,
    spec: &mut ImageSpec,
    raw: &RawImage,
    key: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    if let Some(dir) = &raw.dockerfile_dir {
        spec.dockerfile_dir = relative_path(src, dir, key("dockerfile-dir"))?;
    }
    if let Some(base) = &raw.base_image {
        spec.base_image = non_empty(src, base, key("base-image"))?;
    }
    if let Some(include) = &raw.include {
        spec.include = include
            .iter()
            .map(|p| relative_path(src, p, key("include")))
            .collect::<Result<_, _>>()?;
    }
    // Existence is checked once the stage is resolved (`check_paths`).
    Ok(())
}

fn apply_ecr(
    src: &Source<'_>,
    spec: &mut EcrSpec,
    raw: &RawEcr,
    key: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    if let Some(days) = &raw.untagged_expire_days {
        spec.untagged_expire_days =
            in_range(src, days, 1, 3650, "days", key("untagged-expire-days"))?;
    }
    if let Some(keep) = &raw.keep_tagged {
        spec.keep_tagged = in_range(src, keep, 1, 1000, "images", key("keep-tagged"))?;
    }
    if let Some(scan) = raw.scan_on_push {
        spec.scan_on_push = scan;
    }
    if let Some(immutable) = raw.immutable_tags {
        spec.immutable_tags = immutable;
    }
    Ok(())
}

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

fn apply_api(
    src: &Source<'_>,
    spec: &mut ApiSpec,
    raw: &RawApi,
    key: &dyn Fn(&str, &str) -> String,
) -> Result<(), ConfigError> {
    if let Some(path) = &raw.path {
        let p = path.get_ref();
        let ok = !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(src.error(
                path.span(),
                key("api", "path"),
                format!("must be one path segment of letters, digits, `-`, `_` or `.` (no slashes), got {p:?}"),
            ));
        }
        spec.path = p.clone();
    }
    if let Some(methods) = &raw.methods {
        if methods.get_ref().is_empty() {
            return Err(src.error(
                methods.span(),
                key("api", "methods"),
                "must list at least one method",
            ));
        }
        let mut chosen: Vec<String> = Vec::new();
        for method in methods.get_ref() {
            let m = method.get_ref();
            if !METHODS.contains(&m.as_str()) {
                return Err(src.error(
                    method.span(),
                    key("api", "methods"),
                    format!("must be among {}, got {m:?}", METHODS.join(", ")),
                ));
            }
            if chosen.contains(m) {
                return Err(src.error(
                    method.span(),
                    key("api", "methods"),
                    format!("{m} is listed twice"),
                ));
            }
            chosen.push(m.clone());
        }
        spec.methods = chosen;
    }
    if let Some(cors) = &raw.cors {
        if let Some(origins) = &cors.allow_origins {
            spec.cors.allow_origins = checked_list(
                src,
                origins,
                key("api.cors", "allow-origins"),
                "origin (`*` for any)",
                check_origin,
            )?;
        }
        if let Some(headers) = &cors.allow_headers {
            spec.cors.allow_headers = checked_list(
                src,
                headers,
                key("api.cors", "allow-headers"),
                "header name",
                check_header_name,
            )?;
        }
    }
    if let Some(throttling) = &raw.throttling {
        if let Some(rate) = &throttling.rate_limit {
            let r = *rate.get_ref();
            if !(r.is_finite() && r > 0.0) {
                return Err(src.error(
                    rate.span(),
                    key("api.throttling", "rate-limit"),
                    format!("must be a positive number of requests per second, got {r}"),
                ));
            }
            spec.throttling.rate_limit = r;
        }
        if let Some(burst) = &throttling.burst_limit {
            spec.throttling.burst_limit = in_range(
                src,
                burst,
                1,
                i64::from(i32::MAX),
                "requests",
                key("api.throttling", "burst-limit"),
            )?;
        }
    }
    if let Some(auth) = raw.auth {
        spec.auth = match auth {
            RawAuth::None => Auth::None,
            RawAuth::ApiKey => Auth::ApiKey,
        };
    }
    if let Some(domain) = &raw.domain {
        spec.domain = Some(super::domain::resolve_domain(src, domain, &|k| {
            key("api.domain", k)
        })?);
    }
    Ok(())
}

fn apply_smoke_test(
    src: &Source<'_>,
    spec: &mut SmokeTestSpec,
    raw: &RawSmokeTest,
    key: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    if let Some(enabled) = raw.enabled {
        spec.enabled = enabled;
    }
    if let Some(public_path) = raw.public_path {
        spec.public_path = public_path;
    }
    if let Some(date) = &raw.date {
        let d = date.get_ref();
        if chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_err() {
            return Err(src.error(
                date.span(),
                key("date"),
                format!("must be a date written YYYY-MM-DD, got {d:?}"),
            ));
        }
        spec.date = d.clone();
    }
    Ok(())
}

/// The image's inputs must exist: a typo here would otherwise surface as a
/// confusing Docker error minutes into a deploy.
fn check_paths(
    src: &Source<'_>,
    stage: &Stage,
    raw: &RawFile,
    table: &Spanned<RawStage>,
    name: &str,
) -> Result<(), ConfigError> {
    // Blame the layer that set the value; for a default, the stage's table.
    let blame = |field: &dyn Fn(&RawImage) -> Option<Range<usize>>, key: &str| {
        let own = table.get_ref().image.as_ref().and_then(field);
        let shared = raw.image.as_ref().and_then(field);
        match (own, shared) {
            (Some(span), _) => (span, format!("[stages.{name}.image] {key}"), ""),
            (None, Some(span)) => (span, format!("[image] {key}"), ""),
            (None, None) => (
                table.span(),
                format!("[stages.{name}] image.{key}"),
                " (the default)",
            ),
        }
    };
    let dir = stage.root.join(&stage.image.dockerfile_dir);
    if !dir.is_dir() {
        let (span, key, default) = blame(
            &|i| i.dockerfile_dir.as_ref().map(Spanned::span),
            "dockerfile-dir",
        );
        return Err(src.error(
            span,
            key,
            format!("directory {}{default} does not exist", dir.display()),
        ));
    }
    for (index, path) in stage.image.include.iter().enumerate() {
        if !stage.root.join(path).exists() {
            let item = move |i: &RawImage| {
                i.include
                    .as_ref()
                    .and_then(|list| list.get(index))
                    .map(Spanned::span)
            };
            let (span, key, default) = blame(&item, "include");
            return Err(src.error(
                span,
                key,
                format!(
                    "{}{default} does not exist under {}",
                    path.display(),
                    stage.root.display()
                ),
            ));
        }
    }
    Ok(())
}
