//! The seeded generator of the sample data. Same seed, same bytes: anyone
//! can regenerate `data/` and check it. The data carries the structure real
//! batch pipelines show, so the models have something honest to learn:
//! weekday versus weekend volume, Monday and after-holiday catch-up,
//! month-start, month-end and quarter-end spikes, federal holidays (light or
//! no files, `SKIPPED` runs), a gentle upward trend, runtimes that grow with
//! the records processed, noise with an occasional slow run, failed attempts
//! with reruns, late and rejected files, and a few malformed rows and
//! records that the loaders must skip.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::calendar::{self, DayFacts};
use crate::data::{AUDIT_FILE, FEEDS, JOBS, RUNTIMES_FILE, RUNTIMES_HEADER};

/// How many malformed rows the generator slips into the runtimes file.
pub const MALFORMED_RUNS: usize = 4;
/// How many malformed records the generator slips into the file audit.
pub const MALFORMED_AUDIT_RECORDS: usize = 3;

/// The seed the shipped `data/` was generated with.
pub const DEFAULT_SEED: u64 = 20250101;

/// A weekday's records per feed at the start of the year.
const FEED_BASE_RECORDS: [f64; 4] = [1_000_000.0, 620_000.0, 180_000.0, 45_000.0];
/// Bytes per record, per feed (for `size_bytes`).
const FEED_RECORD_BYTES: [u64; 4] = [700, 520, 310, 260];
/// Usual arrival, minutes after midnight UTC, per feed.
const FEED_BASE_ARRIVAL: [f64; 4] = [38.0, 24.0, 52.0, 15.0];
/// A file received after this minute of the day is `LATE` (03:00 UTC).
const LATE_AFTER_MINUTE: f64 = 180.0;
/// Runtime minutes per job: fixed part and minutes per million records.
const JOB_COST: [(f64, f64); 5] = [
    (10.0, 18.0),
    (6.0, 10.0),
    (12.0, 26.0),
    (8.0, 14.0),
    (5.0, 2.0),
];

/// The two files' contents.
pub struct SampleData {
    pub runtimes_csv: String,
    pub audit_json: String,
}

impl SampleData {
    /// Writes both files into `dir` (created if missing).
    pub fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join(RUNTIMES_FILE), &self.runtimes_csv)?;
        std::fs::write(dir.join(AUDIT_FILE), &self.audit_json)
    }
}

/// Generates 2025-01-01..2025-12-31 from `seed`.
pub fn generate(seed: u64) -> SampleData {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut csv: Vec<String> = Vec::new();
    let mut audit: Vec<String> = Vec::new();
    // Records that arrived on a skipped holiday are processed by the next run.
    let mut carried_records = [0u64; 4];

    let first = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default();
    for date in first.iter_days().take_while(|d| d.year() == 2025) {
        let facts = calendar::day_facts(date);
        let mut arrivals = Vec::new();
        let mut rejected = 0;
        let mut records = [0u64; 4];
        if let Some(factor) = volume_factor(&facts) {
            let trend = 1.0 + 0.08 * f64::from(date.ordinal0()) / 365.0;
            let common = (0.04 * gaussian(&mut rng)).exp();
            for feed in 0..FEEDS.len() {
                let feed_factor = factor * feed_modifier(feed, &facts);
                let noise = (0.05 * gaussian(&mut rng)).exp();
                records[feed] =
                    (FEED_BASE_RECORDS[feed] * feed_factor * trend * common * noise).round() as u64;
                let (arrival, was_rejected) = receive_file(
                    &mut rng,
                    &mut audit,
                    feed,
                    date,
                    &facts,
                    feed_factor,
                    records[feed],
                );
                arrivals.push(arrival);
                rejected += u32::from(was_rejected);
            }
        }

        if facts.holiday_observed {
            for (feed, carried) in carried_records.iter_mut().enumerate() {
                *carried += records[feed];
            }
            for job in JOBS {
                csv.push(format!("{date},{job},,,0.0,SKIPPED,0"));
            }
            continue;
        }
        let processed: Vec<u64> = (0..FEEDS.len())
            .map(|f| records[f] + carried_records[f])
            .collect();
        carried_records = [0; 4];
        let last_arrival = arrivals
            .iter()
            .copied()
            .max()
            .unwrap_or_else(|| at(date, 60.0));
        let start = last_arrival + Duration::seconds(rng.random_range(240..540));
        run_jobs(
            &mut rng, &mut csv, date, &facts, &processed, rejected, start,
        );
    }

    corrupt_runs(&mut csv);
    corrupt_audit(&mut audit);
    let mut runtimes_csv = String::with_capacity(csv.len() * 100);
    runtimes_csv.push_str(RUNTIMES_HEADER);
    runtimes_csv.push('\n');
    for line in &csv {
        runtimes_csv.push_str(line);
        runtimes_csv.push('\n');
    }
    let audit_json = format!("[\n{}\n]\n", audit.join(",\n"));
    SampleData {
        runtimes_csv,
        audit_json,
    }
}

/// The day's volume relative to an ordinary weekday; `None` when no feed
/// sends a file (the biggest holidays).
fn volume_factor(facts: &DayFacts) -> Option<f64> {
    if facts.pipeline_closed {
        return None;
    }
    if facts.holiday_observed {
        return Some(0.15);
    }
    if !facts.business_day {
        return Some(0.3);
    }
    let mut factor = 1.0;
    if facts.date.weekday() == chrono::Weekday::Mon {
        factor *= 1.3;
    }
    if facts.after_holiday {
        factor *= 1.4;
    }
    if facts.business_day_index == 1 {
        factor *= 1.2;
    }
    if facts.quarter_end {
        factor *= 2.0;
    } else if facts.month_end {
        factor *= 1.6;
    } else if facts.business_days_left == 1 {
        factor *= 1.25;
    }
    Some(factor)
}

/// Feeds have habits of their own on top of the day's volume.
fn feed_modifier(feed: usize, facts: &DayFacts) -> f64 {
    match FEEDS[feed] {
        // Plan enrolment changes land at the start of the month.
        "plan" if facts.business_day_index == 1 && facts.business_day => 1.8,
        "pharmacy" if facts.date.weekday() == chrono::Weekday::Mon => 1.1,
        _ => 1.0,
    }
}

/// Writes the audit record(s) of one feed's file and returns when the
/// accepted file arrived and whether a rejected copy came first.
fn receive_file(
    rng: &mut ChaCha8Rng,
    audit: &mut Vec<String>,
    feed: usize,
    date: NaiveDate,
    facts: &DayFacts,
    feed_factor: f64,
    records: u64,
) -> (DateTime<Utc>, bool) {
    let mut minute =
        FEED_BASE_ARRIVAL[feed] + 22.0 * (feed_factor - 1.0).max(0.0) + 7.0 * gaussian(rng).abs();
    if !facts.business_day {
        minute -= 8.0;
    }
    if rng.random_bool(0.06) {
        minute += rng.random_range(40.0..170.0);
    }
    minute = minute.max(3.0);
    let name = format!(
        "PDE_{}_{}.dat",
        FEEDS[feed].to_uppercase(),
        date.format("%Y%m%d")
    );
    let size = records * FEED_RECORD_BYTES[feed] + rng.random_range(0..4096);
    let rejected = rng.random_bool(0.025);
    if rejected {
        audit.push(audit_record(
            &name,
            feed,
            date,
            at(date, minute),
            size,
            records,
            "REJECTED",
        ));
        minute += rng.random_range(25.0..80.0);
    }
    let status = if minute > LATE_AFTER_MINUTE {
        "LATE"
    } else {
        "RECEIVED"
    };
    let received = at(date, minute);
    audit.push(audit_record(
        &name, feed, date, received, size, records, status,
    ));
    (received, rejected)
}

/// Runs the job chain from `start`, writing one row per attempt.
fn run_jobs(
    rng: &mut ChaCha8Rng,
    csv: &mut Vec<String>,
    date: NaiveDate,
    facts: &DayFacts,
    processed: &[u64],
    rejected_files: u32,
    start: DateTime<Utc>,
) {
    let total: u64 = processed.iter().sum();
    let mut start = start;
    for (job, name) in JOBS.iter().enumerate() {
        let job_records = match *name {
            "pde_enrich" => processed[0] + processed[1],
            "pde_report" => total / 1000,
            _ => total,
        };
        let millions = match *name {
            "pde_report" => total as f64 / 1e6,
            _ => job_records as f64 / 1e6,
        };
        let (fixed, per_million) = JOB_COST[job];
        let mut mean = fixed + per_million * millions;
        // Ingest reads a rejected file twice: the bad copy and the re-sent one.
        if *name == "pde_ingest" {
            mean += 7.0 * f64::from(rejected_files);
        }
        if *name == "pde_report" {
            mean += if facts.quarter_end {
                16.0
            } else if facts.month_end {
                6.0
            } else {
                0.0
            };
        }
        let mut minutes = mean * (0.05 * gaussian(rng)).exp();
        if rng.random_bool(0.04) {
            minutes *= rng.random_range(1.2..1.6);
        }
        if rng.random_bool(0.025) {
            let failed_seconds = (minutes * 60.0 * rng.random_range(0.2..0.7)).round() as i64;
            let end = start + Duration::seconds(failed_seconds);
            csv.push(run_row(date, name, start, end, "FAILED", job_records));
            start = end + Duration::seconds(rng.random_range(120..360));
        }
        let end = start + Duration::seconds((minutes * 60.0).round() as i64);
        csv.push(run_row(date, name, start, end, "SUCCESS", job_records));
        start = end;
    }
}

fn run_row(
    date: NaiveDate,
    job: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    status: &str,
    records: u64,
) -> String {
    let minutes = (end - start).num_seconds() as f64 / 60.0;
    format!(
        "{date},{job},{},{},{minutes:.1},{status},{records}",
        rfc3339(start),
        rfc3339(end)
    )
}

fn audit_record(
    name: &str,
    feed: usize,
    date: NaiveDate,
    received: DateTime<Utc>,
    size: u64,
    records: u64,
    status: &str,
) -> String {
    let mut s = String::with_capacity(220);
    let _ = write!(
        s,
        r#"{{"file_name": "{name}", "feed": "{}", "business_date": "{date}", "received_at": "{}", "size_bytes": {size}, "record_count": {records}, "status": "{status}"}}"#,
        FEEDS[feed],
        rfc3339(received)
    );
    s
}

/// A few broken rows, as real exports have: a truncated line, a garbled
/// time, an unknown job and a non-numeric count. They are copies of good
/// rows, so no real run is lost.
fn corrupt_runs(csv: &mut Vec<String>) {
    let breakers: [fn(&str) -> String; MALFORMED_RUNS] = [
        |row| row[..row.len() / 2].to_string(),
        |row| row.replacen("T0", "T9", 1).replacen(":", "h", 2),
        |row| row.replacen("pde_", "pde-", 1),
        |row| format!("{}x", row.rsplit_once(',').map_or(row, |(head, _)| head)) + ",many",
    ];
    for (k, breaker) in breakers.iter().enumerate() {
        let at_row = 150 + k * 400;
        if let Some(row) = csv.get(at_row) {
            let broken = breaker(row);
            csv.insert(at_row, broken);
        }
    }
}

/// A few broken audit records: a missing feed, a string count, an
/// impossible date.
fn corrupt_audit(audit: &mut Vec<String>) {
    let breakers: [fn(&str) -> String; MALFORMED_AUDIT_RECORDS] = [
        |rec| rec.replacen(r#""feed": "#, r#""fed": "#, 1),
        |rec| {
            rec.replacen(
                r#""record_count": "#,
                r#""record_count": "n/a", "was": "#,
                1,
            )
        },
        |rec| {
            rec.replacen(
                r#""business_date": "2025-"#,
                r#""business_date": "2025-13"#,
                1,
            )
        },
    ];
    for (k, breaker) in breakers.iter().enumerate() {
        let at_record = 200 + k * 450;
        if let Some(rec) = audit.get(at_record) {
            let broken = breaker(rec);
            audit.insert(at_record, broken);
        }
    }
}

/// `minute` minutes after midnight UTC on `date`, to the second.
fn at(date: NaiveDate, minute: f64) -> DateTime<Utc> {
    date.and_time(chrono::NaiveTime::MIN).and_utc()
        + Duration::seconds((minute * 60.0).round() as i64)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A standard normal draw (Box-Muller), so no distribution crate is needed.
fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
