//! `deployer plan`: what the next `up` would create, update (and which
//! fields) or leave alone. Reads only.

use std::fmt;

use anyhow::Result;
use serde::Serialize;

use super::state;
use crate::aws::{self, Clients};
use crate::cli::PlanArgs;
use crate::config::Stage;
use crate::plan::{Action, Change};
use crate::ui::Ui;

#[derive(Debug, Serialize)]
pub struct PlanReport {
    pub stage: String,
    pub image_tag: String,
    pub changes: Vec<Change>,
    /// What the configuration asks that AWS will not do as written.
    pub warnings: Vec<String>,
}

impl fmt::Display for PlanReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "stage {} (image {})", self.stage, self.image_tag)?;
        write!(f, "{}", render_changes(&self.changes))?;
        for warning in &self.warnings {
            write!(f, "\nwarning: {warning}")?;
        }
        Ok(())
    }
}

/// One line per resource: `+` create, `~` update (with the fields), `=`
/// unchanged, and a count at the end.
pub fn render_changes(changes: &[Change]) -> String {
    let mut out = String::new();
    let (mut create, mut update) = (0, 0);
    for change in changes {
        let (mark, what) = match &change.action {
            Action::Create => {
                create += 1;
                ("+", "create".to_string())
            }
            Action::Update { fields } => {
                update += 1;
                ("~", format!("update {}", fields.join(", ")))
            }
            Action::Unchanged => ("=", "unchanged".to_string()),
        };
        out += &format!("{mark} {:<22} {:<48} {what}\n", change.kind, change.name);
    }
    out += &format!("{create} to create, {update} to update");
    out
}

pub async fn run(stage: &Stage, ui: &Ui, _args: &PlanArgs) -> Result<()> {
    let clients = Clients::new(&aws::sdk_config(stage).await);
    let step = ui.step("survey");
    let survey = state::survey(stage, &clients).await?;
    step.finish("read");
    ui.result(&PlanReport {
        stage: stage.name.clone(),
        image_tag: survey.image.tag.clone(),
        changes: survey.plan.changes,
        warnings: survey.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_marks_and_counts_each_action() {
        let changes = vec![
            Change {
                kind: "iam role".into(),
                name: "a-dev-exec".into(),
                action: Action::Create,
            },
            Change {
                kind: "lambda function".into(),
                name: "a-dev".into(),
                action: Action::Update {
                    fields: vec!["memory".into(), "timeout".into()],
                },
            },
            Change {
                kind: "ecr repository".into(),
                name: "a".into(),
                action: Action::Unchanged,
            },
        ];
        let text = render_changes(&changes);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("+ iam role") && lines[0].ends_with("create"));
        assert!(lines[1].starts_with("~ lambda function"));
        assert!(lines[1].ends_with("update memory, timeout"));
        assert!(lines[2].starts_with("= ecr repository"));
        assert_eq!(lines[3], "1 to create, 1 to update");
    }
}
