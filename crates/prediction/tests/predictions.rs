//! The predictions' shape, through the real models and data in the
//! workspace: quantiles ordered, jobs chained in time, a breach probability
//! in [0, 1], the contract's JSON, the same answer every time, and load
//! errors that name the file.

use chrono::{Duration, NaiveDate, NaiveTime};
use prediction::model::{MANIFEST_FILE, MODELS_FILE, content_version};
use prediction::{DayForecast, Predictor, Settings};

fn workspace(dir: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(dir)
}

fn settings() -> Settings {
    Settings {
        models_dir: workspace("models"),
        data_dir: workspace("data"),
        sla: NaiveTime::from_hms_opt(6, 0, 0).unwrap(),
    }
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn minutes(hh_mm: &str) -> u32 {
    let t =
        NaiveTime::parse_from_str(hh_mm, "%H:%M").unwrap_or_else(|_| panic!("not HH:MM: {hh_mm}"));
    chrono::Timelike::num_seconds_from_midnight(&t) / 60
}

fn check_shape(f: &DayForecast) {
    assert_eq!(f.feeds.len(), 4, "{}", f.date);
    assert_eq!(f.jobs.len(), 5, "{}", f.date);
    for feed in &f.feeds {
        let (r, a) = (&feed.expected_records, &feed.expected_arrival);
        assert!(
            r.p10 <= r.p50 && r.p50 <= r.p90,
            "{} {}: records {r:?}",
            f.date,
            feed.feed
        );
        assert!(
            minutes(&a.p10) <= minutes(&a.p50) && minutes(&a.p50) <= minutes(&a.p90),
            "{} {}: {a:?}",
            f.date,
            feed.feed
        );
    }
    let last_arrival = f
        .feeds
        .iter()
        .map(|x| minutes(&x.expected_arrival.p50))
        .max()
        .unwrap();
    assert!(
        minutes(&f.jobs[0].predicted_start) >= last_arrival,
        "{}: first job starts before the last feed",
        f.date
    );
    assert_eq!(f.jobs[0].predicted_start, f.pipeline.predicted_start);
    for pair in f.jobs.windows(2) {
        assert_eq!(
            pair[1].predicted_start, pair[0].predicted_end,
            "{}: {} does not follow {}",
            f.date, pair[1].job, pair[0].job
        );
    }
    for job in &f.jobs {
        let r = &job.runtime_minutes;
        assert!(
            r.p10 <= r.p50 && r.p50 <= r.p90 && r.p10 >= 0.0,
            "{} {}: {r:?}",
            f.date,
            job.job
        );
        assert!(minutes(&job.predicted_start) <= minutes(&job.predicted_end));
    }
    assert_eq!(f.jobs[4].predicted_end, f.pipeline.predicted_end);
    let p = f.pipeline.sla_breach_probability;
    assert!(
        (0.0..=1.0).contains(&p),
        "{}: breach probability {p}",
        f.date
    );
}

#[test]
fn every_day_of_two_years_has_a_well_formed_forecast() {
    let predictor = Predictor::load(&settings()).unwrap();
    let from = date("2025-01-01");
    for f in predictor
        .predict_range(from, from + Duration::days(729))
        .iter()
    {
        check_shape(f);
    }
}

#[test]
fn the_same_date_gives_the_same_answer() {
    let a = Predictor::load(&settings()).unwrap();
    let b = Predictor::load(&settings()).unwrap();
    let d = date("2025-10-20");
    assert_eq!(a.predict_all(d), b.predict_all(d));
    assert_eq!(a.predict_all(d), a.predict_all(d));
}

#[test]
fn calendar_facts_reach_the_answer() {
    let predictor = Predictor::load(&settings()).unwrap();
    let monday = predictor.predict_all(date("2025-10-20"));
    assert_eq!(monday.day_of_week, "Monday");
    assert!(monday.business_day);
    assert_eq!(monday.holiday, None);
    let observed = predictor.predict_all(date("2026-07-03"));
    assert_eq!(
        observed.holiday.as_deref(),
        Some("Independence Day (observed)")
    );
    assert!(!observed.business_day);
    // The models learnt that a quarter end is heavier than an ordinary Wednesday.
    let ordinary = predictor.predict_all(date("2025-12-10"));
    let quarter_end = predictor.predict_all(date("2025-12-31"));
    assert!(quarter_end.feeds[0].expected_records.p50 > ordinary.feeds[0].expected_records.p50);
    assert!(
        quarter_end.pipeline.sla_breach_probability >= ordinary.pipeline.sla_breach_probability
    );
}

#[test]
fn closed_days_are_forecast_as_closed() {
    let predictor = predictor();
    for closed in ["2025-11-27", "2025-12-25", "2026-01-01", "2027-12-24"] {
        let f = predictor.predict_all(date(closed));
        for feed in &f.feeds {
            let r = &feed.expected_records;
            assert_eq!((r.p10, r.p50, r.p90), (0, 0, 0), "{closed} {}", feed.feed);
        }
        assert!(
            f.jobs.iter().all(|j| j.runtime_minutes.p90 == 0.0),
            "{closed}"
        );
    }
    // A light holiday has a trickle of files: fewer than an ordinary day's.
    let light = predictor.predict_all(date("2025-11-11"));
    let ordinary = predictor.predict_all(date("2025-11-12"));
    for (l, o) in light.feeds.iter().zip(&ordinary.feeds) {
        assert!(l.expected_records.p50 > 0, "{}", l.feed);
        assert!(
            l.expected_records.p50 < o.expected_records.p50,
            "{}",
            l.feed
        );
    }
}

#[test]
fn json_follows_the_contract() {
    let predictor = Predictor::load(&settings()).unwrap();
    let value = serde_json::to_value(predictor.predict_all(date("2025-10-20"))).unwrap();
    assert_eq!(value["date"], "2025-10-20");
    assert_eq!(value["day_of_week"], "Monday");
    assert_eq!(value["business_day"], true);
    assert!(value["holiday"].is_null());
    let feed = &value["feeds"][0];
    assert_eq!(feed["feed"], "claims");
    assert!(feed["expected_records"]["p50"].is_u64());
    assert!(
        feed["expected_arrival"]["p90"]
            .as_str()
            .is_some_and(|s| s.len() == 5 && s.as_bytes()[2] == b':')
    );
    let job = &value["jobs"][0];
    assert_eq!(job["job"], "pde_ingest");
    assert!(job["runtime_minutes"]["p10"].is_f64());
    assert!(job["predicted_start"].is_string() && job["predicted_end"].is_string());
    assert_eq!(value["pipeline"]["sla"], "06:00");
    assert!(value["pipeline"]["sla_breach_probability"].is_f64());
    assert!(
        value["model_version"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
}

#[test]
fn model_version_is_the_hash_of_the_model_file() {
    let predictor = Predictor::load(&settings()).unwrap();
    let bytes = std::fs::read(workspace("models").join(MODELS_FILE)).unwrap();
    assert_eq!(predictor.model_version(), content_version(&bytes));
    assert_eq!(
        predictor.predict_all(date("2025-03-03")).model_version,
        predictor.model_version()
    );
}

#[test]
fn a_later_sla_lowers_the_breach_risk() {
    let early = Predictor::load(&Settings {
        sla: NaiveTime::from_hms_opt(3, 0, 0).unwrap(),
        ..settings()
    })
    .unwrap();
    let late = Predictor::load(&Settings {
        sla: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        ..settings()
    })
    .unwrap();
    let d = date("2025-12-31");
    assert!(
        early.predict_all(d).pipeline.sla_breach_probability
            > late.predict_all(d).pipeline.sla_breach_probability
    );
    assert_eq!(late.predict_all(d).pipeline.sla, "09:00");
}

#[test]
fn corrupt_or_missing_models_fail_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    let with = |models_dir: &std::path::Path| Settings {
        models_dir: models_dir.to_path_buf(),
        ..settings()
    };

    let err = Predictor::load(&with(&models)).err().unwrap().to_string();
    assert!(err.contains(MANIFEST_FILE), "{err}");

    for file in [MANIFEST_FILE, MODELS_FILE] {
        std::fs::copy(workspace("models").join(file), models.join(file)).unwrap();
    }
    let mut bytes = std::fs::read(models.join(MODELS_FILE)).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(models.join(MODELS_FILE), &bytes).unwrap();
    let err = Predictor::load(&with(&models)).err().unwrap().to_string();
    assert!(err.contains(MODELS_FILE), "{err}");

    std::fs::write(models.join(MANIFEST_FILE), "{\"format\": 1}").unwrap();
    let err = Predictor::load(&with(&models)).err().unwrap().to_string();
    assert!(err.contains(MANIFEST_FILE), "{err}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// Any date a request can name (years 0000..9999) gets a well-formed answer.
    #[test]
    fn any_date_gets_a_well_formed_forecast(days in 0i64..3_652_058) {
        let predictor = predictor();
        let d = date("0000-01-01") + Duration::days(days);
        check_shape(&predictor.predict_all(d));
    }
}

fn predictor() -> &'static Predictor {
    static PREDICTOR: std::sync::OnceLock<Predictor> = std::sync::OnceLock::new();
    PREDICTOR.get_or_init(|| Predictor::load(&settings()).unwrap())
}
