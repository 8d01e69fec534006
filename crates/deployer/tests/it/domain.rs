//! A custom domain (`[api.domain]`) end to end: the real binary against
//! the local AWS, whose ACM issues a DNS-validated certificate once its
//! record is in a public hosted zone of the same moto, and whose API
//! Gateway serves a mapped domain by its `Host` header on moto's port.
//! Each test makes its own hosted zone under a unique name.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use serde_json::Value;

use crate::util::fixture::{Fixture, changes, set_in_table, texts};
use crate::util::iam_moto::IamMoto;
use crate::util::*;

/// A public hosted zone `{app}.example.com`; returns its id without the
/// `/hostedzone/` prefix.
async fn hosted_zone(config: &SdkConfig, name: &str) -> String {
    let route53 = aws_sdk_route53::Client::new(config);
    let zone = route53
        .create_hosted_zone()
        .name(name)
        .caller_reference(unique_name("zone"))
        .send()
        .await
        .unwrap();
    let id = zone.hosted_zone().unwrap().id();
    id.trim_start_matches("/hostedzone/").to_string()
}

/// Writes a record the deployer must leave alone.
async fn put_record(config: &SdkConfig, zone: &str, name: &str, kind: RrType, value: &str) {
    let route53 = aws_sdk_route53::Client::new(config);
    let set = ResourceRecordSet::builder()
        .name(name)
        .r#type(kind)
        .ttl(300)
        .resource_records(ResourceRecord::builder().value(value).build().unwrap())
        .build()
        .unwrap();
    route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(
            ChangeBatch::builder()
                .changes(
                    Change::builder()
                        .action(ChangeAction::Upsert)
                        .resource_record_set(set)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

/// `(name, type)` of every record in the zone.
async fn records(config: &SdkConfig, zone: &str) -> Vec<(String, String)> {
    let route53 = aws_sdk_route53::Client::new(config);
    let answer = route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .unwrap();
    answer
        .resource_record_sets()
        .iter()
        .map(|r| (r.name().to_string(), r.r#type().as_str().to_string()))
        .collect()
}

/// Sets the local stage's `[api.domain]` table to `keys` (TOML lines),
/// replacing any there is.
fn set_domain(fx: &Fixture, keys: &str) {
    fx.edit_config(|text| {
        let kept: String = match text.find("[stages.local.api.domain]") {
            Some(at) => text[..at].to_string(),
            None => text.to_string(),
        };
        format!("{kept}\n[stages.local.api.domain]\n{keys}\n")
    });
}

fn remove_domain(fx: &Fixture) {
    fx.edit_config(|text| match text.find("[stages.local.api.domain]") {
        Some(at) => text[..at].to_string(),
        None => text.to_string(),
    });
}

/// GET `path` on moto's port with the domain in the `Host` header, as a
/// caller resolving the domain to API Gateway would send it.
fn get_by_host(domain: &str, path: &str) -> HttpAnswer {
    call_url(
        "GET",
        &format!("{}{path}", endpoint_url().trim_end_matches('/')),
        &[("Host", domain)],
    )
}

fn assert_forecast(answer: &HttpAnswer, what: &str) {
    assert_eq!(answer.status, 200, "{what}: {answer:?}");
    assert_eq!(answer.json()["date"], "2025-10-20", "{what}: {answer:?}");
}

/// The kinds of a `status --json` answer's rows that exist.
fn existing(status: &Value) -> Vec<String> {
    status["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["exists"] == true)
        .map(|r| r["kind"].as_str().unwrap().to_string())
        .collect()
}

fn domain_kinds(answer: &Value, field: &str) -> Vec<(String, String)> {
    answer[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {answer}"))
        .iter()
        .filter(|c| {
            matches!(
                c["kind"].as_str(),
                Some(
                    "acm certificate" | "dns record" | "api domain name" | "api base path mapping"
                )
            )
        })
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_domain_in_a_hosted_zone_gets_a_certificate_serves_the_stage_and_goes_with_destroy() {
    let fx = Fixture::new("domzone");
    let _dump = DumpOnFailure::new(&fx.app);
    let config = sdk_config().await;
    let zone_name = format!("{}.example.com", fx.app);
    let zone = hosted_zone(&config, &zone_name).await;
    let keep = format!("keep.{zone_name}.");
    put_record(&config, &zone, &keep, RrType::Txt, "\"not the deployer's\"").await;
    let domain = format!("forecast.{zone_name}");

    // A zone that does not hold the name: refused before anything changes,
    // at its line, with a usage error.
    let other = hosted_zone(&config, &format!("{}.example.org", fx.app)).await;
    set_domain(
        &fx,
        &format!("name = \"{domain}\"\nhosted-zone-id = \"{other}\""),
    );
    let refused = fx.deployer(&["plan", "--stage", "local"]);
    let (_, stderr) = texts(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("deploy.toml:")
            && stderr.contains("[stages.local.api.domain] hosted-zone-id")
            && stderr.contains(&format!("{}.example.org", fx.app)),
        "{stderr}"
    );

    set_domain(
        &fx,
        &format!("name = \"{domain}\"\nhosted-zone-id = \"{zone}\""),
    );
    let plan = fx.json(&["plan", "--stage", "local", "--json"]);
    assert_eq!(
        domain_kinds(&plan, "changes"),
        [
            ("acm certificate".to_string(), "create".to_string()),
            ("dns record".into(), "create".into()),
            ("api domain name".into(), "create".into()),
            ("api base path mapping".into(), "create".into()),
            ("dns record".into(), "create".into()),
        ]
    );

    let up = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    assert_eq!(up["url"], format!("https://{domain}/predict"), "{up}");
    assert_forecast(
        &get_by_host(&domain, "/predict?date=2025-10-20"),
        "GET by Host",
    );

    // Everything in place: a second plan changes nothing of the domain.
    let again = fx.json(&["plan", "--stage", "local", "--json"]);
    let changed: Vec<String> = changes(&again)
        .into_iter()
        .filter(|c| {
            ["acm", "dns", "api domain", "api base"]
                .iter()
                .any(|k| c.starts_with(k))
        })
        .collect();
    assert!(changed.is_empty(), "{changed:?}");

    let status = fx.json(&["status", "--stage", "local", "--json"]);
    assert_eq!(
        status["url"],
        format!("https://{domain}/predict"),
        "{status}"
    );
    let shown = &status["domain"];
    assert_eq!(shown["name"], domain.as_str(), "{status}");
    assert_eq!(shown["certificate_status"], "ISSUED", "{status}");
    assert_eq!(shown["certificate_requested"], true, "{status}");
    assert!(
        shown["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("d-")),
        "{status}"
    );
    let rows = existing(&status);
    for kind in [
        "acm certificate",
        "dns record",
        "api domain name",
        "api base path mapping",
    ] {
        assert!(rows.iter().any(|k| k == kind), "{kind} not in {status}");
    }
    let text = fx.stdout(&["status", "--stage", "local"]);
    assert!(text.contains(&format!("domain    {domain} → d-")), "{text}");
    let certificate = shown["certificate_arn"].as_str().unwrap().to_string();
    let zone_records = records(&config, &zone).await;
    assert!(
        zone_records
            .iter()
            .any(|(name, kind)| name == &format!("{domain}.") && kind == "A"),
        "{zone_records:?}"
    );
    assert!(
        zone_records
            .iter()
            .any(|(name, kind)| name.ends_with(&format!(".{domain}.")) && kind == "CNAME"),
        "{zone_records:?}"
    );

    let destroyed = fx.json(&["destroy", "--stage", "local", "--yes", "--json"]);
    let removed: Vec<String> = domain_kinds(&destroyed, "removed")
        .into_iter()
        .map(|(kind, _)| kind)
        .collect();
    for kind in [
        "acm certificate",
        "dns record",
        "api domain name",
        "api base path mapping",
    ] {
        assert!(
            removed.iter().any(|k| k == kind),
            "{kind} not in {destroyed}"
        );
    }
    let apigw = aws_sdk_apigateway::Client::new(&config);
    let gone = apigw.get_domain_name().domain_name(&domain).send().await;
    assert!(gone.is_err(), "the domain name is still there: {gone:?}");
    let acm = aws_sdk_acm::Client::new(&config);
    let gone = acm
        .describe_certificate()
        .certificate_arn(&certificate)
        .send()
        .await;
    assert!(gone.is_err(), "the requested certificate is still there");
    // The zone's own records and the one someone else wrote stay.
    let mut left: Vec<String> = records(&config, &zone)
        .await
        .into_iter()
        .map(|(name, kind)| format!("{name} {kind}"))
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            format!("{zone_name}. NS"),
            format!("{zone_name}. SOA"),
            format!("{keep} TXT"),
        ]
    );
    // No domain name of that name any more: nothing serves it.
    assert_ne!(get_by_host(&domain, "/predict?date=2025-10-20").status, 200);
}

/// Requests a certificate for `domain` and validates it in `zone`, as its
/// owner would by hand; returns its ARN once ISSUED.
async fn issued_certificate(config: &SdkConfig, domain: &str, zone: &str) -> String {
    let acm = aws_sdk_acm::Client::new(config);
    let arn = acm
        .request_certificate()
        .domain_name(domain)
        .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
        .send()
        .await
        .unwrap()
        .certificate_arn()
        .unwrap()
        .to_string();
    let record = eventually("the validation record", || async {
        let answer = acm
            .describe_certificate()
            .certificate_arn(&arn)
            .send()
            .await
            .ok()?;
        let option = answer.certificate()?.domain_validation_options().first()?;
        option
            .resource_record()
            .map(|r| (r.name().to_string(), r.value().to_string()))
    })
    .await;
    put_record(config, zone, &record.0, RrType::Cname, &record.1).await;
    for _ in 0..120 {
        let answer = acm
            .describe_certificate()
            .certificate_arn(&arn)
            .send()
            .await
            .unwrap();
        let status = answer.certificate().unwrap().status().unwrap().as_str();
        if status == "ISSUED" {
            return arn;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{arn} was not issued");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_given_certificate_serves_a_base_path_and_stays_when_the_table_goes() {
    let fx = Fixture::new("domgiven");
    let _dump = DumpOnFailure::new(&fx.app);
    let config = sdk_config().await;
    let zone_name = format!("{}.example.com", fx.app);
    let zone = hosted_zone(&config, &zone_name).await;
    let domain = format!("api.{zone_name}");
    let certificate = issued_certificate(&config, &domain, &zone).await;

    // A certificate for another name: refused at its line.
    let wrong = issued_certificate(&config, &format!("other.{zone_name}"), &zone).await;
    set_domain(
        &fx,
        &format!("name = \"{domain}\"\ncertificate-arn = \"{wrong}\"\nbase-path = \"v1\""),
    );
    let refused = fx.deployer(&["plan", "--stage", "local"]);
    let (_, stderr) = texts(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("[stages.local.api.domain] certificate-arn")
            && stderr.contains(&format!("other.{zone_name}")),
        "{stderr}"
    );

    set_domain(
        &fx,
        &format!("name = \"{domain}\"\ncertificate-arn = \"{certificate}\"\nbase-path = \"v1\""),
    );
    let up = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    assert_eq!(up["url"], format!("https://{domain}/v1/predict"), "{up}");
    // Nothing of ACM's or the zone's is the deployer's with a given one.
    assert!(
        !domain_kinds(&up, "changes")
            .iter()
            .any(|(kind, _)| kind == "acm certificate" || kind == "dns record"),
        "{up}"
    );
    assert_forecast(&get_by_host(&domain, "/v1/predict?date=2025-10-20"), "/v1");
    assert_eq!(get_by_host(&domain, "/predict?date=2025-10-20").status, 403);

    // Another base path, and the zone given too: the mapping moves, the
    // alias record is written, and the domain name is tagged with the zone
    // (so its record is found once the table is gone).
    set_domain(
        &fx,
        &format!(
            "name = \"{domain}\"\ncertificate-arn = \"{certificate}\"\nbase-path = \"v2\"\n\
             hosted-zone-id = \"{zone}\""
        ),
    );
    let moved = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    let moves = domain_kinds(&moved, "changes");
    for change in [
        ("api base path mapping", "update"),
        ("api domain name", "update"),
        ("dns record", "create"),
    ] {
        assert!(
            moves.contains(&(change.0.to_string(), change.1.to_string())),
            "{change:?} not in {moved}"
        );
    }
    let alias = (format!("{domain}."), "A".to_string());
    assert!(records(&config, &zone).await.contains(&alias));
    assert_forecast(&get_by_host(&domain, "/v2/predict?date=2025-10-20"), "/v2");
    assert_eq!(
        get_by_host(&domain, "/v1/predict?date=2025-10-20").status,
        403
    );

    // The table goes: `up` removes the domain name, never the certificate.
    remove_domain(&fx);
    let removed = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    assert!(
        domain_kinds(&removed, "changes")
            .contains(&("api domain name".to_string(), "update".to_string())),
        "a delete (written as an update of `removed`) of the domain name: {removed}"
    );
    let apigw = aws_sdk_apigateway::Client::new(&config);
    assert!(
        apigw
            .get_domain_name()
            .domain_name(&domain)
            .send()
            .await
            .is_err()
    );
    // The alias record went with it; the validation record its owner wrote
    // stays.
    let left = records(&config, &zone).await;
    assert!(!left.contains(&alias), "{left:?}");
    assert!(left.iter().any(|(_, kind)| kind == "CNAME"), "{left:?}");
    let acm = aws_sdk_acm::Client::new(&config);
    let kept = acm
        .describe_certificate()
        .certificate_arn(&certificate)
        .send()
        .await
        .unwrap();
    assert_eq!(
        kept.certificate().unwrap().status().unwrap().as_str(),
        "ISSUED"
    );
    fx.json(&["destroy", "--stage", "local", "--yes", "--json"]);
    acm.describe_certificate()
        .certificate_arn(&certificate)
        .send()
        .await
        .expect("destroy deleted the given certificate");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_printed_policy_covers_a_domain_s_whole_life() {
    let fx = Fixture::new("dompol");
    let _dump = DumpOnFailure::new(&fx.app);
    let zone_name = format!("{}.example.com", fx.app);
    let domain = format!("forecast.{zone_name}");
    // The zone's id is Route 53's to pick, and the policy names it: the
    // user starts with next to nothing; the administrator makes the zone,
    // then gives the user the policy printed for it.
    let nothing = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}
    ]});
    let moto = IamMoto::start(&nothing.to_string()).await;
    fx.edit_config(|text| {
        let text = set_in_table(text, "stages.local", "dummy-credentials", "false");
        set_in_table(
            &text,
            "stages.local",
            "endpoint-url",
            &format!("\"{}\"", moto.moto.url),
        )
    });
    let zone = moto.as_admin(|admin| async move { hosted_zone(&admin, &zone_name).await });
    set_domain(
        &fx,
        &format!("name = \"{domain}\"\nhosted-zone-id = \"{zone}\""),
    );
    let printed = fx.stdout(&["policy", "--stage", "local", "--account", ACCOUNT]);
    moto.as_admin(|admin| {
        let printed = printed.clone();
        async move {
            aws_sdk_iam::Client::new(&admin)
                .put_user_policy()
                .user_name("ci")
                .policy_name("deployer")
                .policy_document(printed)
                .send()
                .await
                .unwrap();
        }
    });

    for args in [
        &["up", "--stage", "local", "--yes"][..],
        &["status", "--stage", "local"],
        &["destroy", "--stage", "local", "--yes"],
    ] {
        let out = moto.deployer(&fx, args);
        let (stdout, stderr) = texts(&out);
        assert!(
            out.status.success(),
            "`{args:?}` failed under the printed policy\npolicy: {printed}\nstdout:\n{stdout}\n\
             stderr:\n{stderr}"
        );
    }
    let (used, denied) = moto.decisions();
    assert!(denied.is_empty(), "moto denied: {denied:#?}");
    for action in [
        "acm:RequestCertificate",
        "acm:DescribeCertificate",
        "acm:DeleteCertificate",
        "route53:ChangeResourceRecordSets",
        "route53:GetChange",
        "route53:GetHostedZone",
    ] {
        assert!(used.contains(action), "{action} not used: {used:?}");
    }
    let decisions = moto.allowed_decisions();
    let domain_arn = format!("arn:aws:apigateway:{}::/domainnames", region());
    assert!(
        decisions
            .iter()
            .any(|(a, r)| a == "apigateway:POST" && r == &domain_arn),
        "no CreateDomainName: {decisions:?}"
    );
    assert!(
        decisions
            .iter()
            .any(|(a, r)| a == "apigateway:DELETE" && r.starts_with(&format!("{domain_arn}/"))),
        "no DeleteDomainName: {decisions:?}"
    );
}
