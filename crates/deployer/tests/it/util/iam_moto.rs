//! A moto of a test's own that enforces IAM, with two users: the one the
//! deployer signs as, whose only policy is the one under test (what
//! `deployer policy` printed), and an administrator who may do anything,
//! whose calls (the set-up a test makes behind the deployer's back) are
//! kept apart from the deployer's decisions. `iam_policy` proves the whole
//! life of a stage with it; each feature's own enforced test uses it too.

use std::collections::BTreeSet;
use std::ops::Range;
use std::process::{Command, Output};
use std::sync::Mutex;

use aws_config::SdkConfig;
use serde_json::{Value, json};

use super::call_url;
use super::fixture::Fixture;
use super::own_moto::OwnMoto;

/// moto serves this many requests unauthenticated: for the deployer's user
/// and for the administrator who makes the drift, the user, its access key
/// and its policy; every later request is checked.
pub const BOOTSTRAP_CALLS: u32 = 6;
/// A moto of its own that enforces IAM after [`BOOTSTRAP_CALLS`], with the
/// user the test signs as.
pub struct IamMoto {
    pub moto: OwnMoto,
    key_id: String,
    secret: String,
    /// Signed as the administrator, who may do anything.
    pub admin: SdkConfig,
    /// The administrator's decisions: ranges of the allowed list that are
    /// not the deployer's.
    not_ours: Mutex<Vec<Range<usize>>>,
}

impl IamMoto {
    /// Starts it and creates the user with `policy` (a document's text,
    /// stored as given) as its only policy.
    pub async fn start(policy: &str) -> IamMoto {
        let calls = BOOTSTRAP_CALLS.to_string();
        let moto = OwnMoto::start("iam", &[("INITIAL_NO_AUTH_ACTION_COUNT", &calls)]);
        let config = moto.sdk_config_as("bootstrap", "bootstrap").await;
        let iam = aws_sdk_iam::Client::new(&config);
        // The only unauthenticated calls: exactly BOOTSTRAP_CALLS of them.
        let everything = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"}
        ]})
        .to_string();
        let mut keys = Vec::new();
        for (user, policy) in [("ci", policy), ("admin", &everything)] {
            iam.create_user().user_name(user).send().await.unwrap();
            let key = iam
                .create_access_key()
                .user_name(user)
                .send()
                .await
                .unwrap();
            let key = key.access_key().unwrap();
            iam.put_user_policy()
                .user_name(user)
                .policy_name("deployer")
                .policy_document(policy)
                .send()
                .await
                .unwrap();
            keys.push((
                key.access_key_id().to_string(),
                key.secret_access_key().to_string(),
            ));
        }
        let (admin_id, admin_secret) = keys.pop().unwrap();
        let (key_id, secret) = keys.pop().unwrap();
        let admin = moto.sdk_config_as(&admin_id, &admin_secret).await;
        IamMoto {
            moto,
            key_id,
            secret,
            admin,
            not_ours: Mutex::new(Vec::new()),
        }
    }

    /// An SDK configuration signed as the user (the deployer's policy).
    pub async fn user_config(&self) -> SdkConfig {
        self.moto.sdk_config_as(&self.key_id, &self.secret).await
    }

    pub fn log(&self) -> String {
        self.moto.log()
    }

    /// `deployer ARGS` in `fx`, signed as the user.
    pub fn deployer(&self, fx: &Fixture, args: &[&str]) -> Output {
        self.command(fx, args).output().unwrap()
    }

    /// The command [`IamMoto::deployer`] runs, for a caller to change
    /// (its clock, with libfaketime) before running it.
    pub fn command(&self, fx: &Fixture, args: &[&str]) -> Command {
        let mut command = fx.command(args);
        command
            .env("AWS_ACCESS_KEY_ID", &self.key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_ENDPOINT_URL", &self.moto.url);
        command
    }

    /// moto's record of its IAM decisions: `{"allowed": [...], "denied": [...]}`.
    pub fn recorded(&self) -> Value {
        call_url("GET", &format!("{}/_local-aws/iam", self.moto.url), &[]).json()
    }

    /// The actions moto allowed the deployer and denied so far.
    pub fn decisions(&self) -> (BTreeSet<String>, Vec<Value>) {
        let allowed = self
            .allowed_decisions()
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        (
            allowed,
            self.recorded()["denied"].as_array().unwrap().clone(),
        )
    }

    /// How many decisions moto allowed so far.
    pub fn allowed_count(&self) -> usize {
        self.recorded()["allowed"].as_array().map_or(0, Vec::len)
    }

    /// Runs `work` as the administrator, its decisions set apart.
    pub fn as_admin<T, F: std::future::Future<Output = T>>(
        &self,
        work: impl FnOnce(SdkConfig) -> F,
    ) -> T {
        let start = self.allowed_count();
        let admin = self.admin.clone();
        let answer =
            tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(work(admin)));
        let end = self.allowed_count();
        self.not_ours.lock().unwrap().push(start..end);
        answer
    }

    /// The deployer's allowed decisions so far: (action, resource).
    pub fn allowed_decisions(&self) -> Vec<(String, String)> {
        let answer = self.recorded();
        let not_ours = self.not_ours.lock().unwrap();
        answer["allowed"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .filter(|(i, _)| !not_ours.iter().any(|r| r.contains(i)))
            .filter_map(|(_, d)| {
                Some((
                    d["action"].as_str()?.to_string(),
                    d["resource"].as_str()?.to_string(),
                ))
            })
            .collect()
    }
}
