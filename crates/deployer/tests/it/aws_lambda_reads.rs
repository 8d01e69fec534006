//! What the deployer reads of Lambda, seen through interceptors on a
//! client like its own: tags come from ListTags (GetFunction carries them
//! only with that permission), and only the app's own functions are read.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use aws_sdk_lambda::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextMut,
};
use aws_sdk_lambda::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_lambda::operation::get_function::{GetFunctionInput, GetFunctionOutput};
use aws_smithy_runtime_api::box_error::BoxError;
use deployer::aws::Outcome;
use deployer::aws::lambda::{self, DesiredFunction};
use deployer::config::Stage;
use deployer::plan::Action;

use crate::aws_lambda::fixture;
use crate::util;
use crate::util::up_path;

/// A Lambda client like the deployer's, with `interceptor` added.
async fn lambda_client_with(interceptor: impl Intercept + 'static) -> aws_sdk_lambda::Client {
    let config = aws_sdk_lambda::config::Builder::from(&util::sdk_config().await)
        .interceptor(interceptor)
        .build();
    aws_sdk_lambda::Client::from_conf(config)
}

/// AWS's answer to a caller without `lambda:ListTags`: GetFunction without
/// `Tags` ("Lambda returns tag data only if you have explicit allow
/// permissions for lambda:ListTags", GetFunction, Lambda API Reference).
/// moto always sends them, so this takes them out of what the client sees.
#[derive(Debug)]
struct NoTagsInGetFunction;

impl Intercept for NoTagsInGetFunction {
    fn name(&self) -> &'static str {
        "NoTagsInGetFunction"
    }

    fn modify_before_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(Ok(output)) = context.output_or_error_mut()
            && let Some(answer) = output.downcast_mut::<GetFunctionOutput>()
        {
            answer.tags = None;
        }
        Ok(())
    }
}

#[tokio::test]
async fn tags_are_read_with_list_tags_so_an_unchanged_function_stays_unchanged() {
    let fx = fixture("lambda-tags").await;
    let desired = fx.desired("tags");
    up_path::function(&fx.clients.lambda, &desired)
        .await
        .unwrap();

    let without_tag_data = lambda_client_with(NoTagsInGetFunction).await;
    let name = fx.stage.function_name();
    let got = without_tag_data
        .get_function()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(got.tags(), None, "the interceptor left GetFunction's tags");
    let actual = lambda::read_function(&without_tag_data, &name, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(actual.tags["deployer:stage"], "dev");
    // So the plan has nothing to tag, publish or move.
    assert_eq!(
        lambda::diff_function(&desired, Some(&actual)),
        Action::Unchanged
    );
    let (outcome, _) = up_path::function(&without_tag_data, &desired)
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Unchanged);

    fx.clean_up().await;
}

/// What the client called GetFunction for: `name` or `name:qualifier`.
#[derive(Debug, Clone, Default)]
struct GetFunctionCalls(Arc<Mutex<Vec<String>>>);

impl Intercept for GetFunctionCalls {
    fn name(&self) -> &'static str {
        "GetFunctionCalls"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(input) = context.input().downcast_ref::<GetFunctionInput>() {
            let mut name = input.function_name().unwrap_or_default().to_string();
            if let Some(qualifier) = input.qualifier() {
                name = format!("{name}:{qualifier}");
            }
            self.0.lock().unwrap().push(name);
        }
        Ok(())
    }
}

#[tokio::test]
async fn only_the_apps_own_functions_are_read_and_every_version_image_counts() {
    let fx = fixture("lambda-users").await;
    let lambda_client = &fx.clients.lambda;
    let prefix = format!("{}-", fx.stage.app);
    let repository = format!("{}/{}", util::registry_host(), fx.stage.app);
    // dev: version 1 on image v1, then $LATEST and version 2 on image v2.
    fx.deploy_behind_alias("v1").await;
    up_path::function(lambda_client, &fx.desired("v2"))
        .await
        .unwrap();
    lambda::publish_version(lambda_client, &fx.stage.function_name(), true)
        .await
        .unwrap();
    // prod of the same app, on image v3.
    let prod = Stage::defaults(&fx.stage.app, "prod", &util::region());
    let prod_image = fx.image("v3");
    up_path::function(
        lambda_client,
        &DesiredFunction::for_stage(&prod, &prod_image, &fx.role_arn),
    )
    .await
    .unwrap();
    // Another team's function, whose name is not the app's, even with an
    // image of the app's repository: never read.
    let mut other = Stage::defaults(&util::unique_name("other-team"), "dev", &util::region());
    other.app = format!("x{}", fx.stage.app);
    up_path::function(
        lambda_client,
        &DesiredFunction::for_stage(&other, &fx.image("v4"), &fx.role_arn),
    )
    .await
    .unwrap();

    let calls = GetFunctionCalls::default();
    let recording = lambda_client_with(calls.clone()).await;
    let users = lambda::functions_using_repository(
        &recording,
        &prefix,
        &repository,
        &fx.stage.function_name(),
    )
    .await;
    assert_eq!(users, [prod.function_name()]);
    let read = calls.0.lock().unwrap().clone();
    assert!(!read.is_empty());
    assert!(
        read.iter().all(|name| name.starts_with(&prefix)),
        "GetFunction on functions not of the app: {read:?}"
    );

    calls.0.lock().unwrap().clear();
    let in_use = lambda::images_in_use(&recording, &prefix, &repository)
        .await
        .unwrap();
    let digest = |image: &str| image.split_once('@').unwrap().1.to_string();
    // moto answers GetFunction for version 1 with $LATEST's image (its
    // publish_version makes a shallow copy that shares the code), so the
    // image only version 1 uses cannot be seen here; that every version was
    // asked about, can.
    assert!(
        in_use.is_superset(&BTreeSet::from([
            digest(&fx.image("v2")),
            digest(&prod_image)
        ])),
        "{in_use:?}"
    );
    assert!(!in_use.contains(&digest(&fx.image("v4"))), "{in_use:?}");
    let mut read = calls.0.lock().unwrap().clone();
    read.sort();
    let dev = fx.stage.function_name();
    assert_eq!(
        read,
        [
            dev.clone(),
            format!("{dev}:1"),
            format!("{dev}:2"),
            prod.function_name()
        ]
    );

    for name in [prod.function_name(), other.function_name()] {
        lambda::delete_function(lambda_client, &name).await.unwrap();
    }
    fx.clean_up().await;
}
