//! `[api.domain]`: the stage's custom domain name, its certificate (given
//! by ARN, or requested from ACM and validated through a hosted zone), the
//! zone, and the base path the stage is mapped under. Each value is checked
//! here, at its line; what only AWS can tell (the certificate's names and
//! state, the zone's name) is checked by `up` and `plan` before anything
//! changes (`stage::domain`), naming the same line.

use toml::Spanned;

use super::ConfigError;
use super::raw::{RawDomain, Source};
use super::stage::DomainSpec;

/// A DNS name as API Gateway and ACM take it ("CreateDomainName": a
/// domain name; "RequestCertificate", `DomainName`: up to 253 characters,
/// labels of up to 63): lower-case letters, digits and `-` per label, two
/// labels at least, no wildcard (a custom domain name serves one name).
pub(super) fn check_domain_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err(format!(
            "must be a DNS name of 1 to 253 characters, got {name:?}"
        ));
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err(format!(
            "must be a fully qualified name such as forecast.example.com, got {name:?}"
        ));
    }
    for label in labels {
        let shaped = !label.is_empty()
            && label.len() <= 63
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !shaped {
            return Err(format!(
                "each label of the name is 1 to 63 lower-case letters, digits and `-` (not at \
                 either end), no wildcard and no trailing dot; got {name:?}"
            ));
        }
    }
    Ok(())
}

/// `arn:{partition}:acm:{region}:{account}:certificate/{id}`.
fn check_certificate_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let shaped = parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "acm"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5]
            .strip_prefix("certificate/")
            .is_some_and(|id| !id.is_empty());
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "must be an ACM certificate ARN (`arn:<partition>:acm:<region>:<account>:certificate/<id>`), got {arn:?}"
        ))
    }
}

/// The region of a certificate ARN that passed [`check_certificate_arn`].
pub fn certificate_region(arn: &str) -> &str {
    arn.split(':').nth(3).unwrap_or_default()
}

/// A Route 53 hosted zone ID (`Z0123456789ABC`), with or without the
/// `/hostedzone/` prefix the API answers it with; returned without.
fn check_hosted_zone_id(id: &str) -> Result<String, String> {
    let bare = id.strip_prefix("/hostedzone/").unwrap_or(id);
    let shaped = !bare.is_empty()
        && bare.len() <= 32
        && bare
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if shaped {
        Ok(bare.to_string())
    } else {
        Err(format!(
            "must be a Route 53 hosted zone ID (upper-case letters and digits, such as \
             Z0123456789ABCDEFGHIJ), got {id:?}"
        ))
    }
}

/// One path segment of letters, digits, `-`, `_` and `.` ("CreateBasePathMapping":
/// the base path must not contain `/` here; `(none)` is written by leaving
/// the key out).
fn check_base_path(path: &str) -> Result<(), String> {
    let shaped = !path.is_empty()
        && path.len() <= 128
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if shaped {
        Ok(())
    } else {
        Err(format!(
            "must be one path segment of letters, digits, `-`, `_` or `.` (leave it out to \
             serve the stage at the domain's root), got {path:?}"
        ))
    }
}

pub(super) fn resolve_domain(
    src: &Source<'_>,
    raw: &Spanned<RawDomain>,
    key: &dyn Fn(&str) -> String,
) -> Result<DomainSpec, ConfigError> {
    let table = raw.get_ref();
    let checked =
        |value: &Spanned<String>, name: &str, check: &dyn Fn(&str) -> Result<(), String>| {
            check(value.get_ref()).map_err(|m| src.error(value.span(), key(name), m))
        };
    let name = &table.name;
    checked(name, "name", &check_domain_name)?;
    if let Some(arn) = &table.certificate_arn {
        checked(arn, "certificate-arn", &check_certificate_arn)?;
    }
    let hosted_zone_id = match &table.hosted_zone_id {
        Some(id) => Some(
            check_hosted_zone_id(id.get_ref())
                .map_err(|m| src.error(id.span(), key("hosted-zone-id"), m))?,
        ),
        None => None,
    };
    if let Some(path) = &table.base_path {
        checked(path, "base-path", &check_base_path)?;
    }
    if table.certificate_arn.is_none() && hosted_zone_id.is_none() {
        return Err(src.error(
            raw.span(),
            key("certificate-arn"),
            "set `certificate-arn` (an ISSUED ACM certificate for the name, in the stage's \
             region) or `hosted-zone-id` (the public Route 53 zone of the name: the deployer \
             then requests the certificate and validates it by DNS)",
        ));
    }
    Ok(DomainSpec {
        name: name.get_ref().clone(),
        certificate_arn: table.certificate_arn.as_ref().map(|a| a.get_ref().clone()),
        hosted_zone_id,
        base_path: table.base_path.as_ref().map(|p| p.get_ref().clone()),
        at: src.setting_at(name.span(), key("name")),
        certificate_at: table
            .certificate_arn
            .as_ref()
            .map(|a| src.setting_at(a.span(), key("certificate-arn"))),
        hosted_zone_at: table
            .hosted_zone_id
            .as_ref()
            .map(|z| src.setting_at(z.span(), key("hosted-zone-id"))),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Config, Overrides};

    const APP: &str = "[app]\nname = \"app\"\nregion = \"us-east-1\"\n";

    fn parse(text: &str) -> Result<super::super::Stage, String> {
        let root = tempfile::tempdir().unwrap();
        for sub in ["lambda-image", "models", "data"] {
            std::fs::create_dir(root.path().join(sub)).unwrap();
        }
        Config::parse(text, "deploy.toml", root.path())
            .and_then(|config| config.stage("prod", &Overrides::default()))
            .map_err(|err| err.to_string())
    }

    #[test]
    fn a_domain_is_read_with_its_lines() {
        let stage = parse(&format!(
            "{APP}[stages.prod]\n[stages.prod.api.domain]\nname = \"forecast.example.com\"\n\
             hosted-zone-id = \"/hostedzone/Z0123ABC\"\nbase-path = \"v1\"\n"
        ))
        .unwrap();
        let domain = stage.api.domain.unwrap();
        assert_eq!(domain.name, "forecast.example.com");
        // The API's own prefix is taken off.
        assert_eq!(domain.hosted_zone_id.as_deref(), Some("Z0123ABC"));
        assert_eq!(domain.base_path.as_deref(), Some("v1"));
        assert_eq!(domain.certificate_arn, None);
        let at = domain.hosted_zone_at.unwrap();
        assert_eq!(
            (at.line, at.key.as_str()),
            (7, "[stages.prod.api.domain] hosted-zone-id")
        );
        // Without the table: no domain, as the defaults of dev and local.
        assert_eq!(
            parse(&format!("{APP}[stages.prod]\n")).unwrap().api.domain,
            None
        );
    }

    #[test]
    fn every_bad_domain_value_names_its_line_and_key() {
        let table = "[stages.prod]\n[stages.prod.api.domain]\n";
        let cases = [
            (
                "name = \"Forecast.example.com\"\nhosted-zone-id = \"Z1\"\n",
                "deploy.toml:6: [stages.prod.api.domain] name: each label",
            ),
            (
                "name = \"localhost\"\nhosted-zone-id = \"Z1\"\n",
                "deploy.toml:6: [stages.prod.api.domain] name: must be a fully qualified name",
            ),
            (
                "name = \"*.example.com\"\nhosted-zone-id = \"Z1\"\n",
                "deploy.toml:6: [stages.prod.api.domain] name: each label",
            ),
            (
                "name = \"f.example.com\"\ncertificate-arn = \"arn:aws:iam::123456789012:role/x\"\n",
                "deploy.toml:7: [stages.prod.api.domain] certificate-arn: must be an ACM certificate ARN",
            ),
            (
                "name = \"f.example.com\"\nhosted-zone-id = \"z-lower\"\n",
                "deploy.toml:7: [stages.prod.api.domain] hosted-zone-id: must be a Route 53 hosted zone ID",
            ),
            (
                "name = \"f.example.com\"\nhosted-zone-id = \"Z1\"\nbase-path = \"v1/x\"\n",
                "deploy.toml:8: [stages.prod.api.domain] base-path: must be one path segment",
            ),
            (
                "name = \"f.example.com\"\n",
                "deploy.toml:5: [stages.prod.api.domain] certificate-arn: set `certificate-arn`",
            ),
            (
                "name = \"f.example.com\"\nzone = \"Z1\"\n",
                "deploy.toml:7: [stages.prod.api.domain] zone: unknown field `zone`",
            ),
        ];
        for (keys, expected) in cases {
            let text = format!("{APP}{table}{keys}");
            let err = parse(&text).map(|_| ()).unwrap_err();
            assert!(
                err.starts_with(expected),
                "{text}\n→ {err}\nexpected {expected}"
            );
        }
    }
}
