//! All the deployer's output: progress, questions, results and errors.
//! One [`Ui`] is made in `main` and passed to every command; nothing else
//! prints.
//!
//! - On a terminal: a spinner (or a byte bar) per step, on stderr.
//! - With no terminal, or `CI=true`: plain lines such as
//!   `[up] build image: built (12.3s)`, no bars, and no questions:
//!   [`Ui::confirm`] refuses unless `--yes` was given.
//! - With `--json`: stdout carries nothing but the final JSON object
//!   (or, on failure, an `{"error": ...}` object); progress stays on stderr.

use std::fmt::{self, Display};
use std::io::{BufRead, IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::exit::{ExitStatus, Failure};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Spinners and bars, and questions may be asked.
    Terminal,
    /// Plain progress lines, no questions.
    Plain,
}

impl Mode {
    /// `Terminal` when stderr is a terminal and `CI` is not set to a true
    /// value (CI runners sometimes allocate a TTY; bars in their logs are
    /// noise).
    pub fn detect() -> Mode {
        let ci = std::env::var("CI")
            .is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false" | "FALSE" | "False"));
        if std::io::stderr().is_terminal() && !ci {
            Mode::Terminal
        } else {
            Mode::Plain
        }
    }
}

/// The output of one command run. Cheap to clone; clones share the step
/// records, so concurrent steps may each hold one.
#[derive(Clone)]
pub struct Ui {
    inner: Arc<Inner>,
}

struct Inner {
    command: String,
    mode: Mode,
    json: bool,
    yes: bool,
    verbose: u8,
    bars: Option<MultiProgress>,
    steps: Mutex<Vec<StepRecord>>,
}

/// A question asked where nobody can answer it.
#[derive(Debug, thiserror::Error)]
#[error(
    "{question} needs confirmation, and there is no terminal to ask on: pass {flag} to go ahead"
)]
pub struct NeedsConfirmation {
    pub question: String,
    /// The flag that answers the question in its stead (`--yes`).
    pub flag: &'static str,
}

impl Ui {
    /// The output for `command` (`up`, `plan`, ...), in the mode the
    /// environment calls for.
    pub fn new(command: &str, json: bool, yes: bool, verbose: u8) -> Ui {
        Ui::with_mode(command, Mode::detect(), json, yes, verbose)
    }

    pub fn with_mode(command: &str, mode: Mode, json: bool, yes: bool, verbose: u8) -> Ui {
        Ui {
            inner: Arc::new(Inner {
                command: command.to_string(),
                mode,
                json,
                yes,
                verbose,
                bars: (mode == Mode::Terminal).then(MultiProgress::new),
                steps: Mutex::new(Vec::new()),
            }),
        }
    }

    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    pub fn json(&self) -> bool {
        self.inner.json
    }

    pub fn verbose(&self) -> u8 {
        self.inner.verbose
    }

    /// Starts a timed step. Finish it with [`Step::finish`]; a step dropped
    /// unfinished (an error left through `?`) is recorded as not finished.
    pub fn step(&self, name: impl Into<String>) -> Step {
        let name = name.into();
        let bar = self.inner.bars.as_ref().map(|bars| {
            let bar = bars.add(ProgressBar::new_spinner());
            bar.set_style(spinner_style());
            bar.set_prefix(name.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        if bar.is_none() {
            self.line(&format!("{name} ..."));
        }
        Step {
            ui: self.clone(),
            name,
            started: Instant::now(),
            bar,
            finished: false,
        }
    }

    /// A progress line on stderr (above the bars on a terminal).
    pub fn info(&self, message: impl Display) {
        self.line(&message.to_string());
    }

    /// A progress line shown only with `-v`.
    pub fn detail(&self, message: impl Display) {
        if self.inner.verbose > 0 {
            self.line(&message.to_string());
        }
    }

    pub fn warn(&self, message: impl Display) {
        self.line(&format!("warning: {message}"));
    }

    /// A block of lines that belong together (a table): a heading line
    /// with the command's prefix, then the block as it is, printed at once
    /// so that no line of it is shifted or torn apart by a progress bar.
    pub fn block(&self, heading: impl Display, block: impl Display) {
        self.line(&format!("{heading}\n{}", block.to_string().trim_end()));
    }

    fn line(&self, text: &str) {
        let line = format!("[{}] {text}", self.inner.command);
        match &self.inner.bars {
            // Printing through the bars keeps them from being torn.
            Some(bars) if bars.println(&line).is_ok() => {}
            _ => eprintln!("{line}"),
        }
    }

    /// Whether `--yes` was given: `prune` acts only then, and otherwise
    /// says what it would do.
    pub fn answered_yes(&self) -> bool {
        self.inner.yes
    }

    /// Whether a question can be asked: a terminal on stderr (and no `CI`)
    /// and on stdin, to read the answer from.
    pub fn can_ask(&self) -> bool {
        self.inner.mode == Mode::Terminal && std::io::stdin().is_terminal()
    }

    /// Asks a yes/no question on the terminal. `--yes` answers yes; with no
    /// terminal to ask on, it is an error rather than a hang or a guess.
    /// The refusal is a usage error (exit 2) that names `--yes`.
    pub fn confirm(&self, question: &str) -> anyhow::Result<bool> {
        if self.inner.yes {
            return Ok(true);
        }
        let answer = self.ask(question, "[y/N]", "--yes")?;
        Ok(matches!(answer.as_str(), "y" | "Y" | "yes" | "YES" | "Yes"))
    }

    /// Asks the operator to type `expected` (a stage's name) to go ahead,
    /// as `terraform destroy` asks for "yes": a stronger question than
    /// [`Ui::confirm`], so `--yes` does not answer it. With no terminal it
    /// is a usage error (exit 2) naming `flag`, the flag that stands in for
    /// the typed answer.
    pub fn confirm_typed(
        &self,
        question: &str,
        expected: &str,
        flag: &'static str,
    ) -> anyhow::Result<bool> {
        let prompt = format!("type the stage's name ({expected}) to go ahead:");
        Ok(self.ask(question, &prompt, flag)? == expected)
    }

    /// Shows `question` and `prompt` on the terminal and reads one line
    /// (trimmed); refuses, naming `flag`, when nobody can answer.
    fn ask(&self, question: &str, prompt: &str, flag: &'static str) -> anyhow::Result<String> {
        if !self.can_ask() {
            let refused = NeedsConfirmation {
                question: question.to_string(),
                flag,
            };
            return Err(Failure::tag(ExitStatus::Usage, refused));
        }
        let ask = || {
            eprint!("{question} {prompt} ");
            let _ = std::io::stderr().flush();
            let mut answer = String::new();
            // A read error or end of input is no answer, which never agrees.
            match std::io::stdin().lock().read_line(&mut answer) {
                Ok(_) => answer.trim().to_string(),
                Err(_) => String::new(),
            }
        };
        Ok(match &self.inner.bars {
            Some(bars) => bars.suspend(ask),
            None => ask(),
        })
    }

    /// Prints the command's result on stdout: as text, or as one JSON
    /// object with `--json`.
    pub fn result<T: Serialize + Display>(&self, value: &T) -> anyhow::Result<()> {
        let text = if self.inner.json {
            escape_c1(&serde_json::to_string_pretty(value)?)
        } else {
            value.to_string()
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", text.trim_end())?;
        Ok(())
    }

    /// Prints one item of a result that streams (log events): a line of
    /// text, or with `--json` one compact JSON object per line (NDJSON).
    pub fn item<T: Serialize + Display>(&self, value: &T) -> anyhow::Result<()> {
        let text = if self.inner.json {
            escape_c1(&serde_json::to_string(value)?)
        } else {
            value.to_string()
        };
        let line = text.trim_end();
        match &self.inner.bars {
            // Through the bars, so a spinner does not tear the line.
            Some(bars) => bars.suspend(|| writeln!(std::io::stdout().lock(), "{line}"))?,
            None => writeln!(std::io::stdout().lock(), "{line}")?,
        }
        Ok(())
    }

    /// Every step so far, in the order they finished.
    pub fn summary(&self) -> Summary {
        let steps = match self.inner.steps.lock() {
            Ok(steps) => steps.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        Summary { steps }
    }

    fn record(&self, record: StepRecord) {
        match self.inner.steps.lock() {
            Ok(mut steps) => steps.push(record),
            Err(poisoned) => poisoned.into_inner().push(record),
        }
    }

    /// Reports a failed run: `error:` and a `caused by:` line per cause on
    /// stderr, and with `--json` also an error object on stdout, so that a
    /// script reading stdout always gets JSON.
    pub fn error(&self, err: &anyhow::Error, status: ExitStatus) {
        if let Some(bars) = &self.inner.bars {
            let _ = bars.clear();
        }
        eprintln!("{}", error_text(err));
        if self.inner.json {
            let object = serde_json::json!({
                "error": err.to_string(),
                "causes": err.chain().skip(1).map(|c| c.to_string()).collect::<Vec<_>>(),
                "exit_code": status.code(),
            });
            println!("{object}");
        }
    }
}

/// `text` safe to print on a terminal: every C0 and C1 control character
/// (ESC, CSI, BEL, CR, newline, DEL ...) but the tab written as a JSON-style
/// escape (`\u001b`), so that text a caller chose (a log line) cannot move
/// the cursor, retitle the window or hide what follows.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c != '\t' && c.is_control() {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// JSON text with DEL and the C1 controls escaped too (`\u009b`): serde
/// escapes only the C0 ones, and a terminal may act on the others. They can
/// only stand inside strings, where the escape means the same character.
fn escape_c1(json: &str) -> String {
    json.chars()
        .map(|c| match u32::from(c) {
            code @ 0x7f..=0x9f => format!("\\u{code:04x}"),
            _ => c.to_string(),
        })
        .collect()
}

/// `error: <err>` then `caused by: <cause>` for each cause.
pub fn error_text(err: &anyhow::Error) -> String {
    let mut text = format!("error: {err}");
    for cause in err.chain().skip(1) {
        text.push_str(&format!("\ncaused by: {cause}"));
    }
    text
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg} {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} {prefix:.bold} [{bar:30}] {bytes}/{total_bytes} {wide_msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// One timed step of a command (build image, ensure role, ...).
pub struct Step {
    ui: Ui,
    name: String,
    started: Instant,
    bar: Option<ProgressBar>,
    finished: bool,
}

impl Step {
    /// What the step is doing now: the spinner's text on a terminal; a line
    /// with `-v` otherwise (build logs would flood a CI log).
    pub fn message(&self, message: impl Display) {
        match &self.bar {
            Some(bar) => bar.set_message(message.to_string()),
            None => self.ui.detail(format!("{}: {message}", self.name)),
        }
    }

    /// Bytes done out of a total (pushing layers): a bar on a terminal,
    /// nothing in plain mode.
    pub fn progress(&self, done: u64, total: u64) {
        if let Some(bar) = &self.bar {
            if bar.length() != Some(total) {
                bar.set_style(bytes_style());
                bar.set_length(total);
            }
            bar.set_position(done);
        }
    }

    /// Ends the step with what happened (`created`, `unchanged`, ...).
    pub fn finish(mut self, what: impl Into<String>) {
        self.end(what.into());
    }

    fn end(&mut self, what: String) {
        self.finished = true;
        let seconds = self.started.elapsed().as_secs_f64();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.ui
            .info(format!("{}: {what} ({seconds:.1}s)", self.name));
        self.ui.record(StepRecord {
            step: self.name.clone(),
            outcome: what,
            seconds,
        });
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if !self.finished {
            self.end("did not finish".to_string());
        }
    }
}

/// A finished step, for the summary table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    pub step: String,
    pub outcome: String,
    pub seconds: f64,
}

/// The summary table: step, what happened, seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Summary {
    pub steps: Vec<StepRecord>,
}

impl Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step_width = self
            .steps
            .iter()
            .map(|s| s.step.len())
            .chain([4])
            .max()
            .unwrap_or(4);
        let what_width = self
            .steps
            .iter()
            .map(|s| s.outcome.len())
            .chain([13])
            .max()
            .unwrap_or(13);
        writeln!(
            f,
            "{:<step_width$}  {:<what_width$}  {:>7}",
            "step", "what happened", "seconds"
        )?;
        for s in &self.steps {
            writeln!(
                f,
                "{:<step_width$}  {:<what_width$}  {:>7.1}",
                s.step, s.outcome, s.seconds
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_mode_refuses_to_ask_without_yes() {
        let ui = Ui::with_mode("destroy", Mode::Plain, false, false, 0);
        let err = ui.confirm("destroy stage prod?").unwrap_err();
        assert!(err.to_string().contains("--yes"), "{err}");
        assert!(err.to_string().contains("destroy stage prod?"), "{err}");
        assert_eq!(crate::exit::classify(&err), ExitStatus::Usage);

        let ui = Ui::with_mode("destroy", Mode::Plain, false, true, 0);
        assert!(ui.confirm("destroy stage prod?").unwrap());
    }

    #[test]
    fn a_typed_confirmation_is_not_answered_by_yes() {
        // No terminal here (a test's stdin): --yes does not stand in for
        // typing the stage's name; the refusal names the flag that does.
        let ui = Ui::with_mode("destroy", Mode::Plain, false, true, 0);
        let err = ui
            .confirm_typed("destroy protected stage prod?", "prod", "--force-protected")
            .unwrap_err();
        assert!(err.to_string().contains("--force-protected"), "{err}");
        assert_eq!(crate::exit::classify(&err), ExitStatus::Usage);
    }

    #[test]
    fn control_characters_are_escaped_but_tabs_and_text_stay() {
        assert_eq!(
            escape_controls("a\u{1b}[2Jb\tc\u{9b}31m\u{7}\r\n\u{7f}é"),
            "a\\u001b[2Jb\tc\\u009b31m\\u0007\\u000d\\u000a\\u007fé"
        );
        assert_eq!(escape_controls("plain text"), "plain text");
    }

    #[test]
    fn json_output_escapes_every_control_character_and_stays_the_same_json() {
        let value = serde_json::json!({"message": "a\u{1b}[31m\u{9b}2J\u{7f}é"});
        let text = escape_c1(&serde_json::to_string(&value).unwrap());
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            value
        );
    }

    #[test]
    fn steps_are_timed_and_recorded_even_when_dropped() {
        let ui = Ui::with_mode("up", Mode::Plain, false, false, 0);
        let step = ui.step("build image");
        std::thread::sleep(Duration::from_millis(20));
        step.finish("built");
        {
            let _failed = ui.clone().step("ensure role");
        }
        let summary = ui.summary();
        assert_eq!(summary.steps.len(), 2);
        assert_eq!(summary.steps[0].step, "build image");
        assert_eq!(summary.steps[0].outcome, "built");
        assert!(summary.steps[0].seconds >= 0.02, "{:?}", summary.steps[0]);
        assert_eq!(summary.steps[1].outcome, "did not finish");

        let table = summary.to_string();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(
            lines[0].starts_with("step") && lines[0].contains("what happened"),
            "{table}"
        );
        assert!(
            lines[1].starts_with("build image") && lines[1].contains("built"),
            "{table}"
        );
    }

    #[test]
    fn the_summary_serializes_as_a_list_of_steps() {
        let ui = Ui::with_mode("up", Mode::Plain, true, false, 0);
        ui.step("plan").finish("3 changes");
        let json = serde_json::to_value(ui.summary()).unwrap();
        assert_eq!(json[0]["step"], "plan");
        assert_eq!(json[0]["outcome"], "3 changes");
        assert!(json[0]["seconds"].is_number());
    }

    #[test]
    fn error_text_lists_every_cause() {
        let err = anyhow::anyhow!("connection refused")
            .context("reading the function")
            .context("planning stage dev");
        let text = error_text(&err);
        assert_eq!(
            text,
            "error: planning stage dev\ncaused by: reading the function\ncaused by: connection refused"
        );
    }
}
