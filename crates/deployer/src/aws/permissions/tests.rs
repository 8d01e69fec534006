//! The policy's shape, and the test that keeps the declarations in step
//! with the code: every SDK call under `src/aws/` is declared in its file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::*;
use crate::aws::declared;
use crate::config::Stage;

/// Names an SDK client is held under in `aws/` (`client.get_role()`,
/// `sts.get_caller_identity()`, `clients.lambda.invoke()`).
const RECEIVERS: &[&str] = &[
    "client",
    "sts",
    "ecr",
    "iam",
    "lambda",
    "apigw",
    "logs",
    "cloudwatch",
    "sns",
];
/// Methods of a client that are not AWS operations.
const NOT_OPERATIONS: &[&str] = &["clone", "config"];

fn aws_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/aws")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `get_function` → `GetFunction`.
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The operations `source` calls on a client: `<receiver> . <op> ()`,
/// across line breaks, outside comments and outside `#[cfg(test)]` code
/// (which the tests' own files hold, never `aws/`'s production files).
fn operations_called(source: &str) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let code = match code.find("#[cfg(test)]") {
        Some(at) => &code[..at],
        None => &code,
    };
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut found = BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        if !is_ident(bytes[i]) || (i > 0 && is_ident(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        if !RECEIVERS.contains(&&code[start..i]) {
            continue;
        }
        let mut j = i;
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        if bytes.get(j) != Some(&b'.') {
            continue;
        }
        j += 1;
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        let op_start = j;
        while j < bytes.len() && is_ident(bytes[j]) {
            j += 1;
        }
        let op = &code[op_start..j];
        if !op.is_empty() && code[j..].starts_with("()") && !NOT_OPERATIONS.contains(&op) {
            found.insert(pascal(op));
        }
    }
    found
}

/// The declared operations, by file name relative to `src/aws/`.
fn declared_by_file() -> BTreeMap<String, BTreeSet<&'static str>> {
    let mut by_file: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    for declared in declared() {
        let (_, rel) = declared
            .file
            .split_once("src/aws/")
            .unwrap_or_else(|| panic!("{} is not under src/aws/", declared.file));
        let ops = by_file.entry(rel.to_string()).or_default();
        ops.extend(declared.permissions.iter().filter_map(|p| p.operation));
    }
    by_file
}

#[test]
fn every_sdk_call_is_declared_in_its_file() {
    let declared = declared_by_file();
    let mut files = Vec::new();
    rust_files(&aws_dir(), &mut files);
    let mut missing = Vec::new();
    let mut called_anywhere = BTreeSet::new();
    for path in &files {
        let rel = path
            .strip_prefix(aws_dir())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let called = operations_called(&std::fs::read_to_string(path).unwrap());
        let mine = declared.get(&rel).cloned().unwrap_or_default();
        for op in &called {
            if !mine.contains(op.as_str()) {
                missing.push(format!("{rel}: {op}"));
            }
        }
        called_anywhere.extend(called);
    }
    assert!(
        missing.is_empty(),
        "SDK calls without their IAM action: declare each in the file's PERMISSIONS \
         (aws::permissions), and a new file in its module's list:\n  {}",
        missing.join("\n  ")
    );
    // Sanity of the scan itself: it must see the calls it is there to see.
    assert!(called_anywhere.contains("GetFunction") && called_anywhere.contains("CreateRole"));
    let stale: Vec<String> = declared
        .iter()
        .flat_map(|(file, ops)| ops.iter().map(move |op| (file, op)))
        .filter(|(_, op)| !called_anywhere.contains(**op))
        .map(|(file, op)| format!("{file}: {op}"))
        .collect();
    assert!(
        stale.is_empty(),
        "declared operations no code calls (remove them):\n  {}",
        stale.join("\n  ")
    );
}

#[test]
fn the_scan_finds_calls_across_lines_and_skips_comments() {
    let source = "let a = client\n    .get_role()\n    .send();\n\
                  // client.delete_role() in a comment\n\
                  let b = clients.lambda.invoke().send();\nlet c = client.clone();\n\
                  #[cfg(test)]\nmod tests { fn t() { client.tag_role(); } }";
    let found: Vec<String> = operations_called(source).into_iter().collect();
    assert_eq!(found, ["GetRole", "Invoke"]);
}

fn target(region: &str, stage: &str) -> Names {
    Names::new(&Stage::defaults("shop", stage, region), "123456789012")
}

fn statement<'a>(policy: &'a PolicyDocument, sid: &str) -> &'a Statement {
    policy
        .statement
        .iter()
        .find(|s| s.sid == sid)
        .unwrap_or_else(|| panic!("no statement {sid} in {policy:#?}"))
}

#[test]
fn resources_are_the_stages_own_and_star_only_where_aws_needs_it() {
    let policy = policy(&[target("eu-west-1", "prod")], &declared());
    let star: BTreeSet<&str> = policy
        .statement
        .iter()
        .filter(|s| s.resource.iter().any(|r| r == "*"))
        .flat_map(|s| s.action.iter().copied())
        .collect();
    assert_eq!(
        star,
        BTreeSet::from([
            "cloudwatch:GetMetricData",
            "ecr:GetAuthorizationToken",
            "lambda:GetAccountSettings",
            "lambda:ListFunctions",
            "logs:DescribeLogGroups",
            "logs:GetQueryResults",
            "logs:StopQuery",
            "sns:Unsubscribe"
        ])
    );
    let function = statement(&policy, "LambdaFunction");
    assert_eq!(
        function.resource,
        [
            "arn:aws:lambda:eu-west-1:123456789012:function:shop-prod",
            "arn:aws:lambda:eu-west-1:123456789012:function:shop-prod:*",
        ]
    );
    assert!(function.action.contains(&"lambda:InvokeFunction"));
    for s in &policy.statement {
        assert!(!s.action.is_empty() && !s.resource.is_empty(), "{s:?}");
        assert!(
            s.resource.iter().all(|r| r == "*"
                || r.contains(":apigateway:eu-west-1::/")
                || r.contains(":123456789012:")),
            "a resource outside the account: {s:?}"
        );
    }
    let sids: BTreeSet<&str> = policy.statement.iter().map(|s| s.sid).collect();
    assert_eq!(sids.len(), policy.statement.len(), "Sids are unique");
}

#[test]
fn pass_role_is_the_execution_role_and_only_to_lambda() {
    let policy = policy(&[target("us-east-1", "dev")], &declared());
    let pass: Vec<&Statement> = policy
        .statement
        .iter()
        .filter(|s| s.action.contains(&"iam:PassRole"))
        .collect();
    assert_eq!(pass.len(), 1);
    assert_eq!(pass[0].action, ["iam:PassRole"]);
    assert_eq!(
        pass[0].resource,
        ["arn:aws:iam::123456789012:role/shop-dev-exec"]
    );
    assert_eq!(
        pass[0].condition,
        Some(serde_json::json!({
            "StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}
        }))
    );
    let attach = statement(&policy, "IamAttachManagedPolicies");
    assert_eq!(attach.action, ["iam:AttachRolePolicy"]);
    let arns = &attach.condition.as_ref().unwrap()["ArnEquals"]["iam:PolicyARN"];
    assert_eq!(arns.as_array().map(Vec::len), Some(2), "{arns}");
}

#[test]
fn several_stages_share_statements_and_partitions_follow_regions() {
    let policy = policy(
        &[target("cn-north-1", "prod"), target("cn-north-1", "dev")],
        &declared(),
    );
    let role = statement(&policy, "IamExecutionRole");
    assert_eq!(
        role.resource,
        [
            "arn:aws-cn:iam::123456789012:role/shop-dev-exec",
            "arn:aws-cn:iam::123456789012:role/shop-prod-exec",
        ]
    );
    let repository = statement(&policy, "EcrRepository");
    assert_eq!(
        repository.resource,
        ["arn:aws-cn:ecr:cn-north-1:123456789012:repository/shop"]
    );
    let json = serde_json::to_value(&policy).unwrap();
    assert_eq!(json["Version"], "2012-10-17");
    assert!(json["Statement"][0]["Effect"] == "Allow");
}

#[test]
fn no_action_is_declared_with_two_spellings() {
    // An operation maps to one IAM action wherever it is declared.
    let mut action_of: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for p in declared().iter().flat_map(|d| d.permissions) {
        let (Some(op), service) = (p.operation, p.action.split(':').next().unwrap_or("")) else {
            continue;
        };
        if let Some(previous) = action_of.insert((service, op), p.action) {
            assert_eq!(previous, p.action, "{op}");
        }
    }
    assert!(!action_of.is_empty());
}

#[test]
fn each_stage_may_write_only_its_own_repository() {
    // dev in the shared repository, prod in its own: dev's policy names
    // only `shop`, prod's only `shop-prod`, both policies together both.
    let dev = target("eu-west-1", "dev");
    let mut prod = Stage::defaults("shop", "prod", "eu-west-1");
    prod.protected = true;
    let prod = Names::new(&prod, "123456789012");
    let arn = |name: &str| format!("arn:aws:ecr:eu-west-1:123456789012:repository/{name}");
    let resources = |targets: &[Names]| {
        statement(&policy(targets, &declared()), "EcrRepository")
            .resource
            .clone()
    };
    assert_eq!(resources(std::slice::from_ref(&dev)), [arn("shop")]);
    assert_eq!(resources(std::slice::from_ref(&prod)), [arn("shop-prod")]);
    assert_eq!(resources(&[dev, prod]), [arn("shop"), arn("shop-prod")]);
}

#[test]
fn the_lock_covers_its_name_and_every_group_below_it_in_both_forms() {
    let policy = policy(&[target("us-east-1", "dev")], &declared());
    let lock = statement(&policy, "LogsStageLock");
    let group = "arn:aws:logs:us-east-1:123456789012:log-group:/deployer/locks/shop-dev";
    assert_eq!(
        lock.resource,
        [
            group.to_string(),
            format!("{group}/*"),
            format!("{group}:*")
        ]
    );
    // The break marker `{lock}/break-<ms>`, bare and `:*`, is below it; a
    // stage whose name starts alike is not.
    assert!(
        Stage::defaults("shop", "dev", "us-east-1")
            .lock_group_name()
            .ends_with("/shop-dev")
    );
    let below = format!("{group}/");
    assert!(
        lock.resource
            .iter()
            .any(|r| r.strip_suffix('*') == Some(&below))
    );
    assert!(!lock.resource.iter().any(|r| r.ends_with("shop-dev*")));
}

#[test]
fn api_gateway_is_scoped_by_the_stages_tags() {
    let policy = policy(
        &[target("us-east-1", "dev"), target("us-east-1", "prod")],
        &declared(),
    );
    let owned = statement(&policy, "ApiGatewayTaggedOwn");
    assert_eq!(
        owned.condition,
        Some(serde_json::json!({"StringEquals": {
            "aws:ResourceTag/deployer:app": ["shop"],
            "aws:ResourceTag/deployer:stage": ["dev", "prod"],
        }}))
    );
    assert!(
        owned.resource.iter().all(|r| r.ends_with("/*")),
        "{owned:?}"
    );
    let create = statement(&policy, "ApiGatewayCreateTagged");
    assert_eq!(create.action, ["apigateway:POST"]);
    let condition = create.condition.as_ref().unwrap();
    assert_eq!(
        condition["StringEquals"]["aws:RequestTag/deployer:stage"],
        serde_json::json!(["dev", "prod"])
    );
    assert_eq!(
        condition["ForAllValues:StringEquals"]["aws:TagKeys"],
        serde_json::json!(["deployer:app", "deployer:stage"])
    );
    // Listing is the one API Gateway statement without a condition: GET on
    // the collections only.
    let list = statement(&policy, "ApiGatewayList");
    assert_eq!(list.action, ["apigateway:GET"]);
    assert!(list.condition.is_none());
    assert!(list.resource.iter().all(|r| !r.contains('*')), "{list:?}");
    for s in policy
        .statement
        .iter()
        .filter(|s| s.sid.starts_with("ApiGateway"))
    {
        assert!(
            s.sid == "ApiGatewayList" || s.condition.is_some(),
            "an API Gateway statement without a tag condition: {s:?}"
        );
    }
}

#[test]
fn the_tag_keys_are_the_stages() {
    let stage = Stage::defaults("shop", "dev", "us-east-1");
    let keys: Vec<String> = stage.tags().into_keys().collect();
    assert_eq!(keys, TAG_KEYS);
}

#[test]
fn a_custom_domain_s_statements_are_its_own_and_only_with_one() {
    // Without `[api.domain]`: only the listing of domain names.
    let plain = policy(&[target("us-east-1", "dev")], &declared());
    for sid in [
        "AcmRequestTagged",
        "AcmList",
        "AcmRead",
        "AcmTaggedOwn",
        "Route53HostedZone",
        "Route53Changes",
        "ApiGatewayDomainNameCreateTagged",
        "ApiGatewayDomainName",
    ] {
        assert!(
            plain.statement.iter().all(|s| s.sid != sid),
            "{sid} printed"
        );
    }
    assert!(
        statement(&plain, "ApiGatewayList")
            .resource
            .contains(&"arn:aws:apigateway:us-east-1::/domainnames".to_string())
    );

    let mut stage = Stage::defaults("shop", "prod", "us-east-1");
    stage.api.domain = Some(crate::config::DomainSpec {
        name: "forecast.example.com".into(),
        certificate_arn: None,
        hosted_zone_id: Some("Z123".into()),
        base_path: None,
        at: crate::config::SettingAt {
            file: "deploy.toml".into(),
            line: 1,
            key: "[api.domain] name".into(),
        },
        certificate_at: None,
        hosted_zone_at: None,
    });
    let with = policy(&[Names::new(&stage, "123456789012")], &declared());
    let zone = statement(&with, "Route53HostedZone");
    assert_eq!(zone.resource, ["arn:aws:route53:::hostedzone/Z123"]);
    assert_eq!(
        zone.condition.as_ref().unwrap()["ForAllValues:StringLike"]["route53:ChangeResourceRecordSetsNormalizedRecordNames"],
        serde_json::json!(["*.forecast.example.com", "forecast.example.com"])
    );
    let domain = statement(&with, "ApiGatewayDomainName");
    assert_eq!(
        domain.resource,
        [
            "arn:aws:apigateway:us-east-1::/domainnames/forecast.example.com",
            "arn:aws:apigateway:us-east-1::/domainnames/forecast.example.com/*"
        ]
    );
    // A certificate is deleted only with the stage's tags: never a given one.
    let delete = statement(&with, "AcmTaggedOwn");
    assert_eq!(delete.action, ["acm:DeleteCertificate"]);
    assert_eq!(
        delete.condition.as_ref().unwrap()["StringEquals"]["aws:ResourceTag/deployer:stage"],
        serde_json::json!(["prod"])
    );
    let request = statement(&with, "AcmRequestTagged");
    assert!(
        request.condition.as_ref().unwrap()["StringEquals"]["aws:RequestTag/deployer:app"]
            .is_array()
    );
}
