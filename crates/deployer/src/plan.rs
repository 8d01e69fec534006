//! The plan's vocabulary: per resource, an [`Action`] over that resource
//! kind's own field enum, so that an update names exactly the fields that
//! differ and the code that carries it out must handle every one of them
//! (a `match` without a `_` arm). `stage::plan` builds the stage's plan
//! from these; `deployer plan` prints it and `up` carries out the very same
//! value.
//!
//! For output, [`Change`] flattens a typed action into the `--json`
//! contract that CI pipelines read, unchanged since the plan was first
//! printed: `{"kind", "name", "action": "create"|"update"|"unchanged",
//! "fields": [...]}` (fields with `update` only). A removal is written as
//! an update of the field `removed`, as it always was. An update may also
//! carry `"values": [{"field", "old", "new"}]`, each changed field's value
//! before and after (as `terraform plan` shows them); a secret (the
//! function's environment) is `{"field", "sensitive": true}` with no values.

use std::collections::BTreeSet;
use std::fmt::{self, Debug};

use serde::{Serialize, Serializer};

/// What happens to one resource; `F` is the resource kind's field enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<F> {
    Create,
    /// The fields whose desired value differs from the actual one (never
    /// empty: [`Action::update_if`] makes it `Unchanged` then).
    Update(BTreeSet<F>),
    /// The resource exists and the stage no longer wants it.
    Delete,
    Unchanged,
}

impl<F: Ord> Action<F> {
    /// `Update` with these fields, or `Unchanged` when there are none.
    pub fn update_if(fields: BTreeSet<F>) -> Action<F> {
        if fields.is_empty() {
            Action::Unchanged
        } else {
            Action::Update(fields)
        }
    }

    /// `Create` when `missing`, else `Unchanged`: for resources that have
    /// nothing to update (they exist or they do not).
    pub fn create_if(missing: bool) -> Action<F> {
        if missing {
            Action::Create
        } else {
            Action::Unchanged
        }
    }

    pub fn is_change(&self) -> bool {
        !matches!(self, Action::Unchanged)
    }
}

/// A field of a resource kind: its name in the plan's output (the serde
/// name of the variant, e.g. `scan_on_push`).
pub trait Field: Ord + Copy + Debug + Serialize {
    fn name(self) -> String {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(name)) => name,
            // Field enums are unit variants: serde always writes a string.
            _ => format!("{self:?}"),
        }
    }
}

/// The field enum of a resource that is only ever created, kept or
/// deleted: it has no variant, so `Update` cannot be built for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum NoField {}

impl Field for NoField {}

/// Declares [`Kind`], its [`Kind::ALL`] and its [`Kind::as_str`] from one
/// list, so that no kind can be missing from `ALL` or from the output.
macro_rules! kinds {
    ($($kind:ident => $text:literal,)*) => {
        /// A kind of resource a stage has: the only spelling of a kind, in
        /// `plan`, `up`, `status`, `destroy` and their `--json` (`kind`,
        /// with the strings pipelines have always read). A new kind is a
        /// new line below: the compiler then lists every `match` that must
        /// say what to do with it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Kind {
            $($kind,)*
        }

        impl Kind {
            /// Every kind, in the order `up` creates them (the provisioned
            /// concurrency goes before the reservation only when it shrinks
            /// below it).
            pub const ALL: &'static [Kind] = &[$(Kind::$kind,)*];

            /// The kind as output spells it (the `--json` contract).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Kind::$kind => $text,)*
                }
            }
        }
    };
}

kinds! {
    EcrRepository => "ecr repository",
    EcrLifecyclePolicy => "ecr lifecycle policy",
    EcrRepositoryPolicy => "ecr repository policy",
    EcrImage => "ecr image",
    IamRole => "iam role",
    LogGroup => "log group",
    LambdaFunction => "lambda function",
    LambdaReservedConcurrency => "lambda reserved concurrency",
    LambdaVersion => "lambda version",
    LambdaAlias => "lambda alias",
    LambdaProvisionedConcurrency => "lambda provisioned concurrency",
    ApiRestApi => "api rest api",
    ApiResource => "api resource",
    ApiMethod => "api method",
    ApiGatewayResponse => "api gateway response",
    ApiDeployment => "api deployment",
    ApiStage => "api stage",
    ApiKey => "api key",
    ApiUsagePlan => "api usage plan",
    SnsTopic => "sns topic",
    SnsSubscription => "sns subscription",
    CloudWatchAlarm => "cloudwatch alarm",
    LambdaPermission => "lambda permission",
    AcmCertificate => "acm certificate",
    DnsRecord => "dns record",
    ApiDomainName => "api domain name",
    ApiBasePathMapping => "api base path mapping",
}

impl Kind {
    /// Whether `status` lists the kind on a line of its own; the others
    /// are parts of one of these (the API's methods) or settings `status`
    /// shows elsewhere (concurrency).
    pub fn in_status(self) -> bool {
        match self {
            Kind::EcrRepository
            | Kind::IamRole
            | Kind::LogGroup
            | Kind::LambdaFunction
            | Kind::LambdaVersion
            | Kind::LambdaAlias
            | Kind::ApiRestApi
            | Kind::ApiStage
            | Kind::LambdaPermission => true,
            // The custom domain: each of its parts is a row of `status`.
            Kind::AcmCertificate
            | Kind::DnsRecord
            | Kind::ApiDomainName
            | Kind::ApiBasePathMapping => true,
            // The alarms and the topic that pages.
            Kind::SnsTopic | Kind::SnsSubscription | Kind::CloudWatchAlarm => true,
            Kind::EcrLifecyclePolicy
            | Kind::EcrRepositoryPolicy
            | Kind::EcrImage
            | Kind::LambdaReservedConcurrency
            | Kind::LambdaProvisionedConcurrency
            | Kind::ApiResource
            | Kind::ApiMethod
            | Kind::ApiGatewayResponse
            | Kind::ApiDeployment
            | Kind::ApiKey
            | Kind::ApiUsagePlan => false,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, not `write_str`: the tables align kinds with `{:<20}`.
        f.pad(self.as_str())
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl From<Kind> for String {
    fn from(kind: Kind) -> String {
        kind.as_str().to_string()
    }
}

/// One resource and its action, as printed by `plan` and `up` (text and
/// `--json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `ecr repository`, `iam role`, `lambda function`, ...
    pub kind: Kind,
    pub name: String,
    #[serde(flatten)]
    pub action: ChangeAction,
    /// With an update: the changed fields' old and new values, where the
    /// plan knows them (absent from the JSON when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<FieldChange>,
}

/// One changed field, from which value to which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    /// `None` when the field has no value before (or is sensitive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
    /// A secret: shown as changed, never with its values. `detail` may say
    /// what changed without them (the names of the variables).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl FieldChange {
    /// `field` from `old` (`None`: unset) to `new`.
    pub fn new<F: Field>(
        field: F,
        old: Option<impl ToString>,
        new: Option<impl ToString>,
    ) -> FieldChange {
        FieldChange {
            field: field.name(),
            old: old.map(|v| v.to_string()),
            new: new.map(|v| v.to_string()),
            sensitive: false,
            detail: None,
        }
    }

    /// A secret `field` changed; `detail` says what without its values.
    pub fn sensitive<F: Field>(field: F, detail: impl Into<String>) -> FieldChange {
        FieldChange {
            field: field.name(),
            old: None,
            new: None,
            sensitive: true,
            detail: Some(detail.into()),
        }
    }
}

/// An [`Action`] with its fields spelled out, in the output's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeAction {
    Create,
    Update(Vec<String>),
    Delete,
    Unchanged,
}

impl ChangeAction {
    pub fn is_change(&self) -> bool {
        !matches!(self, ChangeAction::Unchanged)
    }
}

impl Change {
    /// The one place a typed action becomes output.
    pub fn new<F: Field>(kind: Kind, name: impl Into<String>, action: &Action<F>) -> Change {
        Change {
            kind,
            name: name.into(),
            action: match action {
                Action::Create => ChangeAction::Create,
                Action::Update(fields) => {
                    ChangeAction::Update(fields.iter().map(|f| f.name()).collect())
                }
                Action::Delete => ChangeAction::Delete,
                Action::Unchanged => ChangeAction::Unchanged,
            },
            values: Vec::new(),
        }
    }

    /// The same change with the old and new values of its fields.
    pub fn with_values(mut self, values: Vec<FieldChange>) -> Change {
        self.values = values;
        self
    }
}

/// The `--json` contract: `action` and, with `update`, `fields`. A delete
/// keeps the shape it had before deletes were an action of their own.
impl Serialize for ChangeAction {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(tag = "action", rename_all = "snake_case")]
        enum Wire<'a> {
            Create,
            Update { fields: &'a [String] },
            Unchanged,
        }
        let removed = ["removed".to_string()];
        match self {
            ChangeAction::Create => Wire::Create,
            ChangeAction::Update(fields) => Wire::Update { fields },
            ChangeAction::Delete => Wire::Update { fields: &removed },
            ChangeAction::Unchanged => Wire::Unchanged,
        }
        .serialize(serializer)
    }
}

/// Every change, in the order `up` makes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
}

/// One line per resource: `+` create, `~` update (with the fields), `-`
/// delete, `=` unchanged, and a count at the end.
pub fn render_changes(changes: &[Change]) -> String {
    let mut out = String::new();
    let (mut create, mut update, mut delete) = (0, 0, 0);
    // Wider than the usual 22 when a longer kind is present, so the names
    // line up.
    let kind_width = changes
        .iter()
        .map(|c| c.kind.as_str().len())
        .fold(22, usize::max);
    for change in changes {
        let (mark, what) = match &change.action {
            ChangeAction::Create => {
                create += 1;
                ("+", "create".to_string())
            }
            ChangeAction::Update(fields) => {
                update += 1;
                ("~", format!("update {}", fields.join(", ")))
            }
            ChangeAction::Delete => {
                delete += 1;
                ("-", "delete".to_string())
            }
            ChangeAction::Unchanged => ("=", "unchanged".to_string()),
        };
        out += &format!(
            "{mark} {:<kind_width$} {:<48} {what}\n",
            change.kind, change.name
        );
        for value in &change.values {
            out += &format!("      {}\n", render_value(value));
        }
    }
    out += &format!("{create} to create, {update} to update");
    if delete > 0 {
        out += &format!(", {delete} to delete");
    }
    out
}

/// `memory: 128 -> 256`, `retention: (none) -> 30`, or for a secret
/// `environment: (sensitive) API_TOKEN changed`.
fn render_value(value: &FieldChange) -> String {
    if value.sensitive {
        let detail = value.detail.as_deref().unwrap_or("changed");
        return format!("{}: (sensitive) {detail}", value.field);
    }
    let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
    format!(
        "{}: {} -> {}",
        value.field,
        shown(&value.old),
        shown(&value.new)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Knob {
        Memory,
        TimeoutSeconds,
    }
    impl Field for Knob {}

    fn changes() -> Vec<Change> {
        vec![
            Change::new(Kind::IamRole, "a-dev-exec", &Action::<NoField>::Create),
            Change::new(
                Kind::LambdaFunction,
                "a-dev",
                // Listed out of order: the output follows the enum's order.
                &Action::Update(BTreeSet::from([Knob::TimeoutSeconds, Knob::Memory])),
            ),
            Change::new(Kind::ApiKey, "a-dev", &Action::<NoField>::Delete),
            Change::new(Kind::EcrRepository, "a", &Action::<Knob>::Unchanged),
        ]
    }

    #[test]
    fn the_json_contract_is_the_one_pipelines_read() {
        // The shape `plan --json` and `up --json` have always written.
        let json = serde_json::to_string(&Plan { changes: changes() }).unwrap();
        assert_eq!(
            json,
            r#"{"changes":[{"kind":"iam role","name":"a-dev-exec","action":"create"},{"kind":"lambda function","name":"a-dev","action":"update","fields":["memory","timeout_seconds"]},{"kind":"api key","name":"a-dev","action":"update","fields":["removed"]},{"kind":"ecr repository","name":"a","action":"unchanged"}]}"#
        );
    }

    #[test]
    fn values_are_shown_old_to_new_and_secrets_without_them() {
        let update = Action::Update(BTreeSet::from([Knob::Memory, Knob::TimeoutSeconds]));
        let change = Change::new(Kind::LambdaFunction, "a-dev", &update).with_values(vec![
            FieldChange::new(Knob::Memory, Some(128), Some(256)),
            FieldChange::sensitive(Knob::TimeoutSeconds, "TOKEN changed"),
        ]);
        let text = render_changes(std::slice::from_ref(&change));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1].trim(), "memory: 128 -> 256", "{text}");
        assert_eq!(
            lines[2].trim(),
            "timeout_seconds: (sensitive) TOKEN changed"
        );
        let json = serde_json::to_value(&change).unwrap();
        assert_eq!(
            json["fields"],
            serde_json::json!(["memory", "timeout_seconds"])
        );
        assert_eq!(
            json["values"],
            serde_json::json!([
                {"field": "memory", "old": "128", "new": "256"},
                {"field": "timeout_seconds", "sensitive": true, "detail": "TOKEN changed"}
            ])
        );
    }

    #[test]
    fn render_marks_and_counts_each_action() {
        let text = render_changes(&changes());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("+ iam role") && lines[0].ends_with("create"));
        assert!(lines[1].starts_with("~ lambda function"));
        assert!(lines[1].ends_with("update memory, timeout_seconds"));
        assert!(lines[2].starts_with("- api key") && lines[2].ends_with("delete"));
        assert!(lines[3].starts_with("= ecr repository"));
        assert_eq!(lines[4], "1 to create, 1 to update, 1 to delete");
    }

    #[test]
    fn every_kind_is_listed_once_and_spelled_as_pipelines_read_it() {
        let spelled: std::collections::BTreeSet<&str> =
            Kind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(spelled.len(), Kind::ALL.len());
        assert_eq!(
            serde_json::to_string(&Kind::LambdaProvisionedConcurrency).unwrap(),
            r#""lambda provisioned concurrency""#
        );
        assert_eq!(format!("[{:<12}]", Kind::IamRole), "[iam role    ]");
        // `ALL` is in `up`'s order: the first and last things it makes
        // for the API (the custom domain's kinds follow, made once the API
        // exists).
        assert_eq!(Kind::ALL[0], Kind::EcrRepository);
        let api_last = Kind::ALL
            .iter()
            .position(|k| *k == Kind::LambdaPermission)
            .unwrap();
        assert_eq!(Kind::ALL[api_last + 1], Kind::AcmCertificate);
    }

    #[test]
    fn an_update_without_fields_is_no_change() {
        assert_eq!(
            Action::<Knob>::update_if(BTreeSet::new()),
            Action::Unchanged
        );
        assert!(!Action::<Knob>::Unchanged.is_change());
        assert!(Action::<Knob>::Delete.is_change());
    }
}
