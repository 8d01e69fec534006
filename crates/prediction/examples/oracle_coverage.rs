//! The oracle's coverage (`models/README.md`, "What the truth scores"):
//! what the TRUE p10..p90 of each target scores on a Nov-Dec holdout.
//!
//! The generator is ours, so the truth is known: a forecast made from the
//! date alone (as the API's are) can do no better than the distribution of
//! a date's value over the generator's randomness. This takes that
//! distribution from many reference datasets (`generate(seed)`), keeps each
//! date's 10th and 90th percentile as the oracle's band, and scores it
//! exactly as `training::evaluate` scores the models: on `DATA_DIR`'s
//! holdout, and on many trial datasets to say how often even the truth
//! passes issue #15's coverage gates. Nothing here feeds the models.
//!
//! With `--well-specified`, the comparison scores the well-specified
//! model (`support/well_specified.rs`: the generator's functional form, its
//! coefficients estimated from each dataset's training months) instead of
//! the shipped procedure: how close to the oracle an honest model can get
//! (`--widen K` multiplies its bands' half-widths by K, to see what the
//! tails gate costs in interval score; `--arrival-edge Q` places each
//! arrival feed by its residuals' Q quantile rather than their median).
//!
//! Usage: `oracle_coverage [--reference N] [--trials N] [--compare N [--from SEED] [--calibration NAME | --well-specified [--widen K] [--arrival-edge Q]]] DATA_DIR`
//! (`bench/oracle-coverage` runs it on `data/`).

#[path = "support/well_specified.rs"]
mod well_specified;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use prediction::data::{Dataset, parse_audit, parse_runs};
use prediction::features::day_kind;
use prediction::generate::generate;
use prediction::model::quantile;
use prediction::training::{
    self, Calibration, DailyActuals, daily_actuals, evaluation_ranges, interval_score,
    seasonal_naive,
};
use prediction::{RawForecast, calendar, raw_forecast};

/// Reference datasets' seeds start here; trial datasets' at `TRIAL_SEEDS`.
/// Both are far from `data/`'s seed and from every seed a study used.
const REFERENCE_SEEDS: u64 = 100_001;
const TRIAL_SEEDS: u64 = 200_001;
/// `--compare`'s datasets, on which the shipped procedure is fitted, start
/// here unless `--from` says otherwise (300001.. were the development
/// set of the holiday fix, 310001.. its confirmation).
const COMPARE_SEEDS: u64 = 300_001;

/// What `--compare` sets against the oracle.
#[derive(Clone, Copy)]
enum Competitor {
    /// The shipped procedure (`training::fit_with`) with this calibration.
    Shipped(Calibration),
    /// The well-specified model (`well_specified`) and its options.
    WellSpecified(well_specified::Options),
}

impl Competitor {
    fn label(self) -> String {
        match self {
            Competitor::Shipped(calibration) => format!("the shipped procedure ({calibration:?})"),
            Competitor::WellSpecified(options) => {
                let name =
                    "the well-specified model (the generator's form, coefficients estimated)";
                if options == well_specified::Options::AS_FITTED {
                    name.to_string()
                } else {
                    format!("{name}, {options:?}")
                }
            }
        }
    }

    /// Fits on the training range of `actuals` and forecasts each holdout date.
    fn forecasts(
        self,
        actuals: &BTreeMap<NaiveDate, DailyActuals>,
        seed: u64,
    ) -> Result<BTreeMap<NaiveDate, RawForecast>, String> {
        let (train, holdout) = evaluation_ranges();
        match self {
            Competitor::Shipped(calibration) => {
                let fitted = training::fit_with(actuals, train.from, train.to, 7, calibration)?;
                Ok(holdout
                    .from
                    .iter_days()
                    .take_while(|d| *d <= holdout.to)
                    .map(|d| (d, raw_forecast(&fitted.models, d)))
                    .collect())
            }
            Competitor::WellSpecified(options) => {
                well_specified::forecast(actuals, train, holdout, seed, options)
            }
        }
    }
}

/// Reads a target's value for feed or job `i` from a day's actuals.
type Pick = fn(&DailyActuals, usize) -> Option<f64>;

/// The 13 targets in `metrics.json`'s order (runtimes, records, arrivals):
/// name, how to read it, and which feed or job.
fn targets() -> Vec<(String, Pick, usize)> {
    let mut all: Vec<(String, Pick, usize)> = Vec::new();
    for (j, job) in prediction::data::JOBS.iter().enumerate() {
        all.push((
            format!("job:{job}:runtime_minutes"),
            |a, i| a.job_runtime_minutes[i],
            j,
        ));
    }
    for (f, feed) in prediction::data::FEEDS.iter().enumerate() {
        all.push((format!("feed:{feed}:records"), |a, i| a.feed_records[i], f));
    }
    for (f, feed) in prediction::data::FEEDS.iter().enumerate() {
        all.push((
            format!("feed:{feed}:arrival_minutes"),
            |a, i| a.feed_arrival_minutes[i],
            f,
        ));
    }
    all
}

/// One target's score on one dataset.
#[derive(Clone, Copy, Default)]
struct Score {
    n: usize,
    below: usize,
    above: usize,
}

impl Score {
    fn share(self, k: usize) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            k as f64 / self.n as f64
        }
    }
    fn coverage(self) -> f64 {
        self.share(self.n - self.below - self.above)
    }
    fn worst_tail(self) -> f64 {
        self.share(self.below.max(self.above))
    }
}

/// The oracle's p10, p50 and p90 per target and holdout date.
type Bands = Vec<BTreeMap<NaiveDate, [f64; 3]>>;

fn actuals_of(seed: u64) -> Result<BTreeMap<NaiveDate, DailyActuals>, String> {
    let sample = generate(seed);
    let (runs, skipped_runs) = parse_runs(&sample.runtimes_csv)?;
    let (files, skipped_files) = parse_audit(&sample.audit_json)?;
    Ok(daily_actuals(&Dataset {
        runs,
        files,
        skipped_runs,
        skipped_files,
    }))
}

fn oracle_bands(reference: u64) -> Result<Bands, String> {
    let (_, holdout) = evaluation_ranges();
    let targets = targets();
    let mut values: Vec<BTreeMap<NaiveDate, Vec<f64>>> = vec![BTreeMap::new(); targets.len()];
    for seed in REFERENCE_SEEDS..REFERENCE_SEEDS + reference {
        let actuals = actuals_of(seed)?;
        for (date, day) in actuals.range(holdout.from..=holdout.to) {
            for (t, (_, pick, i)) in targets.iter().enumerate() {
                if let Some(y) = pick(day, *i) {
                    values[t].entry(*date).or_default().push(y);
                }
            }
        }
    }
    Ok(values
        .into_iter()
        .map(|by_date| {
            by_date
                .into_iter()
                .map(|(date, mut ys)| {
                    ys.sort_by(f64::total_cmp);
                    (date, [0.1, 0.5, 0.9].map(|q| quantile(&ys, q)))
                })
                .collect()
        })
        .collect())
}

/// Scores the oracle's bands on one dataset's holdout, counting the days
/// `training::evaluate` counts (an actual, and a seasonal-naive forecast).
fn score(bands: &Bands, actuals: &BTreeMap<NaiveDate, DailyActuals>) -> Vec<Score> {
    let (_, holdout) = evaluation_ranges();
    targets()
        .iter()
        .zip(bands)
        .map(|((_, pick, i), band)| {
            let mut s = Score::default();
            for (date, day) in actuals.range(holdout.from..=holdout.to) {
                let Some(actual) = pick(day, *i) else {
                    continue;
                };
                let Some([p10, _, p90]) = band.get(date) else {
                    continue;
                };
                if seasonal_naive(actuals, *date, |a| pick(a, *i)).is_none() {
                    continue;
                }
                s.n += 1;
                s.below += usize::from(actual < *p10);
                s.above += usize::from(actual > *p90);
            }
            s
        })
        .collect()
}

/// The shipped procedure next to the oracle, summed over datasets.
#[derive(Clone, Copy, Default)]
struct Versus {
    n: usize,
    model: [usize; 2],
    oracle: [usize; 2],
    model_error: f64,
    oracle_error: f64,
    model_width: f64,
    oracle_width: f64,
    model_score: f64,
    oracle_score: f64,
}

/// Per dataset: how many of its target-runs, and how many datasets, pass
/// each gate; for the model (0) and the oracle (1).
#[derive(Default)]
struct Gates {
    datasets: usize,
    target_runs: usize,
    tight: [usize; 2],
    tails: [usize; 2],
    both: [usize; 2],
    wide: [usize; 2],
    off_target: [f64; 2],
    tail_over: [usize; 2],
    /// Per target, the sum over datasets of its coverage (model, oracle).
    coverage_sum: Vec<[f64; 2]>,
    /// Per target, how many of its runs had a tail over 18 % (model, oracle).
    target_tails: Vec<[usize; 2]>,
    /// Per family of targets (runtimes, records, arrivals) and who: the
    /// target-runs, and the sum of squares of their below-p10 and
    /// above-p90 shares' distance from 0.10 (how much a run's tails vary
    /// beyond the binomial's draw).
    tail_spread: [[(usize, f64); 2]; 3],
}

/// Whether one dataset's target-runs pass issue #15's gates: every target
/// within 0.72-0.88, no tail over 18 %, every target within 0.65-0.92.
fn passes(scores: &[Score]) -> (bool, bool, bool) {
    let within = |s: &Score, lo: f64, hi: f64| (lo..=hi).contains(&s.coverage());
    (
        scores.iter().all(|s| within(s, 0.72, 0.88)),
        scores.iter().all(|s| s.worst_tail() <= 0.18),
        scores.iter().all(|s| within(s, 0.65, 0.92)),
    )
}

impl Gates {
    fn add(&mut self, who: usize, scores: &[Score]) {
        let (tight, tails, wide) = passes(scores);
        self.tight[who] += usize::from(tight);
        self.tails[who] += usize::from(tails);
        self.both[who] += usize::from(tight && tails);
        self.wide[who] += usize::from(wide);
        self.coverage_sum.resize(scores.len(), [0.0; 2]);
        self.target_tails.resize(scores.len(), [0; 2]);
        for (t, s) in scores.iter().enumerate() {
            let family = match t {
                0..5 => 0,
                5..9 => 1,
                _ => 2,
            };
            let spread = &mut self.tail_spread[family][who];
            spread.0 += 2;
            spread.1 += (s.share(s.below) - 0.1).powi(2) + (s.share(s.above) - 0.1).powi(2);
        }
        for ((sum, tails), s) in self
            .coverage_sum
            .iter_mut()
            .zip(&mut self.target_tails)
            .zip(scores)
        {
            self.off_target[who] += (s.coverage() - 0.8).abs();
            let over = usize::from(s.worst_tail() > 0.18);
            self.tail_over[who] += over;
            tails[who] += over;
            sum[who] += s.coverage();
        }
    }
}

/// Fits the shipped procedure (`training::fit`, forest seed 7), or the
/// well-specified model, on `count` simulated datasets and prints, per
/// target and kind of day, its Nov-Dec figures next to the oracle's on the
/// same days: where the models fall short of the truth, found without
/// looking at `data/`.
fn compare(bands: &Bands, first: u64, count: u64, competitor: Competitor) -> Result<(), String> {
    let (_, holdout) = evaluation_ranges();
    let label = competitor.label();
    let all = targets();
    let names: Vec<String> = all.iter().map(|(n, _, _)| n.clone()).collect();
    let mut sums = vec![[Versus::default(); 2]; names.len()];
    let mut by_date: Vec<BTreeMap<NaiveDate, [usize; 3]>> = vec![BTreeMap::new(); names.len()];
    let mut gates = Gates::default();
    for seed in first..first + count {
        let actuals = actuals_of(seed)?;
        let forecasts = competitor.forecasts(&actuals, seed)?;
        let mut runs = [
            vec![Score::default(); names.len()],
            vec![Score::default(); names.len()],
        ];
        for (date, day) in actuals.range(holdout.from..=holdout.to) {
            let Some(forecast) = forecasts.get(date) else {
                continue;
            };
            let kind = day_kind(&calendar::day_facts(*date)) as usize;
            for (t, (_, pick, i)) in all.iter().enumerate() {
                let Some(actual) = pick(day, *i) else {
                    continue;
                };
                let Some([o10, o50, o90]) = bands[t].get(date).copied() else {
                    continue;
                };
                if seasonal_naive(&actuals, *date, |a| pick(a, *i)).is_none() {
                    continue;
                }
                let q = match t {
                    0..5 => &forecast.job_runtime[*i],
                    5..9 => &forecast.feed_records[*i],
                    _ => &forecast.feed_arrival[*i],
                };
                let v = &mut sums[t][kind];
                v.n += 1;
                v.model[0] += usize::from(actual < q.p10);
                v.model[1] += usize::from(actual > q.p90);
                v.oracle[0] += usize::from(actual < o10);
                v.oracle[1] += usize::from(actual > o90);
                v.model_error += (q.p50 - actual).abs();
                v.oracle_error += (o50 - actual).abs();
                v.model_width += q.p90 - q.p10;
                v.oracle_width += o90 - o10;
                v.model_score += interval_score(q.p10, q.p90, actual);
                v.oracle_score += interval_score(o10, o90, actual);
                for (run, (lo, hi)) in runs.iter_mut().zip([(q.p10, q.p90), (o10, o90)]) {
                    run[t].n += 1;
                    run[t].below += usize::from(actual < lo);
                    run[t].above += usize::from(actual > hi);
                }
                let d = by_date[t].entry(*date).or_default();
                d[0] += 1;
                d[1] += usize::from(actual < q.p10);
                d[2] += usize::from(actual > q.p90);
            }
        }
        gates.datasets += 1;
        gates.target_runs += names.len();
        for (who, run) in runs.iter().enumerate() {
            gates.add(who, run);
        }
    }
    let ratio_of = |f: &dyn Fn(&Versus) -> (f64, f64)| {
        let logs: Vec<f64> = sums
            .iter()
            .map(|kinds| {
                let (m, o) = kinds
                    .iter()
                    .map(f)
                    .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
                (m / o).ln()
            })
            .collect();
        (logs.iter().sum::<f64>() / logs.len().max(1) as f64).exp()
    };
    let share = |k: usize, of: usize| k as f64 / of.max(1) as f64;
    println!(
        "\n# Summary: {label} and the oracle on {count} datasets (seeds {first}..{})",
        first + count.max(1) - 1
    );
    let mae = ratio_of(&|v| (v.model_error, v.oracle_error));
    let score = ratio_of(&|v| (v.model_score, v.oracle_score));
    let tails = share(gates.tail_over[0], gates.target_runs)
        / share(gates.tail_over[1], gates.target_runs).max(f64::MIN_POSITIVE);
    let mean_coverage: Vec<(String, f64)> = names
        .iter()
        .zip(&gates.coverage_sum)
        .map(|(name, sum)| (name.clone(), sum[0] / gates.datasets.max(1) as f64))
        .collect();
    let off: Vec<String> = mean_coverage
        .iter()
        .filter(|(_, c)| !(0.77..=0.83).contains(c))
        .map(|(name, c)| format!("{name} {c:.3}"))
        .collect();
    let verdict = |pass: bool| if pass { "pass" } else { "FAIL" };
    println!(
        "geometric mean over targets, model over oracle: MAE {mae:.4}, interval score {score:.4}"
    );
    // Where the gaps to the oracle lie: per target, the MAE's ratio and
    // the interval score's by kind of day and for all days (the gates'
    // geometric means are of the all-days ratios).
    let per_target: Vec<String> = names
        .iter()
        .zip(&sums)
        .map(|(name, kinds)| {
            let ratio = |v: &[Versus], f: &dyn Fn(&Versus) -> (f64, f64)| {
                let (m, o) = v
                    .iter()
                    .map(f)
                    .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
                m / o.max(f64::MIN_POSITIVE)
            };
            let score = |v: &Versus| (v.model_score, v.oracle_score);
            format!(
                "{name} {:.3}; {:.3}/{:.3}/{:.3}",
                ratio(kinds, &|v| (v.model_error, v.oracle_error)),
                ratio(&kinds[..1], &score),
                ratio(&kinds[1..], &score),
                ratio(kinds, &score)
            )
        })
        .collect();
    println!(
        "per target, model over oracle: MAE; interval score ordinary/special/all: {}",
        per_target.join(", ")
    );
    println!("\nIssue #24's gates:");
    println!("| gate | value | limit | |");
    println!("|---|---|---|---|");
    println!(
        "| MAE over the oracle's (geometric mean over targets) | {mae:.4} | 1.02 | {} |",
        verdict(mae <= 1.02)
    );
    println!(
        "| interval score over the oracle's (geometric mean) | {score:.4} | 1.03 | {} |",
        verdict(score <= 1.03)
    );
    println!(
        "| target-runs with a tail over 18 %, over the oracle's share | {tails:.3} ({:.4} / {:.4}) | 1.5 | {} |",
        share(gates.tail_over[0], gates.target_runs),
        share(gates.tail_over[1], gates.target_runs),
        verdict(tails <= 1.5)
    );
    println!(
        "| targets whose mean coverage is outside 0.77-0.83 | {} | 0 | {} |",
        if off.is_empty() {
            "none".to_string()
        } else {
            off.join(", ")
        },
        verdict(off.is_empty())
    );
    let shown: Vec<String> = mean_coverage
        .iter()
        .map(|(name, c)| format!("{name} {c:.3}"))
        .collect();
    println!(
        "\nMean coverage per target over the datasets: {}",
        shown.join(", ")
    );
    let tails_shown: Vec<String> = names
        .iter()
        .zip(&gates.target_tails)
        .map(|(name, [m, o])| format!("{name} {m}/{o}"))
        .collect();
    println!(
        "\nRuns with a tail over 18 % per target (model/oracle, of {}): {}",
        gates.datasets,
        tails_shown.join(", ")
    );
    let spread: Vec<String> = ["runtimes", "records", "arrivals"]
        .iter()
        .zip(&gates.tail_spread)
        .map(|(family, who)| {
            let rms = |(n, sum): (usize, f64)| (sum / n.max(1) as f64).sqrt();
            format!("{family} {:.4}/{:.4}", rms(who[0]), rms(who[1]))
        })
        .collect();
    println!(
        "\nA run's tail share (below p10, above p90) about 0.10, root mean square per family (model/oracle; the binomial alone ~0.039 on 59 days): {}",
        spread.join(", ")
    );
    println!("| figure | model | oracle |");
    println!("|---|---|---|");
    let rows: [(&str, &dyn Fn(usize) -> f64); 6] = [
        ("mean \\|coverage − 0.8\\| (target-runs)", &|w| {
            gates.off_target[w] / gates.target_runs.max(1) as f64
        }),
        ("target-runs with a tail over 18 %", &|w| {
            share(gates.tail_over[w], gates.target_runs)
        }),
        ("datasets: every target within 0.72-0.88", &|w| {
            share(gates.tight[w], gates.datasets)
        }),
        ("datasets: no tail over 18 %", &|w| {
            share(gates.tails[w], gates.datasets)
        }),
        ("datasets: both", &|w| share(gates.both[w], gates.datasets)),
        ("datasets: every target within 0.65-0.92", &|w| {
            share(gates.wide[w], gates.datasets)
        }),
    ];
    for (name, value) in rows {
        println!("| {name} | {:.4} | {:.4} |", value(0), value(1));
    }
    println!("\n# {label} against the oracle on {count} datasets (seeds {first}..), Nov-Dec");
    println!(
        "| target | kind | days | coverage model / oracle | below p10 model / oracle | above p90 model / oracle | width model / oracle | MAE model / oracle |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, kinds) in names.iter().zip(&sums) {
        for (kind, v) in ["ordinary", "special"].iter().zip(kinds) {
            let share = |k: usize| k as f64 / v.n.max(1) as f64;
            println!(
                "| {name} | {kind} | {:.0} | {:.3} / {:.3} | {:.3} / {:.3} | {:.3} / {:.3} | {:.3} | {:.3} |",
                v.n as f64 / count.max(1) as f64,
                1.0 - share(v.model[0] + v.model[1]),
                1.0 - share(v.oracle[0] + v.oracle[1]),
                share(v.model[0]),
                share(v.oracle[0]),
                share(v.model[1]),
                share(v.oracle[1]),
                v.model_width / v.oracle_width,
                v.model_error / v.oracle_error,
            );
        }
    }
    println!(
        "\nDates whose coverage over the datasets is furthest from 0.80 (below p10 / above p90):"
    );
    for (name, dates) in names.iter().zip(&by_date) {
        let mut worst: Vec<(f64, String)> = dates
            .iter()
            .map(|(date, [n, below, above])| {
                let n = (*n).max(1) as f64;
                let coverage = 1.0 - (below + above) as f64 / n;
                (
                    -(coverage - 0.8).abs(),
                    format!(
                        "{date} {} {:.2}/{:.2}",
                        date.format("%a"),
                        *below as f64 / n,
                        *above as f64 / n
                    ),
                )
            })
            .collect();
        worst.sort_by(|a, b| a.0.total_cmp(&b.0));
        let shown: Vec<String> = worst.into_iter().take(5).map(|(_, s)| s).collect();
        println!("- {name}: {}", shown.join(", "));
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let (mut reference, mut trials, mut versus, mut data_dir) = (2000u64, 500u64, 0u64, None);
    let mut calibration = Calibration::SHIPPED;
    let mut well_specified = false;
    let mut options = well_specified::Options::AS_FITTED;
    let mut first = COMPARE_SEEDS;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            let v = args.next().ok_or(format!("{name} needs a number"))?;
            v.parse()
                .map_err(|_| format!("{name}: `{v}` is not a whole number"))
        };
        match arg.as_str() {
            "--reference" => reference = number("--reference")?,
            "--trials" => trials = number("--trials")?,
            "--compare" => versus = number("--compare")?,
            "--from" => first = number("--from")?,
            "--well-specified" => well_specified = true,
            "--widen" | "--arrival-edge" => {
                let v = args.next().unwrap_or_default();
                let k: f64 = v
                    .parse()
                    .ok()
                    .filter(|k: &f64| *k > 0.0)
                    .ok_or(format!("{arg}: `{v}` is not a positive number"))?;
                if arg == "--widen" {
                    options.widen = k;
                } else {
                    options.arrival_edge = Some(k.min(1.0));
                }
            }
            "--calibration" => {
                let name = args.next().unwrap_or_default();
                calibration =
                    Calibration::named(&name).map_err(|e| format!("--calibration: {e}"))?;
            }
            _ if data_dir.is_none() && !arg.starts_with('-') => data_dir = Some(PathBuf::from(arg)),
            _ => return Err(format!("unexpected argument `{arg}`")),
        }
    }
    let data_dir = data_dir.ok_or("usage: oracle_coverage [--reference N] [--trials N] [--compare N [--from SEED] [--calibration NAME | --well-specified [--widen K] [--arrival-edge Q]]] DATA_DIR")?;
    let data = Dataset::load(&data_dir).map_err(|e| e.to_string())?;

    eprintln!("oracle: taking each date's p10 and p90 from {reference} reference datasets");
    let bands = oracle_bands(reference)?;
    let names: Vec<String> = targets().into_iter().map(|(n, _, _)| n).collect();

    println!("# The oracle on {}", data_dir.display());
    println!("| target | n | coverage | below p10 | above p90 |");
    println!("|---|---|---|---|---|");
    let on_data = score(&bands, &daily_actuals(&data));
    for (name, s) in names.iter().zip(&on_data) {
        println!(
            "| {name} | {} | {:.3} | {:.3} | {:.3} |",
            s.n,
            s.coverage(),
            s.share(s.below),
            s.share(s.above)
        );
    }
    let (tight, tails, wide) = passes(&on_data);
    println!(
        "\nOn it: every target within 0.72-0.88: {tight}; no tail over 18 %: {tails}; every target within 0.65-0.92: {wide}"
    );

    eprintln!("oracle: scoring {trials} trial datasets");
    let mut gates = Gates::default();
    let mut coverage_sum = vec![0.0; names.len()];
    for seed in TRIAL_SEEDS..TRIAL_SEEDS + trials {
        let scores = score(&bands, &actuals_of(seed)?);
        gates.add(0, &scores);
        for (sum, s) in coverage_sum.iter_mut().zip(&scores) {
            *sum += s.coverage();
        }
    }
    let rate = |k: usize| k as f64 / trials.max(1) as f64;
    let (n_tight, n_tails, n_both, n_wide) =
        (gates.tight[0], gates.tails[0], gates.both[0], gates.wide[0]);
    println!("\n# The oracle on {trials} trial datasets (generator seeds {TRIAL_SEEDS}..)");
    println!("| gate (one dataset) | share of datasets passing |");
    println!("|---|---|");
    println!("| every target within 0.72-0.88 | {:.3} |", rate(n_tight));
    println!("| no tail over 18 % | {:.3} |", rate(n_tails));
    println!("| both | {:.3} |", rate(n_both));
    println!("| every target within 0.65-0.92 | {:.3} |", rate(n_wide));
    println!(
        "| ... on three datasets in a row | {:.3} |",
        rate(n_wide).powi(3)
    );
    let mean_coverage: Vec<String> = coverage_sum
        .iter()
        .map(|sum| format!("{:.3}", sum / trials.max(1) as f64))
        .collect();
    println!(
        "\nMean coverage per target (0.80 if the oracle is right): {}",
        mean_coverage.join(" ")
    );
    if versus > 0 {
        let competitor = if well_specified {
            Competitor::WellSpecified(options)
        } else {
            Competitor::Shipped(calibration)
        };
        compare(&bands, first, versus, competitor)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
