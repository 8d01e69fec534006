//! The calibration study of `models/README.md`: compares ways of turning
//! validation residuals into p10..p90 bands on SIMULATED datasets
//! (`generate --seed N`, never `data/` nor the report seeds), scoring each
//! variant's Nov-Dec coverage there. The selection and the learners are
//! those of `training::fit` (only the bands differ), so the MAE is the same
//! for every variant.
//!
//! Usage: `calibration_study [--seed FOREST_SEED] DATA_DIR...`
//! (`bench/calibration-study` generates the datasets and runs it). Prints
//! one line per variant (summary over every dataset and target) on stdout,
//! and with `--rows FILE` writes every target-run as TSV.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use prediction::data::Dataset;
use prediction::features::DayKind;
use prediction::model::{BandRule, KindBands, ResidualBand, median_and_mad, quantile};
use prediction::training::{self, Calibration, CalibrationBlocks};

/// The block rules compared, by name.
fn block_rules() -> Vec<(&'static str, CalibrationBlocks)> {
    let rolling = |step_days, min_train_days| CalibrationBlocks::Rolling {
        step_days,
        min_train_days,
    };
    vec![
        ("select3x61", CalibrationBlocks::Selection),
        ("roll61-min60", rolling(61, 60)),
        ("roll30-min90", rolling(30, 90)),
        ("roll30-min60", rolling(30, 60)),
        ("roll15-min90", rolling(15, 90)),
    ]
}

/// The band rules compared, by name.
fn band_rules() -> Vec<(String, Bands)> {
    let mut rules = Vec::new();
    for centred in [true, false] {
        for conformal in [false, true] {
            for kinds in [KindBands::PerKind, KindBands::Pooled, KindBands::Scaled] {
                let name = format!(
                    "{}-{}-{}",
                    if centred { "median" } else { "raw" },
                    if conformal { "conformal" } else { "interp" },
                    match kinds {
                        KindBands::PerKind => "kind",
                        KindBands::Pooled => "pooled",
                        KindBands::Scaled => "scaled",
                    }
                );
                rules.push((
                    name,
                    Bands::Rule(BandRule {
                        centred,
                        conformal,
                        kinds,
                    }),
                ));
            }
        }
    }
    rules.push((
        "shape-family".to_string(),
        Bands::SharedShape { by_family: true },
    ));
    rules.push((
        "shape-all".to_string(),
        Bands::SharedShape { by_family: false },
    ));
    rules
}

/// How a variant's bands are made: by a [`BandRule`] per target, or by
/// sharing the residuals' tail shape across targets.
#[derive(Clone, Copy)]
enum Bands {
    Rule(BandRule),
    /// Each target's band is its residuals' median absolute deviation
    /// times the 10th/90th percentiles of the residuals of every target of
    /// its family (records, arrivals, runtimes; or all 13) divided by their
    /// own: the scale comes from the target, the tail shape from 4-13
    /// times as many residuals.
    SharedShape {
        by_family: bool,
    },
}

/// The target families in file order: records, arrivals, runtimes.
const FAMILIES: [std::ops::Range<usize>; 3] = [0..4, 4..8, 8..13];

/// The shared-shape bands of every target (file order).
fn shared_shape_bands(residuals: &[Vec<(DayKind, f64)>], by_family: bool) -> Vec<ResidualBand> {
    let scaled: Vec<(f64, Vec<f64>)> = residuals
        .iter()
        .map(|pairs| {
            let values: Vec<f64> = pairs.iter().map(|(_, r)| *r).collect();
            let (median, mad) = median_and_mad(&values);
            let mad = if mad > 0.0 { mad } else { 1.0 };
            (mad, values.iter().map(|v| (v - median) / mad).collect())
        })
        .collect();
    let everything = 0..residuals.len();
    let groups: &[std::ops::Range<usize>] = if by_family {
        &FAMILIES
    } else {
        std::slice::from_ref(&everything)
    };
    let mut bands = vec![ResidualBand { q10: 0.0, q90: 0.0 }; residuals.len()];
    for group in groups.iter().cloned() {
        let mut pooled: Vec<f64> = group.clone().flat_map(|t| scaled[t].1.clone()).collect();
        pooled.sort_by(f64::total_cmp);
        let (q10, q90) = (quantile(&pooled, 0.1), quantile(&pooled, 0.9));
        for t in group {
            bands[t] = ResidualBand {
                q10: q10 * scaled[t].0,
                q90: q90 * scaled[t].0,
            };
        }
    }
    bands
}

/// One target's holdout figures under one variant on one dataset.
struct Row {
    coverage: f64,
    below: f64,
    above: f64,
    interval_score_ratio: f64,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut seed = 7;
    let mut rows_out = None;
    let mut dirs = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seed" => {
                seed = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--seed needs a whole number")?
            }
            "--rows" => rows_out = Some(PathBuf::from(args.next().ok_or("--rows needs a file")?)),
            _ => dirs.push(PathBuf::from(arg)),
        }
    }
    if dirs.is_empty() {
        return Err("usage: calibration_study [--seed N] [--rows FILE] DATA_DIR...".into());
    }
    let (train, holdout) = training::evaluation_ranges();

    // variant -> every (dataset, target) row; the first variant's
    // interval score is the reference of each row's ratio.
    let mut results: BTreeMap<(usize, usize), Vec<Row>> = BTreeMap::new();
    let mut widths =
        String::from("dataset\ttarget\tn_ordinary\tn_special\tmad_ordinary\tmad_special\n");
    let mut tsv = String::from("dataset\tblocks\tbands\ttarget\tcoverage\tbelow\tabove\tscore\n");
    let blocks = block_rules();
    let bands = band_rules();
    for dir in &dirs {
        let data = Dataset::load(dir).map_err(|e| e.to_string())?;
        let actuals = training::daily_actuals(&data);
        let mut reference: Option<Vec<f64>> = None;
        for (b, (block_name, block_rule)) in blocks.iter().enumerate() {
            let calibration = Calibration {
                blocks: *block_rule,
                ..Calibration::SELECTION
            };
            let mut fitted = training::fit_with(&actuals, train.from, train.to, seed, calibration)?;
            if b == 0 {
                // Does the noise differ by kind of day? The calibration
                // residuals (inside the training range) answer it.
                for (t, pairs) in fitted.calibration_residuals.iter().enumerate() {
                    let spread = |kind: DayKind| {
                        let values: Vec<f64> = pairs
                            .iter()
                            .filter(|(k, _)| *k == kind)
                            .map(|(_, r)| *r)
                            .collect();
                        (values.len(), median_and_mad(&values).1)
                    };
                    let (n_ordinary, ordinary) = spread(DayKind::Ordinary);
                    let (n_special, special) = spread(DayKind::Special);
                    widths.push_str(&format!(
                        "{}\t{t}\t{n_ordinary}\t{n_special}\t{ordinary}\t{special}\n",
                        dir.display()
                    ));
                }
            }
            for (r, (band_name, band_rule)) in bands.iter().enumerate() {
                match band_rule {
                    Bands::Rule(rule) => fitted.reband(*rule),
                    Bands::SharedShape { by_family } => {
                        let shared = shared_shape_bands(&fitted.calibration_residuals, *by_family);
                        let models = fitted
                            .models
                            .feed_records
                            .iter_mut()
                            .chain(&mut fitted.models.feed_arrival)
                            .chain(&mut fitted.models.job_runtime);
                        for (model, band) in models.zip(shared) {
                            model.bands = [band; 2];
                        }
                    }
                }
                let metrics = training::evaluate(&fitted, &actuals, train, holdout, seed)?;
                let scores: Vec<f64> = metrics.targets.iter().map(|t| t.interval_score).collect();
                let reference = reference.get_or_insert_with(|| scores.clone());
                for ((t, score), reference) in metrics.targets.iter().zip(&scores).zip(&*reference)
                {
                    tsv.push_str(&format!(
                        "{}\t{block_name}\t{band_name}\t{}\t{}\t{}\t{}\t{}\n",
                        dir.display(),
                        t.target,
                        t.interval_coverage,
                        t.below_p10,
                        t.above_p90,
                        t.interval_score
                    ));
                    results.entry((b, r)).or_default().push(Row {
                        coverage: t.interval_coverage,
                        below: t.below_p10,
                        above: t.above_p90,
                        interval_score_ratio: score / reference,
                    });
                }
            }
        }
        eprintln!("{}: done", dir.display());
    }
    if let Some(path) = rows_out {
        std::fs::write(&path, tsv).map_err(|e| format!("{}: {e}", path.display()))?;
        let path = path.with_extension("widths.tsv");
        std::fs::write(&path, widths).map_err(|e| format!("{}: {e}", path.display()))?;
    }

    println!(
        "{:<12} {:<24} {:>5} {:>6} {:>8} {:>6} {:>6} {:>6} {:>9} {:>9} {:>7}",
        "blocks",
        "bands",
        "runs",
        "mean",
        "|c-0.8|",
        "sd",
        "<p10",
        ">p90",
        "worst_tl",
        "in72-88",
        "in65-92"
    );
    for ((b, r), rows) in &results {
        let n = rows.len() as f64;
        let mean = |f: fn(&Row) -> f64| rows.iter().map(f).sum::<f64>() / n;
        let coverage = mean(|r| r.coverage);
        let sd = (rows
            .iter()
            .map(|r| (r.coverage - coverage).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        let share = |lo: f64, hi: f64| {
            rows.iter()
                .filter(|r| lo <= r.coverage && r.coverage <= hi)
                .count() as f64
                / n
        };
        let worst_tail = rows
            .iter()
            .map(|r| r.below.max(r.above))
            .fold(0.0, f64::max);
        let score_ratio = (rows
            .iter()
            .map(|r| r.interval_score_ratio.ln())
            .sum::<f64>()
            / n)
            .exp();
        println!(
            "{:<12} {:<24} {:>5} {:>6.3} {:>8.4} {:>6.3} {:>6.3} {:>6.3} {:>9.3} {:>9.3} {:>7.3}  score x{:.3}",
            blocks[*b].0,
            bands[*r].0,
            rows.len(),
            coverage,
            mean(|r| (r.coverage - 0.8).abs()),
            sd,
            mean(|r| r.below),
            mean(|r| r.above),
            worst_tail,
            share(0.72, 0.88),
            share(0.65, 0.92),
            score_ratio
        );
    }
    Ok(())
}
