//! The plan: per resource, what `up` will do to it. `deployer plan` prints
//! it; `up` carries it out. Both come from the same `diff_*` functions, so
//! the plan is exactly what the next `up` does.

use serde::Serialize;

/// What happens to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Create,
    /// The fields whose desired value differs from the actual one.
    Update { fields: Vec<String> },
    Unchanged,
}

impl Action {
    /// `Update` with these fields, or `Unchanged` when there are none.
    pub fn update_if(fields: Vec<String>) -> Action {
        if fields.is_empty() {
            Action::Unchanged
        } else {
            Action::Update { fields }
        }
    }

    pub fn is_change(&self) -> bool {
        !matches!(self, Action::Unchanged)
    }
}

/// One resource and its action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `ecr repository`, `iam role`, `lambda function`, ...
    pub kind: String,
    pub name: String,
    #[serde(flatten)]
    pub action: Action,
}

/// Every change, in the order `up` makes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
}
