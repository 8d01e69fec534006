//! The function's concurrency controls: reserved concurrency on the
//! function (PutFunctionConcurrency: a cap on all its versions and aliases
//! together, taken from the account's pool) and provisioned concurrency on
//! the stage's alias (PutProvisionedConcurrencyConfig: environments Lambda
//! keeps initialized, so callers meet no cold start). Read, diff, apply,
//! delete, and the bounded wait until an allocation is `READY`.
//!
//! What AWS does that the order of `up` relies on ("Configuring
//! provisioned concurrency for a function", "Configuring reserved
//! concurrency", Lambda Developer Guide; each operation's Errors section):
//! - provisioned concurrency goes on a published version or an alias of
//!   one, never `$LATEST` (InvalidParameterValueException): it is put on
//!   the alias once the alias points at the new version;
//! - an alias's configuration follows the alias: when the alias moves,
//!   Lambda allocates for the new version and the status is `IN_PROGRESS`
//!   again (so `up` waits after every move, not only after a put);
//! - provisioned concurrency cannot exceed the function's reserved
//!   concurrency when it has one (InvalidParameterValueException), and
//!   otherwise must leave the account 100 unreserved executions;
//! - an allocation that cannot start the function ends `FAILED` with a
//!   `StatusReason` (e.g. `FUNCTION_ERROR_INIT_FAILURE`);
//! - the account's concurrency quota is 1,000 by default, but "new AWS
//!   accounts have reduced concurrency and memory quotas" ("Lambda
//!   quotas"), as low as 10, and Lambda keeps 100 of it unreserved (an
//!   account below 100 keeps all of it): on such an account any
//!   reservation is refused, so `plan` checks the room first
//!   ([`room_for`], GetAccountSettings).

use aws_sdk_lambda::types::ProvisionedConcurrencyStatusEnum;

use super::*;
use crate::aws::permissions::{Declared, Scope, call};

/// The IAM permissions of this file's AWS calls (see `aws::permissions`).
/// `Scope::Function` includes `function:name:*`, which covers the alias
/// that provisioned concurrency is configured on.
pub(crate) const PERMISSIONS: Declared = Declared {
    file: file!(),
    permissions: &[
        call(
            "GetFunctionConcurrency",
            "lambda:GetFunctionConcurrency",
            Scope::Function,
        ),
        call(
            "PutFunctionConcurrency",
            "lambda:PutFunctionConcurrency",
            Scope::Function,
        ),
        call(
            "DeleteFunctionConcurrency",
            "lambda:DeleteFunctionConcurrency",
            Scope::Function,
        ),
        call(
            "GetProvisionedConcurrencyConfig",
            "lambda:GetProvisionedConcurrencyConfig",
            Scope::Function,
        ),
        call(
            "PutProvisionedConcurrencyConfig",
            "lambda:PutProvisionedConcurrencyConfig",
            Scope::Function,
        ),
        call(
            "DeleteProvisionedConcurrencyConfig",
            "lambda:DeleteProvisionedConcurrencyConfig",
            Scope::Function,
        ),
        call(
            "GetAccountSettings",
            "lambda:GetAccountSettings",
            Scope::Any,
        ),
    ],
};

/// How long an allocation may stay `IN_PROGRESS`: AWS says it takes "a few
/// minutes"; past this, something is wrong and a person should look.
pub const PROVISIONED_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The stage's concurrency settings; `None` is no setting (0 in deploy.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DesiredConcurrency {
    /// On the function: its cap and its share of the account's pool.
    pub reserved: Option<i32>,
    /// On the stage's alias: environments kept initialized.
    pub provisioned: Option<i32>,
}

/// The alias's provisioned concurrency configuration as Lambda reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvisionedConcurrency {
    pub requested: i32,
    pub allocated: i32,
    pub available: i32,
    /// `IN_PROGRESS`, `READY` or `FAILED`, as Lambda spells it.
    pub status: String,
    /// Why a `FAILED` allocation failed.
    pub reason: Option<String>,
}

impl ProvisionedConcurrency {
    pub fn is_ready(&self) -> bool {
        self.status == ProvisionedConcurrencyStatusEnum::Ready.as_str()
    }

    pub fn is_failed(&self) -> bool {
        self.status == ProvisionedConcurrencyStatusEnum::Failed.as_str()
    }
}

/// What of the reserved concurrency can differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservedField {
    /// The number of executions reserved.
    Amount,
}

impl Field for ReservedField {}

/// What of the provisioned concurrency can differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProvisionedField {
    /// The number of environments requested.
    Amount,
    /// The last allocation `FAILED`: put again (the image may be fixed).
    Allocation,
}

impl Field for ProvisionedField {}

/// The function's reserved concurrency; `None` when it has none (or the
/// function does not exist).
pub async fn read_reserved(client: &Client, function: &str) -> Result<Option<i32>, AwsError> {
    let answer = client
        .get_function_concurrency()
        .function_name(function)
        .send()
        .await;
    Ok(none_if(
        ErrorKind::NotFound,
        "GetFunctionConcurrency",
        function,
        answer,
    )?
    .and_then(|answer| answer.reserved_concurrent_executions()))
}

/// The alias's provisioned concurrency; `None` when it has none (or the
/// alias or the function does not exist).
pub async fn read_provisioned(
    client: &Client,
    function: &str,
    alias: &str,
) -> Result<Option<ProvisionedConcurrency>, AwsError> {
    let resource = format!("{function}:{alias}");
    let answer = client
        .get_provisioned_concurrency_config()
        .function_name(function)
        .qualifier(alias)
        .send()
        .await;
    Ok(none_if(
        ErrorKind::NotFound,
        "GetProvisionedConcurrencyConfig",
        resource,
        answer,
    )?
    .map(|answer| ProvisionedConcurrency {
        requested: answer
            .requested_provisioned_concurrent_executions()
            .unwrap_or_default(),
        allocated: answer
            .allocated_provisioned_concurrent_executions()
            .unwrap_or_default(),
        available: answer
            .available_provisioned_concurrent_executions()
            .unwrap_or_default(),
        status: answer
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        reason: answer.status_reason().map(str::to_string),
    }))
}

/// The account's concurrency in the Region, as GetAccountSettings gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AccountConcurrency {
    /// The quota: concurrent executions of all functions together.
    pub limit: i32,
    /// What no function has reserved.
    pub unreserved: i32,
}

impl AccountConcurrency {
    /// What Lambda keeps unreserved for functions without a reservation:
    /// 100 ("reserve up to the Unreserved account concurrency value minus
    /// 100", "Configuring reserved concurrency"), or all of a quota below
    /// that.
    pub fn unreserved_minimum(&self) -> i32 {
        self.limit.min(100)
    }
}

/// The account's concurrency quota and what is left unreserved.
pub async fn read_account_concurrency(client: &Client) -> Result<AccountConcurrency, AwsError> {
    let answer = client
        .get_account_settings()
        .send()
        .await
        .map_err(|e| aws_error("GetAccountSettings", "account", e))?;
    let limit = answer.account_limit().ok_or_else(|| {
        AwsError::invalid_answer("GetAccountSettings", "account", "no AccountLimit")
    })?;
    Ok(AccountConcurrency {
        limit: limit.concurrent_executions(),
        unreserved: limit.unreserved_concurrent_executions().unwrap_or_default(),
    })
}

/// Why the account cannot give the stage the concurrency it asks for, or
/// `None` when it can. The function takes from the account's pool its
/// reservation, or without one its provisioned environments; what it holds
/// now (`held`) is given back first. Lambda refuses a change that leaves
/// less than [`AccountConcurrency::unreserved_minimum`] unreserved.
pub fn room_for(
    desired: DesiredConcurrency,
    held: DesiredConcurrency,
    account: AccountConcurrency,
) -> Option<String> {
    let need = desired.reserved.or(desired.provisioned).unwrap_or(0);
    let holds = held.reserved.or(held.provisioned).unwrap_or(0);
    let minimum = account.unreserved_minimum();
    let room = account.unreserved.saturating_add(holds) - minimum;
    (need > holds && need > room).then(|| {
        let what = if desired.reserved.is_some() {
            "reserve"
        } else {
            "provision"
        };
        format!(
            "the account cannot {what} {need} concurrent executions: its quota in this Region \
             is {} (GetAccountSettings), {} of it unreserved, and Lambda keeps at least \
             {minimum} unreserved, so at most {} can be taken{}. New AWS accounts get a \
             reduced quota: ask for more with Service Quotas (Lambda, \"Concurrent \
             executions\", L-B99A9384), or lower this setting (0: none)",
            account.limit,
            account.unreserved,
            room.max(0),
            if holds > 0 {
                format!(" (the function holds {holds} of them now)")
            } else {
                String::new()
            }
        )
    })
}

/// What [`apply_reserved`] has to do.
pub fn diff_reserved(desired: Option<i32>, actual: Option<i32>) -> Action<ReservedField> {
    match (desired, actual) {
        (None, None) => Action::Unchanged,
        (None, Some(_)) => Action::Delete,
        (Some(_), None) => Action::Create,
        (Some(want), Some(have)) => Action::update_if(BTreeSet::from_iter(
            (want != have).then_some(ReservedField::Amount),
        )),
    }
}

/// What [`apply_provisioned`] has to do.
pub fn diff_provisioned(
    desired: Option<i32>,
    actual: Option<&ProvisionedConcurrency>,
) -> Action<ProvisionedField> {
    match (desired, actual) {
        (None, None) => Action::Unchanged,
        (None, Some(_)) => Action::Delete,
        (Some(_), None) => Action::Create,
        (Some(want), Some(have)) => {
            let mut fields = BTreeSet::new();
            if want != have.requested {
                fields.insert(ProvisionedField::Amount);
            }
            if have.is_failed() {
                fields.insert(ProvisionedField::Allocation);
            }
            Action::update_if(fields)
        }
    }
}

/// Carries out `action` on the function's reserved concurrency: reserves
/// `amount` (create or update), or removes the reservation (delete; gone
/// already is fine). `amount` is ignored for a delete.
pub async fn apply_reserved(
    client: &Client,
    function: &str,
    amount: i32,
    action: &Action<ReservedField>,
) -> Result<Outcome, AwsError> {
    let outcome = match action {
        Action::Unchanged => return Ok(Outcome::Unchanged),
        Action::Delete => {
            delete_reserved(client, function).await?;
            return Ok(Outcome::Deleted);
        }
        Action::Create => Outcome::Created,
        Action::Update(fields) => {
            for field in fields {
                match field {
                    ReservedField::Amount => {}
                }
            }
            Outcome::Updated
        }
    };
    // A function update still in progress answers ResourceConflictException.
    retry_while(&[ErrorKind::Conflict], CONFLICT_RETRY, || async {
        client
            .put_function_concurrency()
            .function_name(function)
            .reserved_concurrent_executions(amount)
            .send()
            .await
            .map_err(|err| aws_error("PutFunctionConcurrency", function, err))
    })
    .await?;
    Ok(outcome)
}

/// Removes the function's reservation; none (or no function) is fine.
pub async fn delete_reserved(client: &Client, function: &str) -> Result<(), AwsError> {
    retry_while(&[ErrorKind::Conflict], CONFLICT_RETRY, || async {
        let deleted = client
            .delete_function_concurrency()
            .function_name(function)
            .send()
            .await;
        none_if(
            ErrorKind::NotFound,
            "DeleteFunctionConcurrency",
            function,
            deleted,
        )
    })
    .await?;
    Ok(())
}

/// Carries out `action` on the alias's provisioned concurrency: puts
/// `amount` (create or update; Lambda then allocates, see
/// [`wait_provisioned_ready`]) or deletes the configuration (gone already
/// is fine). `amount` is ignored for a delete.
pub async fn apply_provisioned(
    client: &Client,
    function: &str,
    alias: &str,
    amount: i32,
    action: &Action<ProvisionedField>,
) -> Result<Outcome, AwsError> {
    let outcome = match action {
        Action::Unchanged => return Ok(Outcome::Unchanged),
        Action::Delete => {
            delete_provisioned(client, function, alias).await?;
            return Ok(Outcome::Deleted);
        }
        Action::Create => Outcome::Created,
        Action::Update(fields) => {
            for field in fields {
                match field {
                    // Both are one put of the amount wanted.
                    ProvisionedField::Amount | ProvisionedField::Allocation => {}
                }
            }
            Outcome::Updated
        }
    };
    let resource = format!("{function}:{alias}");
    // ResourceConflictException: "another operation is in progress" (the
    // alias or the function still changing): tried again.
    retry_while(&[ErrorKind::Conflict], CONFLICT_RETRY, || async {
        client
            .put_provisioned_concurrency_config()
            .function_name(function)
            .qualifier(alias)
            .provisioned_concurrent_executions(amount)
            .send()
            .await
            .map_err(|err| aws_error("PutProvisionedConcurrencyConfig", resource.clone(), err))
    })
    .await?;
    Ok(outcome)
}

/// Deletes the alias's provisioned concurrency; none (or no alias, no
/// function) is fine: Delete answers ResourceNotFoundException then.
pub async fn delete_provisioned(
    client: &Client,
    function: &str,
    alias: &str,
) -> Result<(), AwsError> {
    let resource = format!("{function}:{alias}");
    retry_while(&[ErrorKind::Conflict], CONFLICT_RETRY, || async {
        let deleted = client
            .delete_provisioned_concurrency_config()
            .function_name(function)
            .qualifier(alias)
            .send()
            .await;
        none_if(
            ErrorKind::NotFound,
            "DeleteProvisionedConcurrencyConfig",
            resource.clone(),
            deleted,
        )
    })
    .await?;
    Ok(())
}

/// What a wait for an allocation judges from one answer (`None`: the
/// configuration is gone).
pub fn allocation_readiness(now: Option<&ProvisionedConcurrency>) -> Readiness {
    match now {
        None => Readiness::Broken(
            "the configuration is gone (deleted by another run, or with its alias)".into(),
        ),
        Some(config) if config.is_ready() => Readiness::Ready,
        Some(config) if config.is_failed() => Readiness::Broken(format!(
            "the allocation failed: {}. Lambda could not start the function; its \
             init error is in the function's log (`deployer logs --stage <stage>`), \
             and the next `up` puts the allocation again",
            config.reason.as_deref().unwrap_or("no reason given")
        )),
        Some(_) => Readiness::Wait,
    }
}

/// Polls the alias's provisioned concurrency until it is `READY` (at most
/// `timeout`), telling `progress` each answer. `FAILED` is an error with
/// Lambda's `StatusReason`.
pub async fn wait_provisioned_ready(
    client: &Client,
    function: &str,
    alias: &str,
    timeout: Duration,
    progress: &(dyn Fn(&ProvisionedConcurrency) + Send + Sync),
) -> Result<ProvisionedConcurrency, AwsError> {
    let resource = format!("{function}:{alias}");
    let started = Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        let now = read_provisioned(client, function, alias).await?;
        let status = match (allocation_readiness(now.as_ref()), now) {
            (Readiness::Ready, Some(config)) => return Ok(config),
            (Readiness::Broken(why), _) => {
                return Err(AwsError::invalid_answer(
                    "GetProvisionedConcurrencyConfig",
                    resource,
                    why,
                ));
            }
            (_, now) => {
                if let Some(config) = &now {
                    progress(config);
                }
                now.map(|c| c.status).unwrap_or_default()
            }
        };
        if started.elapsed() > timeout {
            return Err(AwsError {
                operation: "GetProvisionedConcurrencyConfig",
                resource,
                message: format!(
                    "provisioned concurrency still {status} after {} s; `deployer status` shows \
                     it, and the next `up` waits again",
                    timeout.as_secs()
                ),
                kind: ErrorKind::Conflict,
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(reserved: Option<i32>, provisioned: Option<i32>) -> DesiredConcurrency {
        DesiredConcurrency {
            reserved,
            provisioned,
        }
    }

    #[test]
    fn a_new_account_has_no_room_for_any_concurrency() {
        // A new account: quota 10, all of it kept unreserved.
        let new = AccountConcurrency {
            limit: 10,
            unreserved: 10,
        };
        let why = room_for(want(None, Some(1)), want(None, None), new).expect("refused");
        assert!(
            why.contains("provision 1") && why.contains("quota in this Region is 10"),
            "{why}"
        );
        assert!(
            why.contains("at least 10 unreserved") && why.contains("at most 0"),
            "{why}"
        );
        assert!(room_for(want(Some(2), Some(1)), want(None, None), new).is_some());
        // Asking for nothing needs no room.
        assert_eq!(room_for(want(None, None), want(None, None), new), None);
    }

    #[test]
    fn room_is_the_unreserved_pool_above_100_plus_what_the_function_holds() {
        let account = AccountConcurrency {
            limit: 1000,
            unreserved: 150,
        };
        assert_eq!(
            room_for(want(Some(50), None), want(None, None), account),
            None
        );
        let why = room_for(want(Some(51), None), want(None, None), account).expect("refused");
        assert!(
            why.contains("reserve 51") && why.contains("at most 50"),
            "{why}"
        );
        // Its own reservation of 20 is given back first: 70 fits.
        assert_eq!(
            room_for(want(Some(70), None), want(Some(20), None), account),
            None
        );
        assert!(room_for(want(Some(71), None), want(Some(20), None), account).is_some());
        // Provisioned concurrency inside a reservation takes nothing more.
        assert_eq!(
            room_for(want(Some(50), Some(50)), want(None, None), account),
            None
        );
        // Shrinking is always possible, even on a full account.
        let full = AccountConcurrency {
            limit: 1000,
            unreserved: 100,
        };
        assert_eq!(
            room_for(want(Some(5), None), want(Some(10), None), full),
            None
        );
    }

    fn provisioned(requested: i32, status: &str) -> ProvisionedConcurrency {
        let ready = status == "READY";
        ProvisionedConcurrency {
            requested,
            allocated: if ready { requested } else { 0 },
            available: if ready { requested } else { 0 },
            status: status.into(),
            reason: (status == "FAILED").then(|| "FUNCTION_ERROR_INIT_FAILURE".into()),
        }
    }

    #[test]
    fn reserved_is_created_changed_kept_or_removed() {
        assert_eq!(diff_reserved(None, None), Action::Unchanged);
        assert_eq!(diff_reserved(Some(5), None), Action::Create);
        assert_eq!(diff_reserved(Some(5), Some(5)), Action::Unchanged);
        assert_eq!(
            diff_reserved(Some(5), Some(3)),
            Action::Update(BTreeSet::from([ReservedField::Amount]))
        );
        // 0 in deploy.toml is no reservation: an existing one goes.
        assert_eq!(diff_reserved(None, Some(3)), Action::Delete);
    }

    #[test]
    fn provisioned_follows_the_amount_and_retries_a_failed_allocation() {
        assert_eq!(diff_provisioned(None, None), Action::Unchanged);
        assert_eq!(diff_provisioned(Some(1), None), Action::Create);
        // Still allocating is not a change: the wait is the plan's business.
        assert_eq!(
            diff_provisioned(Some(1), Some(&provisioned(1, "IN_PROGRESS"))),
            Action::Unchanged
        );
        assert_eq!(
            diff_provisioned(Some(2), Some(&provisioned(1, "READY"))),
            Action::Update(BTreeSet::from([ProvisionedField::Amount]))
        );
        assert_eq!(
            diff_provisioned(Some(1), Some(&provisioned(1, "FAILED"))),
            Action::Update(BTreeSet::from([ProvisionedField::Allocation]))
        );
        assert_eq!(
            diff_provisioned(None, Some(&provisioned(1, "READY"))),
            Action::Delete
        );
    }

    #[test]
    fn a_wait_ends_on_ready_and_stops_on_failed_or_gone() {
        assert_eq!(
            allocation_readiness(Some(&provisioned(1, "READY"))),
            Readiness::Ready
        );
        assert_eq!(
            allocation_readiness(Some(&provisioned(1, "IN_PROGRESS"))),
            Readiness::Wait
        );
        match allocation_readiness(Some(&provisioned(1, "FAILED"))) {
            Readiness::Broken(why) => {
                assert!(why.contains("FUNCTION_ERROR_INIT_FAILURE"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(allocation_readiness(None), Readiness::Broken(_)));
    }
}
