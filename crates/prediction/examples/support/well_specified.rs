//! The well-specified competitor (issue #24's feasibility bound): a model
//! with the generator's exact functional form (`generate.rs`:
//! `volume_factor`, `feed_modifier`, `receive_file`, `run_jobs`) whose every
//! coefficient is ESTIMATED from one dataset's January-October actuals
//! (`training::daily_actuals`), never taken from the generator's constants,
//! the holdout or the reference datasets.
//!
//! Why: issue #24 asks the trained forecaster for an MAE within 1.02x the
//! oracle's, and the oracle knows each date's true distribution. A model
//! that must estimate its parameters from ten months pays for that
//! estimation however good its learner; this one pays ONLY for it (its form
//! is the truth's), so its distance to the oracle is about the best any
//! honest learner can do on these datasets: the bound the goal has to sit
//! above.
//!
//! - Records: one pooled least-squares fit on `ln(records)` of the four
//!   feeds (each feed's intercept; the trend; and the generator's
//!   multiplicative calendar effects as indicators, shared by the feeds,
//!   plus plan's month start and pharmacy's Mondays). p50 = `exp` of the
//!   fit; p10/p90 from draws that resample the training days' residual
//!   VECTORS whole (the feeds share a daily noise) on top of a residual
//!   bootstrap of the coefficients (the rare effects, a quarter end, rest
//!   on three days).
//! - Runtimes: `(a + b M) (+ the report's month-end and quarter-end
//!   minutes)` times a multiplicative noise, `M` the millions of records the
//!   job processes (a skipped holiday's records included), fitted on the
//!   actual volumes by a Huber M-estimate on relative errors (the noise is
//!   multiplicative; on the development seeds a hair better than least
//!   absolute deviations, MAE 1.0112 -> 1.0110 and 1.0116 -> 1.0112, the
//!   runtimes' special days most); the forecast's quantiles
//!   from draws of the day's (and a skipped holiday's) records from the
//!   records model, times a resampled training ratio `actual / fit`.
//!   Approximation: ingest's extra 7 minutes per rejected file (additive,
//!   unseen in the daily actuals) is left to the multiplicative ratios.
//! - Arrivals: `base_f + c max(F_f - 1, 0) + d [not a business day]`, with
//!   `F_f` the feed's calendar factor from the FITTED records model, by
//!   least absolute deviations; p10/p90 = p50 + the pooled training
//!   residuals' 10th and 90th percentiles (the generator's arrival noise is
//!   the same for every feed and day).
//!
//! [`Options`] holds two variants tried on the development seeds only,
//! after the confirmation run (`bench/well-specified.md`): bands widened
//! by a factor, and arrival feeds placed by a low quantile of their
//! residuals.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use prediction::calendar::{self, DayFacts};
use prediction::features::processed_volume;
use prediction::model::{dot, normal_equations, quantile};
use prediction::training::{DailyActuals, DateRange};
use prediction::{Quantiles, RawForecast};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Draws per holdout date (and bootstrap coefficient vectors).
const DRAWS: usize = 1000;
const FEEDS: usize = 4;
const JOBS: usize = 5;
/// Index of pharmacy and plan in `prediction::data::FEEDS`.
const PHARMACY: usize = 1;
const PLAN: usize = 3;
/// Index of the report job in `prediction::data::JOBS`.
const REPORT: usize = 4;
/// Calendar terms of the records model (all but the intercepts and trend).
const CALENDAR_TERMS: usize = 10;
/// Records model's columns: four intercepts, the trend, the calendar terms.
const RECORD_COLUMNS: usize = FEEDS + 1 + CALENDAR_TERMS;

/// The generator's calendar effects on a feed's volume as indicators, in
/// the order of `volume_factor` and `feed_modifier`: a weekend, a light
/// holiday (its factor replaces all others), then on business days only
/// Monday, the catch-up day after a holiday, the month's first business
/// day, quarter end, month end (not a quarter's), the second-to-last
/// business day; plan's month start (business days); pharmacy's Monday
/// (any Monday, a holiday Monday too: `feed_modifier` does not look at the
/// holiday).
fn calendar_terms(feed: usize, facts: &DayFacts) -> [f64; CALENDAR_TERMS] {
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let monday = facts.date.weekday() == Weekday::Mon;
    let mut t = [0.0; CALENDAR_TERMS];
    t[0] = flag(!facts.business_day && !facts.holiday_observed);
    t[1] = flag(facts.holiday_observed && !facts.pipeline_closed);
    if facts.business_day {
        t[2] = flag(monday);
        t[3] = flag(facts.after_holiday);
        t[4] = flag(facts.business_day_index == 1);
        t[5] = flag(facts.quarter_end);
        t[6] = flag(facts.month_end && !facts.quarter_end);
        t[7] = flag(!facts.month_end && facts.business_days_left == 1);
        t[8] = flag(feed == PLAN && facts.business_day_index == 1);
    }
    t[9] = flag(feed == PHARMACY && monday);
    t
}

fn record_row(feed: usize, facts: &DayFacts) -> [f64; RECORD_COLUMNS] {
    let mut x = [0.0; RECORD_COLUMNS];
    x[feed] = 1.0;
    // The generator's trend, 1 + 0.08 t, is within 0.1 % of exp(0.077 t)
    // over the year: linear in t on the log scale.
    x[FEEDS] = f64::from(facts.date.ordinal0()) / 365.0;
    x[FEEDS + 1..].copy_from_slice(&calendar_terms(feed, facts));
    x
}

/// Solves `a x = b` (Gaussian elimination with partial pivoting).
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Result<Vec<f64>, String> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap_or(col);
        if a[pivot][col].abs() < 1e-12 {
            return Err(format!("singular normal equations (column {col})"));
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let pivot_row = a[col].clone();
        for row in col + 1..n {
            let f = a[row][col] / pivot_row[col];
            for (x, p) in a[row][col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Ok(x)
}

/// `X'WX` and `X'Wy` of every row.
fn weighted(rows: &[Vec<f64>], y: &[f64], w: &[f64]) -> (Vec<Vec<f64>>, Vec<f64>) {
    let all: Vec<usize> = (0..rows.len()).collect();
    normal_equations(rows, y, &all, |i| w[i])
}

/// Plain least squares (no penalty).
fn least_squares(rows: &[Vec<f64>], y: &[f64]) -> Result<Vec<f64>, String> {
    let (a, b) = weighted(rows, y, &vec![1.0; y.len()]);
    solve(a, b)
}

/// Least absolute deviations by iteratively reweighted least squares,
/// started from the least-squares fit.
fn least_absolute(rows: &[Vec<f64>], y: &[f64]) -> Result<Vec<f64>, String> {
    let mut beta = least_squares(rows, y)?;
    for _ in 0..50 {
        let w: Vec<f64> = rows
            .iter()
            .zip(y)
            .map(|(x, yi)| 1.0 / (yi - dot(x, &beta)).abs().max(1e-4))
            .collect();
        let (a, b) = weighted(rows, y, &w);
        beta = solve(a, b)?;
    }
    Ok(beta)
}

/// A Huber M-estimate on relative errors `(y - fit) / fit` (the runtimes'
/// noise is multiplicative): nearly least squares' efficiency on the
/// Gaussian part, and the occasional slow run (x1.2-1.6) down-weighted.
fn relative_huber(rows: &[Vec<f64>], y: &[f64]) -> Result<Vec<f64>, String> {
    let mut beta = least_absolute(rows, y)?;
    for _ in 0..30 {
        let fits: Vec<f64> = rows.iter().map(|x| dot(x, &beta).max(1e-6)).collect();
        let mut rel: Vec<f64> = y.iter().zip(&fits).map(|(yi, f)| (yi - f) / f).collect();
        let mut abs: Vec<f64> = rel.iter().map(|r| r.abs()).collect();
        abs.sort_by(f64::total_cmp);
        let scale = (quantile(&abs, 0.5) / 0.6745).max(1e-6);
        for r in rel.iter_mut() {
            *r /= scale;
        }
        let w: Vec<f64> = rel
            .iter()
            .zip(&fits)
            .map(|(r, f)| (1.345 / r.abs().max(1.345)) / (f * f))
            .collect();
        let (a, b) = weighted(rows, y, &w);
        beta = solve(a, b)?;
    }
    Ok(beta)
}

/// The fitted records model.
struct Records {
    beta: Vec<f64>,
    /// Bootstrap deviations of the coefficients from `beta`, one per draw.
    deviations: Vec<Vec<f64>>,
    /// The training days' residual vectors (the four feeds of one day).
    residuals: Vec<[f64; FEEDS]>,
}

impl Records {
    fn fit(
        actuals: &BTreeMap<NaiveDate, DailyActuals>,
        train: DateRange,
        rng: &mut ChaCha8Rng,
    ) -> Result<Records, String> {
        // Only days on which all four feeds sent a file: each row's
        // residual then belongs to one day's vector.
        let mut days: Vec<(DayFacts, [f64; FEEDS])> = Vec::new();
        for (date, day) in actuals.range(train.from..=train.to) {
            let facts = calendar::day_facts(*date);
            if facts.pipeline_closed {
                continue;
            }
            let mut logs = [0.0; FEEDS];
            let mut all = true;
            for (f, slot) in logs.iter_mut().enumerate() {
                match day.feed_records[f] {
                    Some(y) if y > 0.0 => *slot = y.ln(),
                    _ => all = false,
                }
            }
            if all {
                days.push((facts, logs));
            }
        }
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for (facts, logs) in &days {
            for (f, log) in logs.iter().enumerate() {
                rows.push(record_row(f, facts).to_vec());
                y.push(*log);
            }
        }
        let beta = least_squares(&rows, &y)?;
        // In-sample residuals are a little smaller than the noise: scale
        // them back by sqrt(n / (n - p)).
        let inflate = (y.len() as f64 / (y.len() - RECORD_COLUMNS) as f64).sqrt();
        let residuals: Vec<[f64; FEEDS]> = days
            .iter()
            .map(|(facts, logs)| {
                let mut e = [0.0; FEEDS];
                for (f, slot) in e.iter_mut().enumerate() {
                    *slot = inflate * (logs[f] - dot(&record_row(f, facts), &beta));
                }
                e
            })
            .collect();
        // Residual bootstrap of the coefficients: beta* - beta =
        // (X'X)^-1 X' e*, e* the days' residual vectors resampled whole.
        let (xtx, _) = weighted(&rows, &y, &vec![1.0; y.len()]);
        let mut deviations = Vec::with_capacity(DRAWS);
        for _ in 0..DRAWS {
            let mut xte = vec![0.0; RECORD_COLUMNS];
            for (facts, _) in &days {
                let e = residuals[rng.random_range(0..residuals.len())];
                for (f, ef) in e.iter().enumerate() {
                    let x = record_row(f, facts);
                    for (k, xk) in x.iter().enumerate() {
                        xte[k] += xk * ef;
                    }
                }
            }
            deviations.push(solve(xtx.clone(), xte)?);
        }
        Ok(Records {
            beta,
            deviations,
            residuals,
        })
    }

    /// The feed's calendar factor on the fitted model (no intercept, no
    /// trend): the `F` of the arrivals' model.
    fn factor(&self, feed: usize, facts: &DayFacts) -> f64 {
        dot(&calendar_terms(feed, facts), &self.beta[FEEDS + 1..]).exp()
    }

    /// Draw `b` of the four feeds' records on a day (0 when the pipeline is closed).
    fn draw(&self, facts: &DayFacts, b: usize, rng: &mut ChaCha8Rng) -> [f64; FEEDS] {
        if facts.pipeline_closed {
            return [0.0; FEEDS];
        }
        let e = self.residuals[rng.random_range(0..self.residuals.len())];
        let mut out = [0.0; FEEDS];
        for (f, slot) in out.iter_mut().enumerate() {
            let x = record_row(f, facts);
            *slot = (dot(&x, &self.beta) + dot(&x, &self.deviations[b]) + e[f]).exp();
        }
        out
    }
}

/// The millions of records job `job` processes, from the feeds' processed records.
fn job_millions(job: usize, processed: &[f64; FEEDS]) -> f64 {
    match prediction::data::JOBS[job] {
        "pde_enrich" => (processed[0] + processed[1]) / 1e6,
        _ => processed.iter().sum::<f64>() / 1e6,
    }
}

/// A runtime model's row: 1, M, and for the report its month-end and
/// quarter-end minutes.
fn runtime_row(job: usize, millions: f64, facts: &DayFacts) -> Vec<f64> {
    let mut x = vec![1.0, millions];
    if job == REPORT {
        x.push(if facts.month_end && !facts.quarter_end {
            1.0
        } else {
            0.0
        });
        x.push(if facts.quarter_end { 1.0 } else { 0.0 });
    }
    x
}

/// The fitted runtime models: coefficients and the training ratios `actual / fit`, per job.
struct Runtimes {
    beta: Vec<Vec<f64>>,
    ratios: Vec<Vec<f64>>,
}

impl Runtimes {
    fn fit(
        actuals: &BTreeMap<NaiveDate, DailyActuals>,
        train: DateRange,
    ) -> Result<Runtimes, String> {
        let records_on = |d: NaiveDate, f: usize| {
            actuals
                .get(&d)
                .and_then(|a| a.feed_records[f])
                .unwrap_or(0.0)
        };
        let mut beta = Vec::new();
        let mut ratios = Vec::new();
        for job in 0..JOBS {
            let mut rows = Vec::new();
            let mut y = Vec::new();
            for (date, day) in actuals.range(train.from..=train.to) {
                let Some(minutes) = day.job_runtime_minutes[job] else {
                    continue;
                };
                let facts = calendar::day_facts(*date);
                let mut processed = [0.0; FEEDS];
                for (f, slot) in processed.iter_mut().enumerate() {
                    *slot = processed_volume(*date, true, |d| records_on(d, f))[1] * 1e6;
                }
                rows.push(runtime_row(job, job_millions(job, &processed), &facts));
                y.push(minutes);
            }
            let b = relative_huber(&rows, &y)?;
            ratios.push(rows.iter().zip(&y).map(|(x, yi)| yi / dot(x, &b)).collect());
            beta.push(b);
        }
        Ok(Runtimes { beta, ratios })
    }
}

/// The fitted arrivals model: per feed base, the shared minutes per unit of
/// `max(F - 1, 0)` and of a non-business day, and the pooled residual quantiles.
struct Arrivals {
    beta: Vec<f64>,
    q10: f64,
    q50: f64,
    q90: f64,
}

fn arrival_row(feed: usize, facts: &DayFacts, records: &Records) -> Vec<f64> {
    let mut x = vec![0.0; FEEDS + 2];
    x[feed] = 1.0;
    x[FEEDS] = (records.factor(feed, facts) - 1.0).max(0.0);
    x[FEEDS + 1] = if facts.business_day { 0.0 } else { 1.0 };
    x
}

impl Arrivals {
    fn fit(
        actuals: &BTreeMap<NaiveDate, DailyActuals>,
        train: DateRange,
        records: &Records,
        arrival_edge: Option<f64>,
    ) -> Result<Arrivals, String> {
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for (date, day) in actuals.range(train.from..=train.to) {
            let facts = calendar::day_facts(*date);
            for f in 0..FEEDS {
                if let Some(minutes) = day.feed_arrival_minutes[f] {
                    rows.push(arrival_row(f, &facts, records));
                    y.push(minutes);
                }
            }
        }
        let mut beta = least_absolute(&rows, &y)?;
        let residuals_of = |beta: &[f64]| -> Vec<f64> {
            rows.iter()
                .zip(&y)
                .map(|(x, yi)| yi - dot(x, beta))
                .collect()
        };
        // Optionally, each feed's base from its residuals' `edge` quantile
        // rather than their median: the noise (7 |z| minutes, then the
        // delays) is densest at its lower edge, where a quantile says most
        // about where the feed's distribution sits.
        if let Some(edge) = arrival_edge {
            let residuals = residuals_of(&beta);
            let mut pooled = residuals.clone();
            pooled.sort_by(f64::total_cmp);
            let pooled_edge = quantile(&pooled, edge);
            for f in 0..FEEDS {
                let mut own: Vec<f64> = rows
                    .iter()
                    .zip(&residuals)
                    .filter(|(x, _)| x[f] == 1.0)
                    .map(|(_, r)| *r)
                    .collect();
                own.sort_by(f64::total_cmp);
                beta[f] += quantile(&own, edge) - pooled_edge;
            }
        }
        let mut residuals = residuals_of(&beta);
        residuals.sort_by(f64::total_cmp);
        Ok(Arrivals {
            q10: quantile(&residuals, 0.1),
            q50: quantile(&residuals, 0.5),
            q90: quantile(&residuals, 0.9),
            beta,
        })
    }
}

fn quantiles_of(draws: &mut [f64], p50: Option<f64>) -> Quantiles<f64> {
    draws.sort_by(f64::total_cmp);
    Quantiles {
        p10: quantile(draws, 0.1),
        p50: p50.unwrap_or_else(|| quantile(draws, 0.5)),
        p90: quantile(draws, 0.9),
    }
}

const NOTHING: Quantiles<f64> = Quantiles {
    p10: 0.0,
    p50: 0.0,
    p90: 0.0,
};

/// `q` with its half-widths about the p50 times `k`.
fn widened(q: Quantiles<f64>, k: f64) -> Quantiles<f64> {
    Quantiles {
        p10: q.p50 - k * (q.p50 - q.p10),
        p50: q.p50,
        p90: q.p50 + k * (q.p90 - q.p50),
    }
}

/// Variants of the model, for experiments on the development seeds (the
/// confirmation run used [`Options::AS_FITTED`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// The bands' half-widths about the p50 times this (1: as fitted).
    pub widen: f64,
    /// Each arrival feed's base from this quantile of its residuals, not
    /// the median (`None`: the median, as least absolute deviations fit it).
    pub arrival_edge: Option<f64>,
}

impl Options {
    pub const AS_FITTED: Options = Options {
        widen: 1.0,
        arrival_edge: None,
    };
}

/// Fits the well-specified model on `train` and forecasts every date of
/// `holdout` (`seed` seeds the draws, so a run is reproducible).
pub fn forecast(
    actuals: &BTreeMap<NaiveDate, DailyActuals>,
    train: DateRange,
    holdout: DateRange,
    seed: u64,
    options: Options,
) -> Result<BTreeMap<NaiveDate, RawForecast>, String> {
    let widen = options.widen;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let records = Records::fit(actuals, train, &mut rng)?;
    let runtimes = Runtimes::fit(actuals, train)?;
    let arrivals = Arrivals::fit(actuals, train, &records, options.arrival_edge)?;
    let mut out = BTreeMap::new();
    for date in holdout.from.iter_days().take_while(|d| *d <= holdout.to) {
        let facts = calendar::day_facts(date);
        // The day's run processes its records and those of the observed
        // holidays just before it (skipped runs).
        let mut days = vec![facts];
        let mut d = date - Duration::days(1);
        while calendar::is_holiday_observed(d) {
            days.push(calendar::day_facts(d));
            d -= Duration::days(1);
        }
        let mut record_draws = vec![Vec::<f64>::new(); FEEDS];
        let mut runtime_draws = vec![Vec::<f64>::new(); JOBS];
        for b in 0..DRAWS {
            let mut processed = [0.0; FEEDS];
            for (k, day) in days.iter().enumerate() {
                let drawn = records.draw(day, b, &mut rng);
                for f in 0..FEEDS {
                    processed[f] += drawn[f];
                    if k == 0 {
                        record_draws[f].push(drawn[f]);
                    }
                }
            }
            for (job, slot) in runtime_draws.iter_mut().enumerate() {
                let x = runtime_row(job, job_millions(job, &processed), &facts);
                let ratios = &runtimes.ratios[job];
                let ratio = ratios[rng.random_range(0..ratios.len())];
                slot.push(dot(&x, &runtimes.beta[job]) * ratio);
            }
        }
        let feed_records: Vec<Quantiles<f64>> = (0..FEEDS)
            .map(|f| {
                if facts.pipeline_closed {
                    NOTHING
                } else {
                    let p50 = dot(&record_row(f, &facts), &records.beta).exp();
                    quantiles_of(&mut record_draws[f], Some(p50))
                }
            })
            .collect();
        let feed_arrival: Vec<Quantiles<f64>> = (0..FEEDS)
            .map(|f| {
                let fit = dot(&arrival_row(f, &facts, &records), &arrivals.beta);
                Quantiles {
                    p10: fit + arrivals.q10,
                    p50: fit + arrivals.q50,
                    p90: fit + arrivals.q90,
                }
            })
            .collect();
        let job_runtime = if facts.holiday_observed {
            vec![NOTHING; JOBS]
        } else {
            runtime_draws
                .iter_mut()
                .map(|draws| quantiles_of(draws, None))
                .collect()
        };
        out.insert(
            date,
            RawForecast {
                feed_records: feed_records
                    .into_iter()
                    .map(|q| widened(q, widen))
                    .collect(),
                feed_arrival: feed_arrival
                    .into_iter()
                    .map(|q| widened(q, widen))
                    .collect(),
                job_runtime: job_runtime.into_iter().map(|q| widened(q, widen)).collect(),
            },
        );
    }
    Ok(out)
}
