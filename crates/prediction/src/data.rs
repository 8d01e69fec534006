//! Loaders for the two data files (`data/PDE-Runtimes-2025.csv` and
//! `data/file_audit.json`), in the formats of `docs/api.md`.
//! A malformed row or record is skipped and counted, never fatal: real
//! audit trails carry a few. A file that cannot be read at all is an error
//! that names the file.

use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};

use crate::LoadError;

/// The runtimes file's name inside the data directory.
pub const RUNTIMES_FILE: &str = "PDE-Runtimes-2025.csv";
/// The file audit's name inside the data directory.
pub const AUDIT_FILE: &str = "file_audit.json";
/// The runtimes file's header, exactly.
pub const RUNTIMES_HEADER: &str =
    "run_date,job_name,start_time,end_time,runtime_minutes,status,records_processed";

/// The pipeline's jobs, in chain order.
pub const JOBS: [&str; 5] = [
    "pde_ingest",
    "pde_validate",
    "pde_enrich",
    "pde_aggregate",
    "pde_report",
];
/// The incoming feeds.
pub const FEEDS: [&str; 4] = ["claims", "pharmacy", "prescriber", "plan"];

/// How a job run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Success,
    /// A failed attempt; a rerun follows on the same date.
    Failed,
    /// No run (e.g. a holiday); start and end are empty.
    Skipped,
}

/// One row of the runtimes file.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRun {
    pub run_date: NaiveDate,
    /// Index into [`JOBS`].
    pub job: usize,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub runtime_minutes: f64,
    pub status: RunStatus,
    pub records_processed: u64,
}

/// How a received file was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    Received,
    /// Arrived after 03:00 UTC.
    Late,
    /// Malformed; re-sent later the same day.
    Rejected,
}

/// One record of the file audit.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedFile {
    pub file_name: String,
    /// Index into [`FEEDS`].
    pub feed: usize,
    pub business_date: NaiveDate,
    pub received_at: DateTime<Utc>,
    pub size_bytes: u64,
    pub record_count: u64,
    pub status: FileStatus,
}

/// Both files, loaded, with what was skipped.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub runs: Vec<JobRun>,
    pub files: Vec<ReceivedFile>,
    /// Malformed rows skipped in the runtimes file (the header aside).
    pub skipped_runs: usize,
    /// Malformed records skipped in the file audit.
    pub skipped_files: usize,
}

impl Dataset {
    /// Loads both files from `data_dir`.
    pub fn load(data_dir: &Path) -> Result<Dataset, LoadError> {
        let runs_path = data_dir.join(RUNTIMES_FILE);
        let runs_text = read(&runs_path)?;
        let (runs, skipped_runs) = parse_runs(&runs_text).map_err(|message| LoadError::File {
            path: runs_path.clone(),
            message,
        })?;
        let audit_path = data_dir.join(AUDIT_FILE);
        let audit_text = read(&audit_path)?;
        let (files, skipped_files) =
            parse_audit(&audit_text).map_err(|message| LoadError::File {
                path: audit_path.clone(),
                message,
            })?;
        Ok(Dataset {
            runs,
            files,
            skipped_runs,
            skipped_files,
        })
    }

    /// One line for logs: what was loaded and what was skipped.
    pub fn summary(&self) -> String {
        format!(
            "{} job runs ({} malformed rows skipped), {} received files ({} malformed records skipped)",
            self.runs.len(),
            self.skipped_runs,
            self.files.len(),
            self.skipped_files
        )
    }
}

fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|e| LoadError::File {
        path: path.to_path_buf(),
        message: format!("cannot read: {e}"),
    })
}

/// Parses the runtimes CSV. Errs only when the header is wrong; returns the
/// good rows and how many were skipped.
pub fn parse_runs(text: &str) -> Result<(Vec<JobRun>, usize), String> {
    let mut lines = text.lines();
    match lines.next() {
        Some(header) if header.trim_end() == RUNTIMES_HEADER => {}
        Some(header) => {
            return Err(format!(
                "line 1: expected the header `{RUNTIMES_HEADER}`, found `{header}`"
            ));
        }
        None => return Err("the file is empty (expected a header line)".to_string()),
    }
    let mut runs = Vec::with_capacity(text.len() / 90);
    let mut skipped = 0;
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        match parse_run(line.trim_end()) {
            Some(run) => runs.push(run),
            None => skipped += 1,
        }
    }
    Ok((runs, skipped))
}

fn parse_run(line: &str) -> Option<JobRun> {
    let mut fields = line.split(',');
    let run_date = parse_date(fields.next()?)?;
    let job_name = fields.next()?;
    let start = fields.next()?;
    let end = fields.next()?;
    let runtime_minutes: f64 = fields.next()?.parse().ok()?;
    let status = match fields.next()? {
        "SUCCESS" => RunStatus::Success,
        "FAILED" => RunStatus::Failed,
        "SKIPPED" => RunStatus::Skipped,
        _ => return None,
    };
    let records_processed: u64 = fields.next()?.parse().ok()?;
    if fields.next().is_some() || !runtime_minutes.is_finite() || runtime_minutes < 0.0 {
        return None;
    }
    let job = JOBS.iter().position(|j| *j == job_name)?;
    let (start, end) = match status {
        RunStatus::Skipped if start.is_empty() && end.is_empty() => (None, None),
        RunStatus::Skipped => return None,
        _ => {
            let (s, e) = (parse_time(start)?, parse_time(end)?);
            if e < s {
                return None;
            }
            (Some(s), Some(e))
        }
    };
    Some(JobRun {
        run_date,
        job,
        start,
        end,
        runtime_minutes,
        status,
        records_processed,
    })
}

/// Parses the audit JSON. Errs only when the text is not a JSON array;
/// returns the good records and how many were skipped.
pub fn parse_audit(text: &str) -> Result<(Vec<ReceivedFile>, usize), String> {
    let values: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|e| format!("not a JSON array of records: {e}"))?;
    let mut files = Vec::with_capacity(values.len());
    let mut skipped = 0;
    for value in &values {
        match parse_file(value) {
            Some(file) => files.push(file),
            None => skipped += 1,
        }
    }
    Ok((files, skipped))
}

fn parse_file(value: &serde_json::Value) -> Option<ReceivedFile> {
    let text = |key: &str| value.get(key)?.as_str();
    let number = |key: &str| value.get(key)?.as_u64();
    let feed = FEEDS.iter().position(|f| Some(*f) == text("feed"))?;
    let status = match text("status")? {
        "RECEIVED" => FileStatus::Received,
        "LATE" => FileStatus::Late,
        "REJECTED" => FileStatus::Rejected,
        _ => return None,
    };
    Some(ReceivedFile {
        file_name: text("file_name")?.to_string(),
        feed,
        business_date: parse_date(text("business_date")?)?,
        received_at: parse_time(text("received_at")?)?,
        size_bytes: number("size_bytes")?,
        record_count: number("record_count")?,
        status,
    })
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_skip_and_count_malformed_rows() {
        let text = format!(
            "{RUNTIMES_HEADER}\n\
             2025-01-02,pde_ingest,2025-01-02T01:05:00Z,2025-01-02T01:47:12Z,42.2,SUCCESS,1234567\n\
             2025-01-01,pde_ingest,,,0.0,SKIPPED,0\n\
             2025-01-02,pde_nope,2025-01-02T01:05:00Z,2025-01-02T01:47:12Z,42.2,SUCCESS,1\n\
             2025-01-02,pde_ingest,yesterday,2025-01-02T01:47:12Z,42.2,SUCCESS,1\n\
             2025-02-30,pde_ingest,2025-01-02T01:05:00Z,2025-01-02T01:47:12Z,42.2,SUCCESS,1\n\
             2025-01-02,pde_ingest,2025-01-02T01:05:00Z\n\
             2025-01-02,pde_ingest,2025-01-02T01:05:00Z,2025-01-02T01:47:12Z,-3,SUCCESS,1\n\
             \n"
        );
        let (runs, skipped) = parse_runs(&text).unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(skipped, 5);
        assert_eq!(runs[0].records_processed, 1_234_567);
        assert_eq!(runs[1].status, RunStatus::Skipped);
    }

    #[test]
    fn runs_with_a_wrong_header_are_an_error() {
        let err = parse_runs("date,job\n").unwrap_err();
        assert!(err.contains("header"), "{err}");
        assert!(parse_runs("").is_err());
    }

    #[test]
    fn audit_skips_and_counts_malformed_records() {
        let text = r#"[
          {"file_name": "PDE_CLAIMS_20250102.dat", "feed": "claims", "business_date": "2025-01-02",
           "received_at": "2025-01-02T00:41:13Z", "size_bytes": 734003200, "record_count": 1048576,
           "status": "RECEIVED"},
          {"file_name": "x", "feed": "claims", "business_date": "2025-01-02",
           "received_at": "2025-01-02T00:41:13Z", "size_bytes": 1, "record_count": "many",
           "status": "RECEIVED"},
          {"file_name": "x", "feed": "weather"},
          42,
          {"file_name": "x", "feed": "plan", "business_date": "2025-13-01",
           "received_at": "2025-01-02T00:41:13Z", "size_bytes": 1, "record_count": 1, "status": "LATE"}
        ]"#;
        let (files, skipped) = parse_audit(text).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(skipped, 4);
        assert_eq!(files[0].record_count, 1_048_576);
        assert!(parse_audit("{not json").is_err());
    }
}
