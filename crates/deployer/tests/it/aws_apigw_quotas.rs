//! API Gateway's DeleteRestApi quota (one per 30 s per account and Region,
//! "Amazon API Gateway quotas"): `delete_api` outlasts it when another
//! teardown of the account takes the slots.

use std::time::{Duration, Instant};

use aws_sdk_apigateway::Client;
use deployer::aws::apigw;
use deployer::config::Stage;

use crate::aws_apigw::apis_named;
use crate::util;

/// A Region no other test uses: API Gateway's quotas are per account and
/// Region, so the test that takes them does not slow the others.
const QUIET_REGION: &str = "ca-central-1";

/// Another client of the account tearing stages down in `region`: it
/// deletes REST APIs as often as the DeleteRestApi quota lets it (asking
/// every 50 ms, so it takes each slot as it opens), for `busy`. Returns
/// how many it deleted.
async fn take_delete_slots(region: &str, busy: Duration) -> u32 {
    let config = util::sdk_config_in(region).await;
    let client = Client::from_conf(
        aws_sdk_apigateway::config::Builder::from(&config)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    );
    let until = Instant::now() + busy;
    let mut deleted = 0;
    while Instant::now() < until {
        let api = client
            .create_rest_api()
            .name(util::unique_name("other-teardown"))
            .send()
            .await
            .unwrap();
        let id = api.id().unwrap().to_string();
        while Instant::now() < until {
            match client.delete_rest_api().rest_api_id(&id).send().await {
                Ok(_) => {
                    deleted += 1;
                    break;
                }
                Err(err)
                    if err
                        .raw_response()
                        .is_some_and(|r| r.status().as_u16() == 429) =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => panic!("DeleteRestApi: {err:?}"),
            }
        }
    }
    deleted
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_outlasts_the_delete_rest_api_quota_taken_by_another_teardown() {
    util::require_strict_local_aws();
    let client = Client::new(&util::sdk_config_in(QUIET_REGION).await);
    let stage = Stage::defaults(&util::unique_name("apigw-quota"), "dev", QUIET_REGION);
    // The stage's API and two duplicates an old crash left: three deletes.
    for _ in 0..3 {
        client
            .create_rest_api()
            .name(stage.api_name())
            .set_tags(Some(stage.tags().into_iter().collect()))
            .send()
            .await
            .unwrap();
    }
    // Longer than this client's own retries of a 429 last (three attempts,
    // at most 3 s of backoff): without retries of its own, delete gives up.
    let busy = Duration::from_secs(6);
    let other = tokio::spawn(take_delete_slots(QUIET_REGION, busy));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    apigw::delete_api(&client, &stage.api_name(), &stage.tags())
        .await
        .unwrap();
    let waited = started.elapsed();
    let others = other.await.unwrap();
    assert!(
        others >= 2,
        "the other teardown deleted only {others}: no quota in force?"
    );
    assert!(apis_named(&client, &stage.api_name()).await.is_empty());
    assert!(
        waited >= Duration::from_secs(3),
        "three deletes took only {waited:?}"
    );
}
