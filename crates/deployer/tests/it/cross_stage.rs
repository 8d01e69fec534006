//! No stage can put code into another (issue 26, item 3): an identity
//! holding only `dev`'s printed policy pushes an image of its own under the
//! tag `prod`'s next `up` computes (the content hash of the very sources
//! `prod` deploys), and `prod`'s `up` must still deploy only what it built.
//!
//! Two users of a moto that enforces IAM, each with one stage's printed
//! policy: `dev` deploys its stage, builds an image of other content from
//! it, and then, as an attacker with dev's rights would, puts that image
//! under the tag into every repository it can reach: through ECR's API
//! (PutImage of its manifest, which IAM authorizes) and the registry. Then
//! `prod`, signed as prod's policy, runs `up` on the unchanged sources.
//!
//! What this exercises, honestly:
//! - The local registry accepts any credentials, where ECR's authorizes a
//!   push by the same IAM actions as the API (ecr:InitiateLayerUpload ...
//!   ecr:PutImage on the repository). So the image is pushed under the tag
//!   only into repositories where the API's PutImage was allowed, as real
//!   ECR would allow it (its manifest is read from a scratch repository).
//! - moto_ext enforces the printed policies as AWS would, resource by
//!   resource (`iam-auth-resources`), so dev's PutImage into prod's own
//!   repository is denied. Before that behaviour existed, moto checked ECR
//!   actions against `*` only, dev could write prod's repository too, and
//!   the test passed all the same on `up`'s own check (a taken tag is
//!   adopted only when the stage's function already runs it or this
//!   machine's engine pushed it): two barriers, each enough here.
//! - The local registry's tags are mutable (ECR's immutable tags refuse a
//!   second push), so `prod`'s push overwrites the tag here; the path that
//!   meets a refused push is `image::push_image`'s, unit-tested only.

use std::process::Command;

use aws_config::SdkConfig;
use aws_sdk_ecr::error::ProvideErrorMetadata;
use serde_json::Value;

use crate::util::fixture::{Fixture, set_in_table, texts};
use crate::util::own_moto::OwnMoto;
use crate::util::*;

/// Unauthenticated calls moto serves: two users, their keys and policies.
const BOOTSTRAP_CALLS: &str = "6";

/// One signed identity of the IAM moto.
struct User {
    key_id: String,
    secret: String,
    config: SdkConfig,
}

/// Starts a moto enforcing IAM with one user per (name, policy).
async fn iam_moto(policies: &[(&str, Value)]) -> (OwnMoto, Vec<User>) {
    let moto = OwnMoto::start(
        "xstage",
        &[("INITIAL_NO_AUTH_ACTION_COUNT", BOOTSTRAP_CALLS)],
    );
    let bootstrap = moto.sdk_config_as("bootstrap", "bootstrap").await;
    let iam = aws_sdk_iam::Client::new(&bootstrap);
    let mut users = Vec::new();
    for (name, policy) in policies {
        iam.create_user().user_name(*name).send().await.unwrap();
        let key = iam
            .create_access_key()
            .user_name(*name)
            .send()
            .await
            .unwrap();
        let key = key.access_key().unwrap();
        iam.put_user_policy()
            .user_name(*name)
            .policy_name("deployer")
            .policy_document(policy.to_string())
            .send()
            .await
            .unwrap();
        let (key_id, secret) = (key.access_key_id(), key.secret_access_key());
        users.push(User {
            key_id: key_id.to_string(),
            secret: secret.to_string(),
            config: moto.sdk_config_as(key_id, secret).await,
        });
    }
    (moto, users)
}

/// `deployer ARGS` signed as `user`, against `moto`.
fn deployer_as(fx: &Fixture, moto: &OwnMoto, user: &User, args: &[&str]) -> Value {
    let out = fx
        .command(args)
        .env("AWS_ACCESS_KEY_ID", &user.key_id)
        .env("AWS_SECRET_ACCESS_KEY", &user.secret)
        .env("AWS_ENDPOINT_URL", &moto.url)
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    assert!(
        out.status.success(),
        "`deployer {}` failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}\nmoto's log: {}",
        args.join(" "),
        out.status,
        moto.log()
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// `docker ARGS`, which must succeed; its stdout.
fn docker_cli(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "docker {args:?}: {stdout}{stderr}");
    stdout
}

/// The manifest the registry serves for `repository:tag`, and its digest.
fn registry_manifest(repository: &str, tag: &str) -> (String, String) {
    let url = format!(
        "https://{}/v2/{repository}/manifests/{tag}",
        registry_host()
    );
    let out = Command::new("curl")
        .args(["-sS", "-k", "-D", "/dev/stderr", "-H"])
        .arg("Accept: application/vnd.docker.distribution.manifest.v2+json")
        .arg(&url)
        .output()
        .unwrap();
    let (manifest, headers) = texts(&out);
    assert!(out.status.success(), "curl {url}: {headers}");
    let digest = headers
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("docker-content-digest")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Docker-Content-Digest from {url}: {headers}"));
    (manifest, digest)
}

/// The digest the stage's alias runs (its version's image, by digest).
async fn alias_digest(config: &SdkConfig, function: &str, alias: &str) -> String {
    let lambda = aws_sdk_lambda::Client::new(config);
    let answer = lambda
        .get_function()
        .function_name(function)
        .qualifier(alias)
        .send()
        .await
        .unwrap();
    let uri = answer.code().and_then(|c| c.image_uri()).unwrap();
    uri.split_once('@')
        .map(|(_, digest)| digest.to_string())
        .unwrap_or_else(|| panic!("{function}:{alias} runs {uri}, not an image by digest"))
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_cannot_make_prod_run_an_image_prod_did_not_build() {
    let fx = Fixture::new("xstage");
    // Two stages of the local AWS, credentials from the environment (the
    // users'), `prod` protected as deploy.toml's `prod` is.
    for stage in ["dev", "prod"] {
        let name = format!("x{stage}");
        fx.add_local_stage(&name);
        let table = format!("stages.{name}");
        fx.edit_config(|text| {
            let text = set_in_table(text, &table, "dummy-credentials", "false");
            // The version's smoke test runs the image; the URL adds nothing here.
            set_in_table(
                &text,
                &format!("{table}.smoke-test"),
                "public-path",
                "false",
            )
        });
    }
    fx.edit_config(|text| set_in_table(text, "stages.xprod", "protected", "true"));
    // The policies as printed, enforced resource by resource and with
    // their conditions (moto_ext's iam-auth-resources).
    let policy =
        |stage: &str| fx.json(&["policy", "--stage", stage, "--account", ACCOUNT, "--json"]);
    let (moto, users) = iam_moto(&[("dev-ci", policy("xdev")), ("prod-ci", policy("xprod"))]).await;
    let (dev, prod) = (&users[0], &users[1]);
    for stage in ["xdev", "xprod"] {
        let table = format!("stages.{stage}");
        fx.edit_config(|text| {
            set_in_table(text, &table, "endpoint-url", &format!("\"{}\"", moto.url))
        });
    }

    // prod as it runs today (its repository exists from then on); then new
    // sources, which dev deploys first: an image in the registry under the
    // tag prod's next `up` computes from the same sources.
    deployer_as(
        &fx,
        &moto,
        prod,
        &["up", "--stage", "xprod", "--json", "--yes"],
    );
    fx.change_models();
    let deployed = deployer_as(
        &fx,
        &moto,
        dev,
        &["up", "--stage", "xdev", "--json", "--yes"],
    );
    let dev_tag = deployed["image"]["tag"].as_str().unwrap().to_string();
    let plan = deployer_as(&fx, &moto, prod, &["plan", "--stage", "xprod", "--json"]);
    let prod_tag = plan["image_tag"].as_str().unwrap().to_string();
    assert_eq!(
        prod_tag, dev_tag,
        "prod's next tag differs from dev's: {plan:#}"
    );

    // The attacker's image: dev's, plus a label (other content, still runs).
    let host = registry_host();
    let dev_image = format!("{host}/{}:{dev_tag}", fx.app);
    let attack = format!("{}-attack:1", fx.app);
    let mut build = Command::new("docker")
        .args(["build", "-q", "-t", &attack, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        build.stdin.as_mut().unwrap(),
        format!("FROM {dev_image}\nLABEL planted-by=dev\n").as_bytes(),
    )
    .unwrap();
    drop(build.stdin.take());
    assert!(
        build.wait().unwrap().success(),
        "docker build of the attack"
    );

    // Its manifest and digest, as any registry serves them.
    let scratch = format!("{}-attack", fx.app);
    let staged = format!("{host}/{scratch}:1");
    docker_cli(&["tag", &attack, &staged]);
    docker_cli(&["push", "-q", &staged]);
    let (manifest, attack_digest) = registry_manifest(&scratch, "1");

    // Into every repository of the app, wherever dev's rights let it.
    let ecr = aws_sdk_ecr::Client::new(&dev.config);
    let prod_repository = format!("{}-xprod", fx.app);
    let mut planted = Vec::new();
    for repository in [fx.app.clone(), prod_repository.clone()] {
        let put = ecr
            .put_image()
            .repository_name(&repository)
            .image_tag(&prod_tag)
            .image_manifest(&manifest)
            .image_manifest_media_type("application/vnd.docker.distribution.manifest.v2+json")
            // As ECR computes it from the manifest (moto would make one up).
            .image_digest(&attack_digest)
            .send()
            .await;
        let answer = match &put {
            Ok(_) => "allowed",
            Err(err) => err.code().unwrap_or("refused"),
        };
        eprintln!("dev's PutImage into {repository}: {answer}");
        if put.is_err() {
            continue;
        }
        // The registry's side of the same push.
        let target = format!("{host}/{repository}:{prod_tag}");
        docker_cli(&["tag", &attack, &target]);
        docker_cli(&["push", "-q", &target]);
        docker_cli(&["rmi", &target]);
        planted.push(repository);
    }
    // The attacker's machine is not prod's CI: nothing of it stays in the
    // engine prod's `up` uses.
    docker_cli(&["rmi", &staged, &attack]);
    eprintln!("planted {attack_digest} as {prod_tag} in {planted:?}");
    assert!(
        !planted.contains(&prod_repository),
        "dev's printed policy wrote prod's own repository"
    );

    // prod's up on the unchanged sources, signed as prod's policy.
    let up = deployer_as(
        &fx,
        &moto,
        prod,
        &["up", "--stage", "xprod", "--json", "--yes"],
    );
    let running = alias_digest(&prod.config, &fx.function("xprod"), "xprod").await;
    assert_ne!(
        running, attack_digest,
        "prod runs the image dev planted under its tag; prod's up said:\n{up:#}"
    );
    assert_eq!(
        Some(running.as_str()),
        up["image"]["digest"].as_str(),
        "the alias runs another digest than prod's up reported:\n{up:#}"
    );
    assert_eq!(
        up["image"]["built"], true,
        "prod did not build its image: {up:#}"
    );
}
