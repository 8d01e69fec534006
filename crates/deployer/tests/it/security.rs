//! What `deployer up` leaves in AWS grants no more than it must, and
//! nothing secret leaks: the role has only the named managed policies, the
//! permission lets only this API call the function, the repository's tags
//! are immutable and scanned on push, no output at the highest verbosity
//! holds the ECR password or the secret key, and the image holds nothing
//! but the binary, the models and the data.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;

use base64::Engine as _;
use futures_util::StreamExt;
use serde_json::Value;

use crate::util::fixture::{Fixture, set_in_table, texts};
use crate::util::*;

/// Runs the deployer with `secret` as the secret key; returns its output
/// (stdout then stderr) and exit code.
fn run_with_secret(fx: &Fixture, secret: &str, args: &[&str]) -> (String, Option<i32>) {
    let out = fx
        .command(args)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("RUST_LOG", "trace")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    (format!("{stdout}\n{stderr}"), out.status.code())
}

#[tokio::test(flavor = "multi_thread")]
async fn up_grants_only_what_it_must_and_leaks_no_secret() {
    let fx = Fixture::new("secure");
    // Sign with the environment's (distinctive) secret, not the local
    // stage's fixed dummy credentials, so a leak of it would show.
    fx.edit_config(|text| set_in_table(text, "stages.local", "dummy-credentials", "false"));
    let _dump = DumpOnFailure::new(&fx.app);
    let secret = format!("test-secret-{}", unique_name("s"));
    let config = sdk_config().await;

    // Every command that needs no deployed function, at the highest
    // verbosity, as JSON and as text; the first up builds and pushes (so
    // it logs in to the registry), the second finds everything in place.
    let mut outputs = Vec::new();
    for args in [
        &["plan", "--stage", "local", "-vvv"][..],
        &["up", "--stage", "local", "--yes", "--json", "-vvv"][..],
        &["up", "--stage", "local", "--yes", "-vvv"][..],
        &["plan", "--stage", "local", "--json", "-vvv"][..],
        &["build", "--stage", "local", "-vvv"][..],
    ] {
        let (output, code) = run_with_secret(&fx, &secret, args);
        assert_eq!(code, Some(0), "deployer {args:?} failed:\n{output}");
        outputs.push((args, output));
    }
    // And a failure, whose error shows the SDK's error chain.
    fx.edit_config(|text| {
        set_in_table(
            text,
            "stages.local",
            "endpoint-url",
            "\"http://127.0.0.1:9\"",
        )
    });
    let args = &["up", "--stage", "local", "--yes", "-vvv"][..];
    let (output, code) = run_with_secret(&fx, &secret, args);
    assert_eq!(
        code,
        Some(3),
        "an unreachable endpoint is an AWS error:\n{output}"
    );
    outputs.push((args, output));

    let token = ecr_token(&config).await;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&token)
        .unwrap();
    let decoded = String::from_utf8(decoded).unwrap();
    let (_, password) = decoded.split_once(':').unwrap();
    for (args, output) in &outputs {
        for (what, value) in [
            ("the secret access key", secret.as_str()),
            ("the ECR password", password),
            ("the ECR token", token.as_str()),
        ] {
            assert!(
                !output.contains(value),
                "deployer {args:?} printed {what}:\n{output}"
            );
        }
    }

    // The function's environment carries no credentials either.
    let function = fx.function("local");
    let lambda = aws_sdk_lambda::Client::new(&config);
    let conf = lambda
        .get_function_configuration()
        .function_name(&function)
        .send()
        .await
        .unwrap();
    let variables = conf
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default();
    for (name, value) in &variables {
        assert!(
            !name.starts_with("AWS_") && !value.contains(&secret),
            "the function's environment holds {name}"
        );
    }

    // The role: exactly the managed policies named, no inline policy.
    let iam = aws_sdk_iam::Client::new(&config);
    let role = format!("{function}-exec");
    let attached = iam
        .list_attached_role_policies()
        .role_name(&role)
        .send()
        .await
        .unwrap();
    let arns: BTreeSet<&str> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    assert_eq!(
        arns,
        BTreeSet::from([
            "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
            "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        ])
    );
    let inline = iam
        .list_role_policies()
        .role_name(&role)
        .send()
        .await
        .unwrap();
    assert!(
        inline.policy_names().is_empty(),
        "inline policies: {:?}",
        inline.policy_names()
    );

    // The permission: API Gateway may invoke the alias, from this API only.
    let apigw = aws_sdk_apigateway::Client::new(&config);
    let apis = apigw.get_rest_apis().limit(500).send().await.unwrap();
    let api_id = apis
        .items()
        .iter()
        .find(|a| a.name() == Some(function.as_str()))
        .and_then(|a| a.id())
        .expect("no REST API")
        .to_string();
    let policy = lambda
        .get_policy()
        .function_name(&function)
        .qualifier("local")
        .send()
        .await
        .unwrap();
    let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "{policy}");
    let statement = &statements[0];
    assert_eq!(statement["Effect"], "Allow");
    assert_eq!(statement["Action"], "lambda:InvokeFunction");
    assert_eq!(
        statement["Principal"]["Service"], "apigateway.amazonaws.com",
        "{policy}"
    );
    let source = statement["Condition"]["ArnLike"]["AWS:SourceArn"]
        .as_str()
        .unwrap_or_else(|| panic!("the permission has no source ARN: {policy}"));
    assert_eq!(
        source,
        format!("arn:aws:execute-api:us-east-1:{ACCOUNT}:{api_id}/*/*/predict")
    );

    // The repository: immutable tags, scanned on push.
    let ecr = aws_sdk_ecr::Client::new(&config);
    locked_down_repository(&ecr, &fx.app).await;
}

async fn ecr_token(config: &aws_config::SdkConfig) -> String {
    let ecr = aws_sdk_ecr::Client::new(config);
    let answer = ecr.get_authorization_token().send().await.unwrap();
    answer.authorization_data()[0]
        .authorization_token()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_image_holds_only_the_binary_models_and_data() {
    let fx = Fixture::new("imgfiles");
    let built = fx.json(&["build", "--stage", "local", "--json"]);
    let image = built["image"].as_str().unwrap();

    // `docker save`: a tar of layer tars, listed in manifest.json.
    let docker = docker();
    let mut saved = Vec::new();
    let mut stream = docker.export_image(image);
    while let Some(chunk) = stream.next().await {
        saved.extend_from_slice(&chunk.unwrap());
    }
    let mut outer: HashMap<String, Vec<u8>> = HashMap::new();
    let mut archive = tar::Archive::new(saved.as_slice());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        outer.insert(path, bytes);
    }
    let manifest: Value = serde_json::from_slice(&outer["manifest.json"]).unwrap();
    let layers = manifest[0]["Layers"].as_array().unwrap();
    let mut files = BTreeSet::new();
    for layer in layers {
        let bytes = &outer[layer.as_str().unwrap()];
        let mut archive = tar::Archive::new(bytes.as_slice());
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            if entry.header().entry_type().is_dir() {
                continue;
            }
            files.insert(path);
        }
    }

    let mut expected = BTreeSet::from(["var/task/bootstrap".to_string()]);
    for dir in ["models", "data"] {
        list_files(&fx.path(dir), &format!("var/task/{dir}"), &mut expected);
    }
    assert!(
        expected.len() > 2,
        "no models or data to expect: {expected:?}"
    );
    assert_eq!(
        files, expected,
        "the image's files are not exactly the function's"
    );

    // Nor does its configuration carry anything of the build's environment.
    let inspect = docker.inspect_image(image).await.unwrap();
    let env = inspect.config.and_then(|c| c.env).unwrap_or_default();
    for variable in &env {
        assert!(
            !variable.starts_with("AWS_") && !variable.starts_with("CARGO"),
            "the image's environment holds {variable}"
        );
    }
}

/// Every file under `dir`, as `prefix/relative/path`.
fn list_files(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = format!("{prefix}/{}", entry.file_name().to_string_lossy());
        if entry.file_type().unwrap().is_dir() {
            list_files(&entry.path(), &name, out);
        } else {
            out.insert(name);
        }
    }
}
