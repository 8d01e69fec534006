//! The command line: clap types only, apart from what the commands do
//! (`commands/`). Each subcommand's doc comment is its help text.

use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

/// Deploys the prediction function to AWS Lambda behind API Gateway,
/// straight through the AWS APIs (no CloudFormation).
#[derive(Debug, Parser)]
#[command(
    name = "deployer",
    version,
    propagate_version = true,
    after_help = "Exit codes: 0 success, 1 other failure, 2 usage or configuration error, \
                  3 AWS error, 4 build error (cargo, docker), 5 smoke test failed (or the public path \
                  check: the alias went back), 6 stage lock held (or lost), 130/143 stopped by \
                  SIGINT/SIGTERM (the lock released); with plan --detailed-exitcode, 2 also means \
                  changes. What each means and what to do: docs/exit-codes.md."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The stage to act on: a `[stages.<name>]` table of deploy.toml.
    #[arg(long, global = true, default_value = "dev")]
    pub stage: String,
    /// The configuration file. A bare file name is searched for in the
    /// current directory and its parents.
    #[arg(
        long,
        global = true,
        default_value = "deploy.toml",
        value_name = "PATH"
    )]
    pub config: PathBuf,
    /// AWS profile (overrides the stage's `profile`).
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// AWS region (overrides the stage's `region`).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Print only the result, as one JSON object on stdout (progress goes
    /// to stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// Answer yes to every question (needed to destroy without a terminal).
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
    /// More detail (repeat for even more).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Build the image if it changed, then create or update everything the
    /// stage needs, smoke-test the new version, point the alias at it and
    /// call the stage's URL as a browser would.
    Up(UpArgs),
    /// Serve the stage's API on localhost with no AWS: the function (the
    /// host binary, or the image with --docker) behind the configured path,
    /// methods, CORS preflight and API key check, rebuilt and restarted when
    /// its crates, models/, data/ or deploy.toml change.
    Dev(DevArgs),
    /// Show what `up` would create, update or leave alone; change nothing.
    Plan(PlanArgs),
    /// Build the function's image only (with --json: `{"image": "<local ref>", ...}`).
    Build(BuildArgs),
    /// Ask the deployed function (or, with --local, the image run here) for
    /// a prediction.
    Invoke(InvokeArgs),
    /// Show the function's logs, oldest first.
    Logs(LogsArgs),
    /// Show what is deployed: URL, version behind the alias, image, when.
    Status(StatusArgs),
    /// Show the stage's metrics over a window: invocations, errors,
    /// durations, cold starts, API requests and latencies, memory.
    Metrics(MetricsArgs),
    /// Point the stage's alias back at an earlier version.
    Rollback(RollbackArgs),
    /// Remove every resource of the stage (asks first on a terminal).
    Destroy(DestroyArgs),
    /// Print the IAM policy an identity needs to run every command on the
    /// stage (or, with --all-stages, on every stage deployed to AWS).
    Policy(PolicyArgs),
    /// Remove the stage's lock, left by a run you know is dead (names its
    /// holder and asks first on a terminal; --yes in CI). No lock is not
    /// an error.
    Unlock(UnlockArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// List every deployed stage of the app, from the tags in AWS (a stage
    /// deploy.toml no longer names too): URL, version served, last
    /// deployed, time to live and when it expires.
    Stages(StagesArgs),
    /// Remove the stages whose time to live (`ttl`) has passed since their
    /// last deployment; never a protected one, never one without a ttl.
    /// Without --yes, print what it would remove and change nothing.
    Prune(PruneArgs),
}

impl Command {
    /// The subcommand's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Up(_) => "up",
            Command::Dev(_) => "dev",
            Command::Plan(_) => "plan",
            Command::Build(_) => "build",
            Command::Invoke(_) => "invoke",
            Command::Logs(_) => "logs",
            Command::Status(_) => "status",
            Command::Metrics(_) => "metrics",
            Command::Rollback(_) => "rollback",
            Command::Destroy(_) => "destroy",
            Command::Policy(_) => "policy",
            Command::Unlock(_) => "unlock",
            Command::Completions(_) => "completions",
            Command::Stages(_) => "stages",
            Command::Prune(_) => "prune",
        }
    }
}

impl Cli {
    /// Parses `args` (the program's name first), with the checks clap
    /// cannot declare: `--stage` is global, so it may come before the
    /// subcommand, where a subcommand's `conflicts_with` does not see it.
    pub fn try_parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut command = Cli::command();
        let matches = command.try_get_matches_from_mut(args)?;
        let cli = Cli::from_arg_matches(&matches)?;
        if let Command::Policy(args) = &cli.command
            && args.all_stages
            && stage_given(&matches)
        {
            return Err(command.error(
                clap::error::ErrorKind::ArgumentConflict,
                "--all-stages and --stage cannot be used together: one or the other says \
                 which stages the policy covers",
            ));
        }
        Ok(cli)
    }
}

/// Whether `--stage` was typed, before or after the subcommand (its
/// default does not count).
fn stage_given(matches: &ArgMatches) -> bool {
    let typed = |m: &ArgMatches| m.value_source("stage") == Some(ValueSource::CommandLine);
    typed(matches) || matches.subcommand().is_some_and(|(_, sub)| typed(sub))
}

#[derive(Debug, Clone, Default, Args)]
pub struct UpArgs {
    /// After the first `up`, watch every input of the image and deploy.toml
    /// and run `up` again on each change (one at a time, under the stage
    /// lock). Refused on a stage with `protected = true`.
    #[arg(long)]
    pub watch: bool,
    /// With --watch: how long the files must be quiet before a change is
    /// deployed (an editor's save is several writes).
    #[arg(long, requires = "watch", value_name = "MS", default_value_t = DEFAULT_DEBOUNCE_MS)]
    pub debounce_ms: u64,
}

/// The quiet time after the last file event before `dev` or `up --watch`
/// acts on a change.
pub const DEFAULT_DEBOUNCE_MS: u64 = 500;

#[derive(Debug, Clone, Default, Args)]
pub struct DevArgs {
    /// The port to serve on, on 127.0.0.1 (0: any free port; the first
    /// line printed is the URL).
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
    /// Run the function's real image in Docker instead of the host binary.
    #[arg(long)]
    pub docker: bool,
    /// With `auth = "api_key"`: the key callers must send as `x-api-key`
    /// (by default a random one, printed at start).
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
    /// How long the files must be quiet before a change is rebuilt.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_DEBOUNCE_MS)]
    pub debounce_ms: u64,
}

#[derive(Debug, Clone, Default, Args)]
pub struct PolicyArgs {
    /// One policy for every stage of deploy.toml that deploys to AWS (those
    /// with an `endpoint-url`, such as `local`, are left out). Not with
    /// `--stage`: one or the other says which stages.
    #[arg(long)]
    pub all_stages: bool,
    /// The AWS account ID to write into the ARNs; without it, the account
    /// of the current credentials (STS GetCallerIdentity, which needs no
    /// permission).
    #[arg(long, value_name = "ID", value_parser = parse_account)]
    pub account: Option<String>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct PlanArgs {
    /// Exit 2 when the plan would change something, 0 when nothing (as
    /// `terraform plan -detailed-exitcode`), so a pipeline can gate on it;
    /// other failures keep their codes.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct BuildArgs {}

#[derive(Debug, Clone, Default, Args)]
pub struct InvokeArgs {
    /// The date to predict (YYYY-MM-DD); defaults to the stage's smoke-test date.
    #[arg(long, value_parser = parse_date, conflicts_with_all = ["from", "to"])]
    pub date: Option<NaiveDate>,
    /// First date of a range (with --to).
    #[arg(long, value_parser = parse_date, requires = "to")]
    pub from: Option<NaiveDate>,
    /// Last date of a range (with --from).
    #[arg(long, value_parser = parse_date, requires = "from")]
    pub to: Option<NaiveDate>,
    /// Run the image from `deployer build` here, in Docker, with no AWS.
    #[arg(long)]
    pub local: bool,
    /// With --local: run the static binary directly instead of the image.
    #[arg(long, requires = "local")]
    pub no_docker: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct LogsArgs {
    /// Keep printing new events until Ctrl-C.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// How far back to start: a number and a unit s, m, h or d (`10m`).
    #[arg(long, default_value = "10m", value_parser = parse_since)]
    pub since: Duration,
    /// A CloudWatch Logs filter pattern.
    #[arg(long)]
    pub filter: Option<String>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct StatusArgs {}

#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    /// How far back: a number and a unit s, m, h or d (`1h`), at most 455d
    /// (CloudWatch keeps metrics 15 months). One bar per period, at most 60.
    #[arg(long, default_value = "1h", value_parser = parse_since)]
    pub since: Duration,
}

#[derive(Debug, Clone, Default, Args)]
pub struct RollbackArgs {
    /// The version to go back to; by default the newest one below the
    /// current that passed its checks.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub to: Option<u32>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct DestroyArgs {
    /// Destroy a stage with `protected = true` without typing its name at
    /// the prompt (without a terminal, `--yes` is needed too).
    #[arg(long)]
    pub force_protected: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct UnlockArgs {}

#[derive(Debug, Clone, Default, Args)]
pub struct StagesArgs {}

#[derive(Debug, Clone, Default, Args)]
pub struct PruneArgs {}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}

/// An AWS account ID: twelve digits.
fn parse_account(text: &str) -> Result<String, String> {
    if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(text.to_string())
    } else {
        Err(format!("an AWS account ID is 12 digits, got `{text}`"))
    }
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|err| format!("expected a date written YYYY-MM-DD: {err}"))
}

/// `90s`, `10m`, `2h`, `1d` → a duration.
pub fn parse_since(text: &str) -> Result<Duration, String> {
    let usage = || format!("expected a number and a unit s, m, h or d (like 10m), got {text:?}");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(usage)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| usage())?;
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(usage()),
    };
    number
        .checked_mul(seconds_per_unit)
        .map(Duration::from_secs)
        .ok_or_else(usage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn since_takes_a_number_and_a_unit() {
        assert_eq!(parse_since("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_since("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_since("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_since("1d"), Ok(Duration::from_secs(86400)));
        for bad in ["", "m", "10", "10x", "-1m", "1.5h", "99999999999999999999d"] {
            assert!(parse_since(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn global_flags_go_after_the_subcommand_too() {
        let cli = Cli::try_parse_from(["deployer", "up", "--stage", "prod", "--json", "-y", "-vv"])
            .unwrap();
        assert_eq!(cli.global.stage, "prod");
        assert!(cli.global.json && cli.global.yes);
        assert_eq!(cli.global.verbose, 2);
        assert_eq!(cli.command.name(), "up");
    }

    #[test]
    fn invoke_takes_a_date_or_a_range_but_not_both() {
        let cli = Cli::try_parse_from([
            "deployer",
            "invoke",
            "--from",
            "2025-10-20",
            "--to",
            "2025-10-22",
        ])
        .unwrap();
        let Command::Invoke(args) = cli.command else {
            panic!("not invoke")
        };
        assert_eq!(args.from, NaiveDate::from_ymd_opt(2025, 10, 20));
        assert!(
            Cli::try_parse_from([
                "deployer",
                "invoke",
                "--date",
                "2025-10-20",
                "--from",
                "2025-10-20",
                "--to",
                "2025-10-21"
            ])
            .is_err()
        );
        assert!(Cli::try_parse_from(["deployer", "invoke", "--from", "2025-10-20"]).is_err());
        assert!(Cli::try_parse_from(["deployer", "invoke", "--date", "2025-13-01"]).is_err());
        assert!(Cli::try_parse_from(["deployer", "invoke", "--no-docker"]).is_err());
    }

    #[test]
    fn metrics_since_defaults_to_an_hour() {
        let cli = Cli::try_parse_from(["deployer", "metrics"]).unwrap();
        let Command::Metrics(args) = cli.command else {
            panic!("not metrics")
        };
        assert_eq!(args.since, Duration::from_secs(3600));
        // The bound (what CloudWatch keeps) is `commands::metrics`'s.
        assert!(Cli::try_parse_from(["deployer", "metrics", "--since", "456d"]).is_ok());
        assert!(Cli::try_parse_from(["deployer", "metrics", "--since", "1x"]).is_err());
    }

    #[test]
    fn rollback_versions_start_at_one() {
        assert!(Cli::try_parse_from(["deployer", "rollback", "--to", "0"]).is_err());
        let cli = Cli::try_parse_from(["deployer", "rollback", "--to", "3"]).unwrap();
        let Command::Rollback(args) = cli.command else {
            panic!("not rollback")
        };
        assert_eq!(args.to, Some(3));
    }

    #[test]
    fn policy_takes_one_stage_or_all_of_them_not_both() {
        assert!(Cli::try_parse_args(["deployer", "policy", "--all-stages"]).is_ok());
        assert!(Cli::try_parse_args(["deployer", "policy", "--stage", "prod"]).is_ok());
        // --stage is global: after the subcommand or before it.
        for args in [
            ["deployer", "policy", "--all-stages", "--stage", "prod"],
            ["deployer", "--stage", "prod", "policy", "--all-stages"],
        ] {
            let err = Cli::try_parse_args(args).map(|_| ()).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{err}"
            );
            assert_eq!(err.exit_code(), 2);
            assert!(
                err.to_string().contains("--all-stages and --stage"),
                "{err}"
            );
        }
    }
}
