//! `deployer up` end to end: the real binary against the local AWS, the
//! result checked with SDK calls. Each test deploys its own app (a unique
//! name) from its own copy of the workspace's deployable parts.

use serde_json::Value;

use crate::util;
use crate::util::fixture::{Fixture, changes, set_in_table};
use crate::util::*;

async fn versions(lambda: &aws_sdk_lambda::Client, function: &str) -> Vec<String> {
    lambda
        .list_versions_by_function()
        .function_name(function)
        .send()
        .await
        .unwrap()
        .versions()
        .iter()
        .filter_map(|v| v.version().map(str::to_string))
        .filter(|v| v != "$LATEST")
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn up_from_nothing_creates_everything_and_a_second_up_changes_nothing() {
    let fx = Fixture::new("upnew");
    let _dump = DumpOnFailure::new(&fx.app);
    let config = sdk_config().await;
    let answer = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    let function = fx.function("local");

    // ECR: the repository, shared name {app}, immutable tags, scan on push,
    // and the lifecycle policy's text.
    let ecr = aws_sdk_ecr::Client::new(&config);
    let repo = &locked_down_repository(&ecr, &fx.app).await;
    let policy = ecr
        .get_lifecycle_policy()
        .repository_name(&fx.app)
        .send()
        .await
        .unwrap();
    let policy: Value = serde_json::from_str(policy.lifecycle_policy_text().unwrap()).unwrap();
    let rules = policy["rules"].as_array().unwrap();
    assert!(
        rules
            .iter()
            .any(|r| r["selection"]["tagStatus"] == "untagged"
                && r["selection"]["countType"] == "sinceImagePushed"
                && r["selection"]["countNumber"] == 1),
        "no 1-day untagged rule in {policy}"
    );
    // No count rule over tagged images: another stage's live version may
    // use any of them (`up` deletes the unused ones itself).
    assert!(
        rules
            .iter()
            .all(|r| r["selection"]["tagStatus"] == "untagged"),
        "a rule selects tagged images in {policy}"
    );

    // IAM: trust lambda.amazonaws.com; exactly the basic execution and
    // X-Ray policies; no inline policy.
    let iam = aws_sdk_iam::Client::new(&config);
    let role_name = format!("{function}-exec");
    let role = iam.get_role().role_name(&role_name).send().await.unwrap();
    let role = role.role().unwrap();
    let trust = urlencoding_decode(role.assume_role_policy_document().unwrap());
    assert!(trust.contains("lambda.amazonaws.com"), "{trust}");
    let attached = iam
        .list_attached_role_policies()
        .role_name(&role_name)
        .send()
        .await
        .unwrap();
    let mut names: Vec<&str> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["AWSLambdaBasicExecutionRole", "AWSXRayDaemonWriteAccess"]
    );
    let inline = iam
        .list_role_policies()
        .role_name(&role_name)
        .send()
        .await
        .unwrap();
    assert!(inline.policy_names().is_empty());

    // Lambda: the image by the digest the registry serves, memory, timeout,
    // tracing, and the alias on a published version.
    let lambda = aws_sdk_lambda::Client::new(&config);
    let got = lambda
        .get_function()
        .function_name(&function)
        .send()
        .await
        .unwrap();
    let image_uri = got.code().and_then(|c| c.image_uri()).unwrap().to_string();
    let (repo_uri, digest) = image_uri.split_once('@').expect("image not by digest");
    assert_eq!(repo_uri, repo.repository_uri().unwrap());
    let tag = answer["image"]["tag"].as_str().unwrap();
    let served = docker()
        .inspect_registry_image(&format!("{repo_uri}:{tag}"), None)
        .await
        .unwrap();
    assert_eq!(served.descriptor.digest.as_deref(), Some(digest));
    assert_eq!(answer["image"]["digest"], digest);
    let conf = got.configuration().unwrap();
    assert_eq!(conf.memory_size(), Some(2048));
    assert_eq!(conf.timeout(), Some(300));
    assert_eq!(
        conf.tracing_config().and_then(|t| t.mode()),
        Some(&aws_sdk_lambda::types::TracingMode::Active)
    );
    let published = versions(&lambda, &function).await;
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(
        alias_version(&lambda, &function, "local").await,
        published[0]
    );
    assert_eq!(answer["version"].as_str(), Some(published[0].as_str()));

    // The permission lets only this API call the alias.
    let apigw = aws_sdk_apigateway::Client::new(&config);
    let apis = apigw.get_rest_apis().limit(500).send().await.unwrap();
    let ours: Vec<_> = apis
        .items()
        .iter()
        .filter(|a| a.name() == Some(function.as_str()))
        .collect();
    assert_eq!(ours.len(), 1, "expected one REST API named {function}");
    let api_id = ours[0].id().unwrap();
    let policy = lambda
        .get_policy()
        .function_name(&function)
        .qualifier("local")
        .send()
        .await
        .unwrap();
    let policy = policy.policy().unwrap();
    assert!(
        policy.contains(&format!(":{api_id}/")),
        "permission not scoped to API {api_id}: {policy}"
    );

    // API Gateway: /predict with GET, POST (proxy to the alias) and OPTIONS.
    let resources = apigw
        .get_resources()
        .rest_api_id(api_id)
        .embed("methods")
        .send()
        .await
        .unwrap();
    let predict = resources
        .items()
        .iter()
        .find(|r| r.path() == Some("/predict"))
        .expect("no /predict resource");
    let mut methods: Vec<&str> = predict
        .resource_methods()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    methods.sort();
    assert_eq!(methods, ["GET", "OPTIONS", "POST"]);
    for method in ["GET", "POST"] {
        let integration = apigw
            .get_integration()
            .rest_api_id(api_id)
            .resource_id(predict.id().unwrap())
            .http_method(method)
            .send()
            .await
            .unwrap();
        assert_eq!(
            integration.r#type(),
            Some(&aws_sdk_apigateway::types::IntegrationType::AwsProxy)
        );
        let uri = integration.uri().unwrap();
        assert!(
            uri.ends_with(&format!("function:{function}:local/invocations")),
            "{method} integration does not call the alias: {uri}"
        );
    }
    let stage = apigw
        .get_stage()
        .rest_api_id(api_id)
        .stage_name("local")
        .send()
        .await
        .unwrap();
    assert!(stage.deployment_id().is_some());
    // The stage has an endpoint-url: the local AWS's path form of the URL.
    let url = answer["url"].as_str().unwrap();
    assert_eq!(
        url,
        format!(
            "{}/restapis/{api_id}/local/_user_request_/predict",
            endpoint_url()
        )
    );

    // A second up with nothing changed: nothing changes, no new version,
    // no new deployment, and no image work.
    let deployments_before = util::deployment_count(&apigw, api_id).await;
    let again = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    assert_eq!(changes(&again), Vec::<String>::new());
    assert_eq!(again["image"]["built"], false);
    assert_eq!(versions(&lambda, &function).await, published);
    let deployments_after = util::deployment_count(&apigw, api_id).await;
    assert_eq!(deployments_before, deployments_after);
    eprintln!(
        "no-op up took {} s (first up {} s)",
        again["seconds"], answer["seconds"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_change_ships_a_new_image_and_a_memory_change_only_configuration() {
    let fx = Fixture::new("upchg");
    let _dump = DumpOnFailure::new(&fx.app);
    let config = sdk_config().await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let function = fx.function("local");
    let first = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    let first_digest = first["image"]["digest"].as_str().unwrap().to_string();

    // A new file in models/ changes the image's content hash.
    std::fs::write(fx.path("models/NOTE.txt"), "retrained\n").unwrap();
    let plan = fx.json(&["plan", "--stage", "local", "--json"]);
    let second = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    assert_eq!(changes(&plan), changes(&second), "plan and up disagree");
    assert_eq!(second["image"]["built"], true);
    let second_digest = second["image"]["digest"].as_str().unwrap().to_string();
    assert_ne!(first_digest, second_digest);
    let published = versions(&lambda, &function).await;
    assert_eq!(published.len(), 2, "{published:?}");
    assert_eq!(
        alias_version(&lambda, &function, "local").await,
        published[1]
    );
    let conf = lambda
        .get_function()
        .function_name(&function)
        .send()
        .await
        .unwrap();
    assert!(
        conf.code()
            .and_then(|c| c.image_uri())
            .unwrap()
            .ends_with(&second_digest)
    );

    // Memory only: no image work, the configuration updated, a new version.
    fx.set_local("function", "memory", "1024");
    let plan = fx.json(&["plan", "--stage", "local", "--json"]);
    let third = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    assert_eq!(changes(&plan), changes(&third), "plan and up disagree");
    assert_eq!(third["image"]["built"], false);
    assert_eq!(
        third["image"]["digest"].as_str(),
        Some(second_digest.as_str())
    );
    let lines = changes(&third);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("lambda function") && l.contains("memory")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("image")), "{lines:?}");
    let conf = lambda
        .get_function_configuration()
        .function_name(&function)
        .send()
        .await
        .unwrap();
    assert_eq!(conf.memory_size(), Some(1024));
    let published = versions(&lambda, &function).await;
    assert_eq!(published.len(), 3, "{published:?}");
    assert_eq!(
        alias_version(&lambda, &function, "local").await,
        published[2]
    );
}

/// The life of a stage against the strict local AWS (functions `Pending`
/// after create and publish, updates `InProgress`, roles and X-Ray
/// permissions propagating, log group races, API Gateway quotas): every
/// step from nothing to a second `up` after `destroy` succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn plan_up_noop_change_destroy_and_up_again_succeed_on_the_strict_local_aws() {
    require_strict_local_aws();
    let fx = Fixture::new("uplife");
    let _dump = DumpOnFailure::new(&fx.app);
    let lambda = aws_sdk_lambda::Client::new(&sdk_config().await);
    let function = fx.function("local");
    let up = ["up", "--stage", "local", "--json", "--yes"];

    let plan = fx.json(&["plan", "--stage", "local", "--json"]);
    assert!(
        changes(&plan)
            .iter()
            .any(|c| c.starts_with("lambda function")),
        "{plan}"
    );
    let first = fx.json(&up);
    assert_eq!(changes(&plan), changes(&first), "plan and up disagree");
    assert_eq!(changes(&fx.json(&up)), Vec::<String>::new());

    fx.set_local("function", "memory", "1024");
    let changed = fx.json(&up);
    assert!(
        changes(&changed)
            .iter()
            .any(|c| c.starts_with("lambda function") && c.contains("memory")),
        "{changed}"
    );
    assert_ne!(changed["version"], first["version"]);

    fx.json(&["destroy", "--stage", "local", "--yes", "--json"]);
    assert!(
        lambda
            .get_function()
            .function_name(&function)
            .send()
            .await
            .is_err(),
        "the function outlived destroy"
    );
    let again = fx.json(&up);
    assert_eq!(again["version"], "1", "{again}");
    assert_eq!(alias_version(&lambda, &function, "local").await, "1");
}

/// IAM returns policy documents URL-encoded.
fn urlencoding_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn build_makes_a_local_image_and_reuses_it() {
    let fx = Fixture::new("build");
    let first = fx.json(&["build", "--stage", "local", "--json"]);
    let image = first["image"].as_str().unwrap().to_string();
    assert!(
        image.starts_with(&format!("{}:h", fx.app)),
        "not a local {{app}}:{{hash}} reference: {image}"
    );
    let inspected = docker().inspect_image(&image).await.unwrap();
    assert_eq!(
        inspected.config.and_then(|c| c.entrypoint),
        Some(vec!["/var/task/bootstrap".to_string()])
    );
    let again = fx.json(&["build", "--stage", "local", "--json"]);
    assert_eq!(again["image"], first["image"]);
    assert_eq!(again["built"], false);
    // A model change is a new image.
    std::fs::write(fx.path("models/NOTE.txt"), "retrained\n").unwrap();
    let changed = fx.json(&["build", "--stage", "local", "--json"]);
    assert_ne!(changed["image"], first["image"]);
    assert_eq!(changed["built"], true);
}

/// The id of the one REST API named `name`.
pub(crate) async fn rest_api_id(apigw: &aws_sdk_apigateway::Client, name: &str) -> String {
    let apis = apigw.get_rest_apis().limit(500).send().await.unwrap();
    let ours: Vec<&str> = apis
        .items()
        .iter()
        .filter(|a| a.name() == Some(name))
        .filter_map(|a| a.id())
        .collect();
    assert_eq!(ours.len(), 1, "REST APIs named {name}: {ours:?}");
    ours[0].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn api_key_auth_shows_the_key_id_and_how_to_read_it_never_the_value() {
    let fx = Fixture::new("upkey");
    let _dump = DumpOnFailure::new(&fx.app);
    fx.set_local("api", "auth", "\"api_key\"");
    fx.edit_config(|text| {
        set_in_table(
            text,
            "api.cors",
            "allow-origins",
            "[\"https://a.example\", \"https://b.example\"]",
        )
    });
    let out = fx.deployer(&["up", "--stage", "local", "--json", "--yes"]);
    let answer = util::fixture::json_of(&out, &["up"]);
    let key_id = answer["api_key"]["id"].as_str().unwrap().to_string();
    let command = answer["api_key"]["value_command"].as_str().unwrap();
    assert_eq!(
        command,
        format!(
            "aws apigateway get-api-key --api-key {key_id} --include-value --query value --output text --region {}",
            region()
        )
    );
    let config = sdk_config().await;
    let apigw = aws_sdk_apigateway::Client::new(&config);
    let key = apigw
        .get_api_key()
        .api_key(&key_id)
        .include_value(true)
        .send()
        .await
        .unwrap();
    let value = key.value().unwrap();
    let (stdout, stderr) = util::fixture::texts(&out);
    assert!(
        !stdout.contains(value) && !stderr.contains(value),
        "the key's value was printed"
    );

    let status = fx.json(&["status", "--stage", "local", "--json"]);
    assert_eq!(status["api_key"]["id"], key_id.as_str());
    let text = fx.stdout(&["status", "--stage", "local"]);
    assert!(
        text.contains(&key_id) && text.contains("--include-value"),
        "{text}"
    );
    assert!(!text.contains(value), "status printed the key's value");

    // Two origins: the function matches them, so it answers the preflight.
    let lambda = aws_sdk_lambda::Client::new(&config);
    let function = lambda
        .get_function_configuration()
        .function_name(fx.function("local"))
        .send()
        .await
        .unwrap();
    let env = function.environment().unwrap().variables().unwrap();
    assert_eq!(
        env["CORS_ALLOW_ORIGIN"],
        "https://a.example,https://b.example"
    );
    assert_eq!(
        env["CORS_ALLOW_HEADERS"],
        "Content-Type, X-Amz-Date, Authorization, X-Api-Key, X-Amz-Security-Token, X-Amz-User-Agent"
    );
    let api_id = rest_api_id(&apigw, &fx.function("local")).await;
    let resources = apigw
        .get_resources()
        .rest_api_id(&api_id)
        .send()
        .await
        .unwrap();
    let predict = resources
        .items()
        .iter()
        .find(|r| r.path() == Some("/predict"))
        .unwrap();
    let options = apigw
        .get_integration()
        .rest_api_id(&api_id)
        .resource_id(predict.id().unwrap())
        .http_method("OPTIONS")
        .send()
        .await
        .unwrap();
    assert_eq!(
        options.r#type(),
        Some(&aws_sdk_apigateway::types::IntegrationType::AwsProxy)
    );
}
