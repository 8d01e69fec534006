//! The cold-start work (load models and data) and the per-request work
//! (`predict_all` for one date and for a 31-day range).
//! Run: `cargo bench -p prediction`. Goals: load < 10 ms, one date < 100 µs.

use std::hint::black_box;

use chrono::NaiveDate;
use criterion::{Criterion, criterion_group, criterion_main};
use prediction::{Predictor, Settings};

fn settings() -> Settings {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Settings {
        models_dir: root.join("models"),
        data_dir: root.join("data"),
        sla: chrono::NaiveTime::from_hms_opt(6, 0, 0).unwrap_or_default(),
    }
}

fn benches(c: &mut Criterion) {
    let settings = settings();
    c.bench_function("load models and data", |b| {
        b.iter(|| Predictor::load(black_box(&settings)).map(|p| p.model_version().len()))
    });
    let Ok(predictor) = Predictor::load(&settings) else {
        eprintln!("cannot load models/ and data/; run the train binary first");
        return;
    };
    let date = NaiveDate::from_ymd_opt(2025, 10, 20).unwrap_or_default();
    c.bench_function("predict_all one date", |b| {
        b.iter(|| predictor.predict_all(black_box(date)))
    });
    let to = NaiveDate::from_ymd_opt(2025, 11, 19).unwrap_or_default();
    c.bench_function("predict_range 31 days", |b| {
        b.iter(|| predictor.predict_range(black_box(date), black_box(to)))
    });
}

criterion_group! {
    name = predict;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(predict);
