//! `deployer logs`: the function's CloudWatch log events, oldest first and
//! each once; with `--follow`, new ones as they come until Ctrl-C. The
//! function writes one JSON object per request; those lines are shown as
//! `12:01:02 200 GET 2025-10-20 0.4 ms cold <request id>`, every other
//! line (Lambda's START/REPORT, panics) as it is. With `--json`, one JSON
//! object per event and line (NDJSON), the parsed request included.
//!
//! Log lines carry text callers chose, so no control character of theirs
//! reaches the terminal: the text form writes them escaped (ESC as
//! `\u001b`, every C0 and C1 control but the tab), and JSON escapes them
//! (`\u001b`; [`Ui::item`] escapes DEL and the C1 controls too).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use chrono::{DateTime, Local, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::aws::logs::{self, Follower, LogEvent};
use crate::aws::{self, Clients};
use crate::cli::LogsArgs;
use crate::config::Stage;
use crate::ui::{Ui, escape_controls};

/// One event as shown: its time, its stream, its text and, for the
/// function's request lines, the parsed request.
#[derive(Debug, Serialize)]
pub struct ShownEvent {
    /// RFC 3339, UTC.
    pub time: String,
    /// Milliseconds since the epoch, as CloudWatch has it.
    pub timestamp: i64,
    pub stream: String,
    pub event_id: String,
    pub message: String,
    /// The message parsed, when it is a JSON object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
}

impl ShownEvent {
    pub fn new(event: &LogEvent) -> ShownEvent {
        let message = event.message.trim_end().to_string();
        let request = serde_json::from_str::<Value>(&message)
            .ok()
            .filter(Value::is_object);
        ShownEvent {
            time: utc(event.timestamp)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default(),
            timestamp: event.timestamp,
            stream: event.stream.clone(),
            event_id: event.event_id.clone(),
            message,
            request,
        }
    }
}

impl fmt::Display for ShownEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = utc(self.timestamp)
            .map(|t| t.with_timezone(&Local).format("%H:%M:%S").to_string())
            .unwrap_or_else(|| "--:--:--".into());
        // A log line holds what callers sent (a path, a bad date): its
        // control characters are escaped, so none reaches the terminal.
        let line = match &self.request {
            Some(request) => request_line(request),
            None => self.message.clone(),
        };
        write!(f, "{time} {}", escape_controls(&line))
    }
}

fn utc(timestamp_ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(timestamp_ms)
}

/// `200 GET 2025-10-20 0.4 ms cold <request id>` from the function's
/// request log; fields it lacks are left out, and an object that is not
/// one (another program's JSON) is shown compactly as it is.
pub fn request_line(request: &Value) -> String {
    let field = |name: &str| request.get(name).filter(|v| !v.is_null());
    if field("status").is_none() && field("request_id").is_none() {
        return request.to_string();
    }
    let text = |name: &str| {
        field(name).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    let mut parts: Vec<String> = Vec::new();
    parts.extend(text("status"));
    parts.extend(text("method"));
    match (text("date"), text("from"), text("to")) {
        (Some(date), _, _) => parts.push(date),
        (None, Some(from), Some(to)) => parts.push(format!("{from}..{to}")),
        _ => parts.extend(text("path")),
    }
    if let Some(us) = field("duration_us").and_then(Value::as_f64) {
        parts.push(format!("{:.1} ms", us / 1000.0));
    }
    if field("cold_start").and_then(Value::as_bool) == Some(true) {
        parts.push("cold".into());
    }
    if let Some(error) = text("error") {
        parts.push(format!("error: {error}"));
    }
    parts.extend(text("request_id"));
    parts.join(" ")
}

pub async fn run(stage: &Stage, ui: &Ui, args: &LogsArgs) -> Result<()> {
    let clients = Clients::new(&aws::sdk_config(&stage.connection()).await);
    let group = stage.log_group_name();
    let since_ms = since_ms(args.since);
    let filter = args.filter.as_deref();
    ui.detail(format!("log group {group}"));

    if !args.follow {
        let events = logs::filter_events(&clients.logs, &group, since_ms, filter).await?;
        if events.is_empty() {
            ui.info(format!("no events in {group} yet"));
        }
        for event in &events {
            ui.item(&ShownEvent::new(event))?;
        }
        return Ok(());
    }

    ui.info(format!("following {group} (Ctrl-C stops)"));
    let mut follower = Follower::new(&group, since_ms, filter);
    let mut printed = Ok(());
    logs::follow(
        &clients.logs,
        &mut follower,
        |event| {
            if printed.is_ok() {
                printed = ui.item(&ShownEvent::new(event));
            }
        },
        async {
            // A failure to listen for Ctrl-C leaves only the kill to stop it.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        },
    )
    .await?;
    printed
}

/// The epoch milliseconds `since` ago.
fn since_ms(since: Duration) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let start = now.saturating_sub(since);
    i64::try_from(start.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(message: &str) -> LogEvent {
        LogEvent {
            event_id: "1".into(),
            timestamp: 1_760_961_722_000,
            stream: "s".into(),
            message: message.into(),
        }
    }

    #[test]
    fn a_request_line_is_shown_readably() {
        let line = r#"{"request_id":"abc-1","method":"GET","path":"/predict","date":"2025-10-20","status":200,"duration_us":412,"cold_start":true}"#;
        let shown = ShownEvent::new(&event(line));
        let text = shown.to_string();
        assert!(
            text.ends_with(" 200 GET 2025-10-20 0.4 ms cold abc-1"),
            "{text}"
        );
        assert_eq!(shown.request.as_ref().unwrap()["status"], 200);
    }

    #[test]
    fn a_range_and_an_error_are_shown() {
        let range = serde_json::json!({"request_id": "r", "method": "POST", "from": "2025-10-20",
            "to": "2025-10-22", "status": 200, "duration_us": 2500, "cold_start": false});
        assert_eq!(
            request_line(&range),
            "200 POST 2025-10-20..2025-10-22 2.5 ms r"
        );
        let bad = serde_json::json!({"request_id": "r", "method": "GET", "path": "/x",
            "status": 404, "duration_us": 10, "cold_start": false, "error": "no such path"});
        assert_eq!(
            request_line(&bad),
            "404 GET /x 0.0 ms error: no such path r"
        );
    }

    #[test]
    fn other_lines_are_shown_as_they_are() {
        let start = "START RequestId: 42 Version: 3\n";
        let shown = ShownEvent::new(&event(start));
        assert!(shown.request.is_none());
        assert!(
            shown
                .to_string()
                .ends_with(" START RequestId: 42 Version: 3"),
            "{shown}"
        );
        // JSON that is not a request log stays whole.
        let other = ShownEvent::new(&event(r#"{"level":"warn"}"#));
        assert!(
            other.to_string().ends_with(r#" {"level":"warn"}"#),
            "{other}"
        );
        // A JSON array or number is not a request.
        assert!(ShownEvent::new(&event("[1,2]")).request.is_none());
    }

    #[test]
    fn json_events_carry_time_and_request() {
        let shown = ShownEvent::new(&event(r#"{"request_id":"x","status":200}"#));
        let json = serde_json::to_value(&shown).unwrap();
        assert_eq!(json["time"], "2025-10-20T12:02:02.000Z");
        assert_eq!(json["timestamp"], 1_760_961_722_000_i64);
        assert_eq!(json["request"]["request_id"], "x");
        let plain = serde_json::to_value(ShownEvent::new(&event("hello"))).unwrap();
        assert!(plain.get("request").is_none());
        assert_eq!(plain["message"], "hello");
    }

    #[test]
    fn since_counts_back_from_now() {
        let now = since_ms(Duration::ZERO);
        let ten_minutes_ago = since_ms(Duration::from_secs(600));
        assert!((now - ten_minutes_ago - 600_000).abs() < 1000);
    }
}
