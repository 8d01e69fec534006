//! The plan is what `up` runs: the apply makes exactly the calls of the
//! plan it is given and no others, and an `up` with nothing to change reads
//! each resource once. Both counted through the recording proxy
//! (`util::proxy`), between the deployer and the local AWS.

use std::collections::{BTreeMap, BTreeSet};

use deployer::aws::{self, Clients, apigw, iam, logs};
use deployer::config::{self, Overrides};
use deployer::plan::Action;
use deployer::stage::{self, Purpose, apply, desired};
use deployer::ui::{Mode, Ui};

use crate::util::fixture::{Fixture, changes};
use crate::util::proxy::{Call, FaultProxy};
use crate::util::*;

/// The requests sent more than once, each with its count.
fn repeated(calls: &[&Call]) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::<String, usize>::new();
    for call in calls {
        *seen.entry(call.request.clone()).or_default() += 1;
    }
    seen.retain(|_, count| *count > 1);
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn up_makes_exactly_the_calls_of_its_plan_and_reads_each_resource_once() {
    let fx = Fixture::new("planapply");
    let _dump = DumpOnFailure::new(&fx.app);
    let first = fx.json(&["up", "--stage", "local", "--json", "--yes"]);

    // The function's log group came first, tagged, with the default
    // retention (its first log lines, the smoke test's, landed in it).
    let kinds: Vec<&str> = first["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["kind"].as_str())
        .collect();
    let position = |kind| kinds.iter().position(|k| *k == kind).unwrap();
    assert!(
        position("log group") < position("lambda function"),
        "{kinds:?}"
    );
    let logs_client = aws_sdk_cloudwatchlogs::Client::new(&sdk_config().await);
    let group_name = fx.log_group("local");
    let created = logs::read_log_group(
        &logs_client,
        &logs::DesiredLogGroup {
            name: group_name.clone(),
            arn: format!("arn:aws:logs:{}:{ACCOUNT}:log-group:{group_name}", region()),
            retention_days: 30,
            tags: BTreeMap::new(),
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(created.retention_days, Some(30));
    assert_eq!(created.tags["deployer:app"], fx.app);
    assert_eq!(created.tags["deployer:stage"], "local");

    // From here on every request goes through the proxy (which injects no
    // fault: it only records).
    let proxy = FaultProxy::for_local_stage(&fx, 0.0, 1);

    // A second `up`: nothing to change, so it only reads, each request
    // once; the stage lock's own calls aside, nothing is written.
    let again = fx.json(&["up", "--stage", "local", "--json", "--yes"]);
    assert_eq!(changes(&again), Vec::<String>::new());
    let calls = proxy.counts.take_calls();
    let lock_group = fx.lock_group("local");
    let stage_calls: Vec<&Call> = calls
        .iter()
        .filter(|c| !c.request.contains(&lock_group))
        .collect();
    let reads: Vec<&Call> = stage_calls
        .iter()
        .copied()
        .filter(|c| c.is_read())
        .collect();
    let writes: Vec<&Call> = stage_calls
        .iter()
        .copied()
        .filter(|c| !c.is_read())
        .collect();
    assert!(reads.len() > 10, "{calls:#?}");
    assert_eq!(repeated(&reads), BTreeMap::new(), "read twice: {reads:#?}");
    assert!(
        writes.is_empty(),
        "an up with nothing to do wrote: {writes:#?}"
    );
    let read_operations: BTreeSet<&str> = reads.iter().map(|c| c.operation.as_str()).collect();
    for operation in [
        "DescribeRepositories",
        "GetLifecyclePolicy",
        "GetRepositoryPolicy",
        "GetRole",
        "DescribeLogGroups",
    ] {
        assert!(
            read_operations.contains(operation),
            "{operation} not read: {reads:#?}"
        );
    }

    // A hand-built plan, through the library: three updates and nothing
    // else. The apply must make exactly their three calls: no read, no
    // other write, no redeploy, no publish.
    let mut stage = config::load(&fx.path("deploy.toml"), "local", &Overrides::default()).unwrap();
    // The public path check calls the stage's URL; it is not part of the plan.
    stage.smoke_test.public_path = false;
    let clients = Clients::new(&aws::sdk_config(&stage.connection()).await);
    let names = desired::names(&stage, &clients).await.unwrap();
    let survey = stage::survey(&stage, &names, &clients, Purpose::Deploy)
        .await
        .unwrap();
    let (mut wanted, found, mut hand_built) = (survey.desired, survey.actual, survey.plan);
    let image = survey.image.unwrap();
    assert!(
        !hand_built
            .changes(&wanted)
            .changes
            .iter()
            .any(|c| c.action.is_change()),
        "{hand_built:#?}"
    );
    wanted.log_group.retention_days = 7;
    hand_built.log_group = Action::Update(BTreeSet::from([logs::LogGroupField::Retention]));
    wanted.role.tags.insert("team".into(), "forecasting".into());
    hand_built.role = Action::Update(BTreeSet::from([iam::RoleField::Tags]));
    wanted.api.tracing = !wanted.api.tracing;
    hand_built.api.stage = Action::Update(BTreeSet::from([apigw::StageField::Tracing]));
    proxy.counts.take_calls();

    let ui = Ui::with_mode("up", Mode::Plain, false, false, 0);
    apply::apply(&ui, &clients, &wanted, &image.recipe, &found, &hand_built)
        .await
        .unwrap();
    let mut made: Vec<String> = proxy
        .counts
        .take_calls()
        .into_iter()
        .map(|c| c.operation)
        .collect();
    made.sort();
    let api_id = &found.api.as_ref().unwrap().id;
    assert_eq!(
        made,
        [
            format!("PATCH /restapis/{api_id}/stages/local"),
            "PutRetentionPolicy".to_string(),
            "TagRole".to_string(),
        ]
    );

    // And the calls did what the plan said.
    let config = sdk_config().await;
    let group = logs::read_log_group(
        &aws_sdk_cloudwatchlogs::Client::new(&config),
        &wanted.log_group,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(group.retention_days, Some(7));
    let role = iam::read_role(&aws_sdk_iam::Client::new(&config), &wanted.role.name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(role.tags["team"], "forecasting");
    let stage_now = aws_sdk_apigateway::Client::new(&config)
        .get_stage()
        .rest_api_id(api_id)
        .stage_name("local")
        .send()
        .await
        .unwrap();
    assert_eq!(stage_now.tracing_enabled(), wanted.api.tracing);

    fx.deployer(&["destroy", "--stage", "local", "--yes"]);
}
