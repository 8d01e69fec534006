//! Proves each part of the local AWS answers the way the deployer will use
//! it, through the Rust SDK and bollard: STS through moto, an image pushed
//! to the registry at moto's ECR host with GetAuthorizationToken's
//! credentials, Lambda's invoke of an image function (moto_ext runs the
//! image, so it needs one), and the Docker engine itself.

use bollard::query_parameters::{
    BuildImageOptionsBuilder, PushImageOptionsBuilder, RemoveImageOptionsBuilder,
};
use futures_util::StreamExt;

use crate::util;
use crate::util::{ACCOUNT, DumpOnFailure};

#[tokio::test]
async fn sts_answers_with_motos_account() {
    util::require_local_cloud();
    let config = util::sdk_config().await;
    let sts = aws_sdk_sts::Client::new(&config);

    let identity = sts.get_caller_identity().send().await.unwrap();

    assert_eq!(identity.account(), Some(ACCOUNT));
    let arn = identity.arn().unwrap();
    assert!(
        arn.starts_with(&format!("arn:aws:sts::{ACCOUNT}:")) || arn.contains(ACCOUNT),
        "caller ARN {arn} is not in moto's account"
    );
}

#[tokio::test]
async fn docker_engine_reports_its_version() {
    util::require_local_cloud();

    let version = util::docker().version().await.unwrap();

    let engine = version.version.unwrap_or_default();
    let api = version.api_version.unwrap_or_default();
    assert!(
        engine
            .split('.')
            .next()
            .is_some_and(|major| major.parse::<u32>().is_ok()),
        "engine version {engine:?} is not a version number"
    );
    let (major, minor) = api.split_once('.').unwrap();
    assert!(
        (major.parse::<u32>().unwrap(), minor.parse::<u32>().unwrap()) >= (1, 41),
        "Docker API {api} is older than 1.41, which bollard's calls need"
    );
    assert_eq!(version.os.as_deref(), Some("linux"));
}

/// The whole path the deployer takes for its image: repository from ECR,
/// credentials from GetAuthorizationToken, build, push to the ECR host, and
/// the registry then serving the very digest the push reported.
#[tokio::test]
async fn image_pushed_with_ecr_credentials_is_served_by_the_registry() {
    util::require_local_cloud();
    let name = util::unique_name("local-cloud-push");
    let _dump = DumpOnFailure::new(&name);
    let config = util::sdk_config().await;
    let ecr = aws_sdk_ecr::Client::new(&config);
    let docker = util::docker();

    let created = ecr
        .create_repository()
        .repository_name(&name)
        .send()
        .await
        .unwrap();
    let uri = created.repository().unwrap().repository_uri().unwrap();
    assert_eq!(uri, format!("{}/{name}", util::registry_host()));

    let credentials = util::registry_credentials(&config).await;
    assert_eq!(credentials.username.as_deref(), Some("AWS"));
    let proxy = credentials.serveraddress.clone().unwrap_or_default();
    assert!(
        proxy.contains(&util::registry_host()),
        "proxyEndpoint {proxy} is not the registry host"
    );

    // Unique content, so the digest cannot come from an earlier run.
    let tag = "t1";
    let image = format!("{uri}:{tag}");
    let context = build_context(&format!("pushed by the local_cloud test as {name}\n"));
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(&image)
        .rm(true)
        .build();
    let mut build = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    let mut log = String::new();
    while let Some(step) = build.next().await {
        let step = step.unwrap_or_else(|e| panic!("build failed: {e}\n{log}"));
        if let Some(error) = step.error_detail.and_then(|d| d.message) {
            panic!("build failed: {error}\n{log}");
        }
        log += step.stream.as_deref().unwrap_or("");
    }

    let options = PushImageOptionsBuilder::default().tag(tag).build();
    let mut push = docker.push_image(uri, Some(options), Some(credentials.clone()));
    let mut pushed_digest = None;
    while let Some(step) = push.next().await {
        let step = step.unwrap_or_else(|e| panic!("push of {image} failed: {e}"));
        if let Some(error) = step.error_detail.and_then(|d| d.message) {
            panic!("push of {image} failed: {error}");
        }
        // The last status reads "<tag>: digest: sha256:<hex> size: <n>".
        if let Some(status) = step.status.as_deref()
            && let Some((_, rest)) = status.split_once("digest: ")
        {
            pushed_digest = rest.split_whitespace().next().map(str::to_string);
        }
    }
    let pushed_digest = pushed_digest.expect("the push reported no digest");
    assert!(pushed_digest.starts_with("sha256:"), "{pushed_digest}");

    // dockerd asks the registry itself for the manifest.
    let served = docker
        .inspect_registry_image(&image, Some(credentials))
        .await
        .unwrap();
    assert_eq!(
        served.descriptor.digest.as_deref(),
        Some(pushed_digest.as_str())
    );

    let local = docker.inspect_image(&image).await.unwrap();
    let repo_digests = local.repo_digests.unwrap_or_default();
    assert!(
        repo_digests.contains(&format!("{uri}@{pushed_digest}")),
        "RepoDigests {repo_digests:?} lack {uri}@{pushed_digest}"
    );

    let remove = RemoveImageOptionsBuilder::default().force(true).build();
    docker
        .remove_image(&image, Some(remove), None)
        .await
        .unwrap();
    ecr.delete_repository()
        .repository_name(&name)
        .force(true)
        .send()
        .await
        .unwrap();
}

/// The local AWS runs an image function's image (moto_ext), so it needs
/// the image: one the registry does not hold cannot run, and the invoke
/// says so (409, as for a function Lambda could not set up) instead of
/// answering with anything made up. (Real invocations: tests/it/invoke.rs,
/// tests/it/public_path.rs, and scripts/moto_ext/tests.)
#[tokio::test]
async fn lambda_invoke_of_an_image_the_registry_lacks_is_refused() {
    util::require_local_cloud();
    let region = "ap-southeast-2";
    let name = util::unique_name("local-cloud-invoke");
    let _dump = DumpOnFailure::new(&name);
    let config = util::sdk_config_in(region).await;
    let iam = aws_sdk_iam::Client::new(&config);
    let lambda = aws_sdk_lambda::Client::new(&config);
    let basic_execution = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";

    let role = iam
        .create_role()
        .role_name(&name)
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .unwrap();
    // Fails with NoSuchEntity unless moto was started with AWS's managed policies.
    iam.attach_role_policy()
        .role_name(&name)
        .policy_arn(basic_execution)
        .send()
        .await
        .unwrap();
    let image_uri = format!(
        "{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{name}@sha256:{}",
        "0".repeat(64)
    );
    let create = lambda
        .create_function()
        .function_name(&name)
        .role(role.role().unwrap().arn())
        .package_type(aws_sdk_lambda::types::PackageType::Image)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .image_uri(image_uri)
                .build(),
        );
    // Lambda may not assume a role that new yet: a client waits.
    util::once_ready("CreateFunction", || create.clone().send()).await;
    // A new function is Pending, and AWS refuses to invoke it until Active.
    deployer::aws::lambda::wait_until_ready(&lambda, &name, None)
        .await
        .unwrap();

    let refused = lambda
        .invoke()
        .function_name(&name)
        .payload(aws_sdk_lambda::primitives::Blob::new(
            r#"{"path":"/predict"}"#,
        ))
        .send()
        .await
        .unwrap_err();
    let service = refused.as_service_error().expect("not a service error");
    assert!(service.is_resource_conflict_exception(), "{service:?}");
    assert!(
        format!("{service:?}").contains(&format!("{name}@sha256:")),
        "the error does not name the image: {service:?}"
    );

    lambda
        .delete_function()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    iam.detach_role_policy()
        .role_name(&name)
        .policy_arn(basic_execution)
        .send()
        .await
        .unwrap();
    // IAM may not have propagated the detach yet (DeleteConflict).
    let delete = iam.delete_role().role_name(&name);
    util::once_ready("DeleteRole", || delete.clone().send()).await;
}

#[test]
fn unique_names_are_distinct_and_valid_everywhere() {
    let first = util::unique_name("Some_Test Name");
    let second = util::unique_name("Some_Test Name");

    assert_ne!(first, second);
    for name in [&first, &second] {
        assert!(name.starts_with("some-test-name-"), "{name}");
        assert!(name.len() <= 48, "{name} is longer than 48");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{name} has characters ECR, Lambda or IAM refuse"
        );
    }
}

/// A build context with a `FROM scratch` Dockerfile: no base image to pull.
fn build_context(payload: &str) -> Vec<u8> {
    let dockerfile = "FROM scratch\nCOPY payload.txt /payload.txt\n";
    let mut tar = tar::Builder::new(Vec::new());
    for (path, contents) in [("Dockerfile", dockerfile), ("payload.txt", payload)] {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, contents.as_bytes())
            .unwrap();
    }
    tar.into_inner().unwrap()
}
