//! Image clean-up on real data: images pushed by `up` itself, listed by the
//! local ECR because its registry holds them, old versions pruned past
//! `keep-versions` and old images past `keep-tagged`. Exactly the images no
//! version of any stage uses go, from ECR and from the registry, and every
//! stage still answers. Deletion fails closed: when another stage's function
//! cannot be read, no image is deleted and `destroy` keeps the repository.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::util::fixture::{Fixture, json_of, set_in_table, texts};
use crate::util::proxy::FaultProxy;
use crate::util::registry::registry_holds;
use crate::util::*;

const DATE: &str = "2025-10-20";

fn digest(up: &Value) -> String {
    up["image"]["digest"].as_str().unwrap().to_string()
}

/// The digests ECR lists in the repository.
async fn listed(ecr: &aws_sdk_ecr::Client, repository: &str) -> BTreeSet<String> {
    deployer::aws::ecr::list_images(ecr, repository)
        .await
        .unwrap()
        .into_iter()
        .map(|image| image.digest)
        .collect()
}

/// The stage behind `up`'s URL answers a prediction.
fn answers(up: &Value) {
    let url = up["url"].as_str().unwrap();
    let answer = call_url("GET", &format!("{url}?date={DATE}"), &[]);
    assert_eq!(answer.status, 200, "{url}: {answer:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn exactly_the_images_no_version_uses_go_from_ecr_and_the_registry() {
    let fx = Fixture::new("imgclean");
    let _dump = DumpOnFailure::new(&fx.app);
    fx.add_local_stage("local2");
    fx.edit_config(|text| set_in_table(text, "ecr", "keep-tagged", "1"));
    fx.edit_config(|text| set_in_table(text, "function", "keep-versions", "1"));
    let config = sdk_config().await;
    let ecr = aws_sdk_ecr::Client::new(&config);
    let lambda = aws_sdk_lambda::Client::new(&config);

    // local2 keeps the first image; ECR lists it under the digest its
    // version runs.
    let other = fx.json(&["up", "--stage", "local2", "--json", "--yes"]);
    let kept_by_other = digest(&other);
    let running = lambda
        .get_function()
        .function_name(fx.function("local2"))
        .qualifier(other["version"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let image_uri = running.code().and_then(|c| c.image_uri()).unwrap();
    assert!(
        image_uri.ends_with(&format!("@{kept_by_other}")),
        "{image_uri}"
    );
    assert_eq!(
        listed(&ecr, &fx.app).await,
        BTreeSet::from([kept_by_other.clone()])
    );

    // Three model changes on local: each builds and pushes an image.
    let mut ups = Vec::new();
    for _ in 0..3 {
        fx.change_models();
        let up = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
        assert_eq!(up["image"]["built"], true, "{up}");
        ups.push(up);
    }
    let local: Vec<String> = ups.iter().map(digest).collect();
    let newest = ups.last().unwrap();
    // keep-versions = 1: only the alias's version is left.
    let versions = deployer::aws::lambda::list_versions(&lambda, &fx.function("local"))
        .await
        .unwrap();
    let versions: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(versions, [newest["version"].as_str().unwrap()]);
    // The images of the pruned versions are gone from ECR and the registry;
    // local2's image, older than all, stays: its version uses it.
    assert_eq!(
        listed(&ecr, &fx.app).await,
        BTreeSet::from([kept_by_other.clone(), local[2].clone()])
    );
    let held: Vec<bool> = [&kept_by_other, &local[0], &local[1], &local[2]]
        .iter()
        .map(|d| registry_holds(&fx.app, d))
        .collect();
    assert_eq!(held, [true, false, false, true]);
    answers(&other);
    answers(newest);

    // Fails closed: local2's function cannot be read (a policy that does not
    // cover it). The clean-up deletes nothing and says why.
    let proxy = FaultProxy::for_local_stage(&fx, 0.0, 26);
    proxy.deny(&format!("/2015-03-31/functions/{}", fx.function("local2")));
    fx.change_models();
    let args = ["up", "--stage", "local", "--json", "--yes"];
    let out = fx.deployer(&args);
    let (_, stderr) = texts(&out);
    let blind = json_of(&out, &args);
    assert_eq!(blind["images_deleted"], 0, "{blind}");
    assert!(stderr.contains("counts as in use"), "{stderr}");
    // local[2] is used by no version now (pruned), yet kept: its use is
    // unknown.
    assert_eq!(
        listed(&ecr, &fx.app).await,
        BTreeSet::from([kept_by_other.clone(), local[2].clone(), digest(&blind)])
    );

    // destroy keeps the repository, naming the function it cannot read.
    let args = ["destroy", "--stage", "local", "--yes", "--json"];
    let destroyed = json_of(&fx.deployer(&args), &args);
    let kept = destroyed["kept"].as_array().unwrap();
    assert!(
        kept.iter().any(|k| k["name"] == fx.app.as_str()
            && k["reason"]
                .as_str()
                .unwrap()
                .contains(&format!("{} (cannot be read", fx.function("local2")))),
        "{destroyed}"
    );
    assert!(listed(&ecr, &fx.app).await.contains(&kept_by_other));
    assert!(registry_holds(&fx.app, &kept_by_other));
    answers(&other);
}
