//! The trained models and their on-disk format (see `models/README.md`):
//! `models/models.postcard` holds a [`ModelSet`] (per target a smartcore
//! ridge regression, random forest, or ridge with a forest on its
//! residuals, plus the target's residual quantiles) in postcard, and
//! `models/manifest.json` holds the format version and the model version,
//! the sha256 of the postcard bytes.

use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use smartcore::ensemble::random_forest_regressor::{
    RandomForestRegressor, RandomForestRegressorParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::ridge_regression::{RidgeRegression, RidgeRegressionParameters};

use crate::LoadError;
use crate::features::{
    ARRIVAL_COST_COLUMNS, DayKind, ROW_LEN, RUNTIME_COST_COLUMNS, SHARED_CALENDAR_EFFECTS, TREND,
};
use crate::forecast::Quantiles;

/// The format's name, so a stray JSON file is not mistaken for a manifest.
pub const FORMAT: &str = "pde-prediction-models";
/// Bumped whenever [`ModelSet`] or the features change shape or meaning
/// (2: a choice of learner per target, indicator features, the processed
/// volume; 3: no weekday indicator on an observed holiday, so a version 2
/// file's coefficients would misread holidays; 4: a target's `band_scale`;
/// 5: the runtimes' cost model, [`Learner::RidgeAtMedian`] over the
/// volume in millions, shipped since issue #24's fourth round, which a
/// version 4 reader from before it would refuse as an unknown learner).
pub const FORMAT_VERSION: u32 = 5;
/// The manifest's name inside the models directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The models' name inside the models directory.
pub const MODELS_FILE: &str = "models.postcard";

/// smartcore's random forest regressor on dense f64 rows.
pub type Forest = RandomForestRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;
/// smartcore's ridge regression on dense f64 rows.
pub type Ridge = RidgeRegression<f64, f64, DenseMatrix<f64>, Vec<f64>>;

/// The scale a target is modelled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scale {
    /// As is: a target whose effects add up (arrival minutes move by so
    /// many minutes on a heavy day) and whose noise does not grow with it.
    Linear,
    /// `ln(1 + y)`: volumes and runtimes, whose effects multiply, whose
    /// noise grows with their size and which are never negative.
    Log1p,
}

impl Scale {
    pub fn to_model(self, y: f64) -> f64 {
        match self {
            Scale::Linear => y,
            Scale::Log1p => y.max(0.0).ln_1p(),
        }
    }

    pub fn from_model(self, z: f64) -> f64 {
        match self {
            Scale::Linear => z,
            Scale::Log1p => z.exp_m1().max(0.0),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scale::Linear => "y",
            Scale::Log1p => "ln(1+y)",
        }
    }
}

/// One target's learner and the spread of its validation residuals.
#[derive(Debug, Serialize, Deserialize)]
pub struct TargetModel {
    /// `feed:<feed>:records`, `feed:<feed>:arrival_minutes` or `job:<job>:runtime_minutes`.
    pub target: String,
    pub scale: Scale,
    pub learner: Learner,
    /// The spread of `actual - forecast` on the calibration blocks, in
    /// model scale, for ordinary and for special days (indexed by
    /// [`DayKind`]): a holiday or a month end misses by more than a plain
    /// Tuesday, and one band for both would be too wide for the one and too
    /// narrow for the other (see [`BandRule`]).
    pub bands: [ResidualBand; 2],
    /// The scale the bands are in: the model's, or the target's own noise
    /// scale where that differs (arrivals: a file is late by so many
    /// minutes, whatever the day's usual time, so a band in `ln(1 + y)`
    /// would widen on late days and narrow on early ones).
    pub band_scale: Scale,
}

/// The learner a target was given, chosen on validation blocks.
#[derive(Debug, Serialize, Deserialize)]
pub enum Learner {
    Ridge(LinearPart),
    Forest(ForestPart),
    /// A ridge regression plus a forest fitted to its residuals: the line
    /// carries the trend and the calendar's main effects past the training
    /// window, the forest what the line misses.
    RidgeForest(LinearPart, ForestPart),
    /// A ridge regression moved by the median of its training residuals:
    /// a cost model's least squares aim at the mean, and a file's wait is
    /// skewed (a late file is late by far more than an early one is
    /// early), so the mean sits above the median the p50 must be.
    RidgeAtMedian(LinearPart, f64),
}

/// A ridge regression and the row columns it reads.
#[derive(Debug, Serialize, Deserialize)]
pub struct LinearPart {
    pub columns: Vec<usize>,
    pub ridge: Ridge,
}

/// A random forest and the row columns it reads.
#[derive(Debug, Serialize, Deserialize)]
pub struct ForestPart {
    pub columns: Vec<usize>,
    pub forest: Forest,
}

/// Which learner to fit and how: a candidate of the selection.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnerSpec {
    pub kind: LearnerKind,
    pub scale: Scale,
    /// The ridge penalty (of the linear part).
    pub alpha: f64,
    /// Refit the linear part without the rows it misses by more than
    /// [`TRIM_ROBUST_SDS`] robust standard deviations: a slow run or a file
    /// delayed by two hours would otherwise drag a rare day's coefficient
    /// (three quarter ends in ten months) far off.
    pub trim: bool,
    pub linear_columns: Vec<usize>,
    pub forest_columns: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearnerKind {
    Ridge,
    Forest,
    RidgeForest,
    RidgeAtMedian,
    /// A ridge regression whose rare calendar effects
    /// ([`SHARED_CALENDAR_EFFECTS`]) are estimated once from several
    /// targets' rows together ([`LearnerSpec::fit_pooled`]); the fitted
    /// learner is a plain [`Learner::Ridge`].
    PooledRidge,
    /// A least-squares fit of several targets' rows together whose every
    /// calendar effect is shared, each target keeping its own intercept
    /// and, where its rows say it differs, its own weekday, month-start or
    /// trend coefficients ([`LearnerSpec::fit_shared`]); the fitted learner
    /// is a plain [`Learner::Ridge`].
    SharedRidge,
}

/// How far from the median residual a row may lie (in robust standard
/// deviations, 1.4826 x the median absolute deviation) before a trimmed
/// linear fit leaves it out.
pub const TRIM_ROBUST_SDS: f64 = 3.0;

impl LearnerSpec {
    /// A short name for `metrics.json`, e.g. `ridge(alpha=1, trimmed) on ln(1+y)`.
    pub fn name(&self) -> String {
        let trimmed = if self.trim { ", trimmed" } else { "" };
        let ridge = format!("ridge(alpha={}{trimmed})", self.alpha);
        let learner = match self.kind {
            LearnerKind::Ridge => ridge,
            LearnerKind::Forest => "forest".to_string(),
            LearnerKind::RidgeForest => format!("{ridge}+forest"),
            LearnerKind::RidgeAtMedian => format!("{ridge} at the median"),
            LearnerKind::PooledRidge => format!("pooled {ridge}"),
            LearnerKind::SharedRidge => "shared least squares".to_string(),
        };
        // The cost model is a ridge like the others, told apart by what it reads.
        let cost = if self.linear_columns == RUNTIME_COST_COLUMNS {
            " over the volume and month ends"
        } else if self.linear_columns == ARRIVAL_COST_COLUMNS {
            " over the feed's records"
        } else {
            ""
        };
        format!("{learner} on {}{cost}", self.scale.name())
    }

    /// Fits to `rows` (full feature rows) and `z` (the target in model scale).
    pub fn fit(&self, rows: &[Vec<f64>], z: &[f64], seed: u64) -> Result<Learner, String> {
        match self.kind {
            LearnerKind::Forest => Ok(Learner::Forest(fit_forest(
                rows,
                z,
                &self.forest_columns,
                seed,
            )?)),
            LearnerKind::Ridge => Ok(Learner::Ridge(self.fit_linear(rows, z)?.0)),
            LearnerKind::PooledRidge => self.fit_pooled(&[(rows, z)], 0),
            LearnerKind::SharedRidge => self.fit_shared(&[(rows, z)], 0),
            LearnerKind::RidgeAtMedian => {
                let linear = self.fit_linear(rows, z)?.0;
                let mut residuals: Vec<f64> = rows
                    .iter()
                    .zip(z)
                    .map(|(row, z)| z - linear.predict(row))
                    .collect();
                residuals.sort_by(f64::total_cmp);
                let shift = quantile(&residuals, 0.5);
                Ok(Learner::RidgeAtMedian(linear, shift))
            }
            LearnerKind::RidgeForest => {
                let (linear, kept) = self.fit_linear(rows, z)?;
                let kept_rows: Vec<Vec<f64>> = kept.iter().map(|i| rows[*i].clone()).collect();
                let residuals: Vec<f64> = kept
                    .iter()
                    .map(|i| z[*i] - linear.predict(&rows[*i]))
                    .collect();
                let forest = fit_forest(&kept_rows, &residuals, &self.forest_columns, seed)?;
                Ok(Learner::RidgeForest(linear, forest))
            }
        }
    }

    /// A [`LearnerKind::PooledRidge`] for group `which` of `groups` (each
    /// a target's rows and values in model scale, e.g. the four feeds'
    /// records): one trimmed ridge fitted on every group's rows at once,
    /// each group with an intercept and the columns of `linear_columns`
    /// outside [`SHARED_CALENDAR_EFFECTS`] of its own, those inside shared
    /// by all; then a plain ridge over `linear_columns` fitted to that
    /// model's values on group `which`'s rows, which it reproduces (the
    /// pooled model is linear in those columns), so the learner is an
    /// ordinary [`Learner::Ridge`] and the format does not change.
    ///
    /// Why: a quarter end is three days of a training year, and a feed's
    /// own noise (most of a day's) moves its estimate as much as the
    /// effect's size; the calendar's rare effects are the same for every
    /// feed, so four feeds' rows average most of that noise away, while
    /// each feed keeps its weekly and month-start habits and its trend.
    pub fn fit_pooled(
        &self,
        groups: &[(&[Vec<f64>], &[f64])],
        which: usize,
    ) -> Result<Learner, String> {
        let (own, shared): (Vec<usize>, Vec<usize>) = self
            .linear_columns
            .iter()
            .partition(|c| !SHARED_CALENDAR_EFFECTS.contains(c));
        let width = groups.len() * (own.len() + 1) + shared.len();
        let stack = |g: usize, row: &[f64]| -> Vec<f64> {
            let mut stacked = vec![0.0; width];
            let block = g * (own.len() + 1);
            stacked[block] = 1.0;
            for (k, c) in own.iter().enumerate() {
                stacked[block + 1 + k] = row.get(*c).copied().unwrap_or(0.0);
            }
            let first_shared = groups.len() * (own.len() + 1);
            for (k, c) in shared.iter().enumerate() {
                stacked[first_shared + k] = row.get(*c).copied().unwrap_or(0.0);
            }
            stacked
        };
        let mut rows = Vec::new();
        let mut z = Vec::new();
        for (g, (group_rows, group_z)) in groups.iter().enumerate() {
            rows.extend(group_rows.iter().map(|r| stack(g, r)));
            z.extend_from_slice(group_z);
        }
        let pooled = LearnerSpec {
            kind: LearnerKind::Ridge,
            linear_columns: (0..width).collect(),
            ..self.clone()
        }
        .fit_linear(&rows, &z)?
        .0;
        self.reproduced(groups, which, |r| pooled.predict(&stack(which, r)))
    }

    /// A [`LearnerKind::SharedRidge`] for group `which` of `groups` (each a
    /// target's rows and values in model scale, e.g. the four feeds'
    /// records): least squares on every group's rows at once, each group
    /// with its own intercept, every column of `linear_columns` shared
    /// (the weekdays measured against Wednesday), plus a group's own
    /// deviation from the shared coefficient of a weekday, the month's first
    /// business day or the trend wherever that deviation, tried alone, is
    /// more than [`DEVIATION_T`] standard errors (at the residuals' robust
    /// scale) from naught (the first group never deviates: the shared
    /// coefficients are its); rows missed by more than [`TRIM_ROBUST_SDS`]
    /// robust standard deviations are left out of the final fit. Then, as
    /// for the pooled ridge, a plain ridge over `linear_columns` that
    /// reproduces the fit on group `which`'s rows.
    ///
    /// Why: the calendar moves every feed's volume alike (a Monday's
    /// catch-up, a holiday, a month end); a feed estimating its own
    /// weekdays and trend from its own noise pays for it on every day
    /// forecast (issue #24's well-specified bound, `bench/well-specified.md`,
    /// has records' ordinary days at 1.004-1.013 of the oracle's MAE where
    /// the pooled ridge has 1.021-1.030). A feed that does differ (a
    /// pharmacy's heavier Mondays, a plan's month start) shows it in
    /// hundreds of rows, which the test keeps.
    pub fn fit_shared(
        &self,
        groups: &[(&[Vec<f64>], &[f64])],
        which: usize,
    ) -> Result<Learner, String> {
        let shared: Vec<usize> = self
            .linear_columns
            .iter()
            .copied()
            .filter(|c| *c != DEVIATION_REFERENCE)
            .collect();
        let own: Vec<usize> = shared
            .iter()
            .copied()
            .filter(|c| DEVIATION_COLUMNS.contains(c))
            .collect();
        let n_groups = groups.len();
        let value = |row: &[f64], c: usize| {
            let v = row.get(c).copied().unwrap_or(0.0);
            // Days to years: the normal equations stay well conditioned.
            if c == TREND { v / 365.0 } else { v }
        };
        // Column layout: group intercepts, shared columns, then each kept
        // deviation `(group, column)`.
        let design = |g: usize, row: &[f64], deviations: &[(usize, usize)]| -> Vec<f64> {
            let mut x = vec![0.0; n_groups + shared.len() + deviations.len()];
            x[g] = 1.0;
            for (k, c) in shared.iter().enumerate() {
                x[n_groups + k] = value(row, *c);
            }
            for (k, (dg, c)) in deviations.iter().enumerate() {
                if *dg == g {
                    x[n_groups + shared.len() + k] = value(row, *c);
                }
            }
            x
        };
        let stacked = |deviations: &[(usize, usize)]| -> (Vec<Vec<f64>>, Vec<f64>) {
            let mut x = Vec::new();
            let mut y = Vec::new();
            for (g, (rows, z)) in groups.iter().enumerate() {
                x.extend(rows.iter().map(|r| design(g, r, deviations)));
                y.extend_from_slice(z);
            }
            (x, y)
        };
        let every: Vec<(usize, usize)> = (1..n_groups)
            .flat_map(|g| own.iter().map(move |c| (g, *c)))
            .collect();
        // Each deviation tested alone on top of the shared fit: with all of
        // them in at once, a feed's Monday is measured against its own
        // Wednesday only, twice the variance.
        let (x, y) = stacked(&[]);
        let all: Vec<usize> = (0..y.len()).collect();
        let (robust, plain) = scales(&residuals_of(
            &x,
            &y,
            &least_squares(&x, &y, &all)?.coefficients,
        ));
        // The standard errors with the noise's robust scale: a slow file's
        // or a rare day's miss must not hide a feed's own Mondays.
        let robust_share = if plain > 0.0 { robust / plain } else { 1.0 };
        let mut kept = Vec::new();
        for deviation in &every {
            let (x, y) = stacked(std::slice::from_ref(deviation));
            let fit = least_squares(&x, &y, &all)?;
            let last = fit.coefficients.len() - 1;
            let se = fit.standard_errors[last] * robust_share;
            if se > 0.0 && (fit.coefficients[last] / se).abs() > DEVIATION_T {
                kept.push(*deviation);
            }
        }
        let (x, y) = stacked(&kept);
        let fit = least_squares(&x, &y, &all)?;
        let trimmed = untrimmed(&residuals_of(&x, &y, &fit.coefficients)).unwrap_or(all);
        let fit = least_squares(&x, &y, &trimmed)?;
        self.reproduced(groups, which, |r| {
            dot(&design(which, r, &kept), &fit.coefficients)
        })
    }

    /// A joint fit of several groups stored for group `which` as the
    /// plain ridge over `linear_columns` that reproduces `fitted` (the
    /// joint fit's value of a row) on that group's rows: the joint fit is
    /// linear in those columns, so the learner is an ordinary
    /// [`Learner::Ridge`] and the format does not change.
    fn reproduced(
        &self,
        groups: &[(&[Vec<f64>], &[f64])],
        which: usize,
        fitted: impl Fn(&[f64]) -> f64,
    ) -> Result<Learner, String> {
        let (own_rows, _) = groups
            .get(which)
            .ok_or_else(|| format!("no group {which} of {}", groups.len()))?;
        let fitted: Vec<f64> = own_rows.iter().map(|r| fitted(r)).collect();
        let plain = LearnerSpec {
            kind: LearnerKind::Ridge,
            trim: false,
            ..self.clone()
        };
        Ok(Learner::Ridge(plain.fit_linear(own_rows, &fitted)?.0))
    }

    /// The ridge part, and which rows it kept.
    fn fit_linear(&self, rows: &[Vec<f64>], z: &[f64]) -> Result<(LinearPart, Vec<usize>), String> {
        let all: Vec<usize> = (0..rows.len()).collect();
        let first = fit_ridge(rows, z, &all, &self.linear_columns, self.alpha)?;
        if !self.trim {
            return Ok((first, all));
        }
        let residuals: Vec<f64> = all
            .iter()
            .map(|i| z[*i] - first.predict(&rows[*i]))
            .collect();
        let kept = match untrimmed(&residuals) {
            Some(kept) if kept.len() < all.len() => kept,
            _ => return Ok((first, all)),
        };
        let linear = fit_ridge(rows, z, &kept, &self.linear_columns, self.alpha)?;
        Ok((linear, kept))
    }
}

/// How many standard errors a group's deviation from the shared
/// coefficient must be to be kept ([`LearnerSpec::fit_shared`]): 24
/// deviations are tested for four feeds, each false one kept about 1 time
/// in 2,000.
pub const DEVIATION_T: f64 = 3.5;
/// The weekday the others are measured against in a shared fit
/// (Wednesday): with an intercept per group, seven weekday indicators and
/// the light holiday's would sum to one.
const DEVIATION_REFERENCE: usize = 14;
/// The columns a group may have its own coefficient of in a shared fit:
/// the weekdays, the month's first business day and the trend; the
/// calendar's rare effects stay shared.
const DEVIATION_COLUMNS: [usize; 8] = [12, 13, 15, 16, 17, 18, 21, TREND];

/// A least-squares fit's coefficients and their standard errors.
struct LeastSquares {
    coefficients: Vec<f64>,
    standard_errors: Vec<f64>,
}

/// Ordinary least squares on the rows `used` of `x`, by the normal
/// equations with a vanishing ridge (1e-9 of each column's sum of
/// squares) so that a column all zero in `used` (no quarter end before
/// April) gets a zero coefficient instead of a singular matrix.
fn least_squares(x: &[Vec<f64>], y: &[f64], used: &[usize]) -> Result<LeastSquares, String> {
    let p = x.first().map_or(0, Vec::len);
    let (mut xtx, xty) = normal_equations(x, y, used, |_| 1.0);
    for (a, row) in xtx.iter_mut().enumerate() {
        row[a] += 1e-9 * row[a].abs() + 1e-12;
    }
    let inverse = invert(&xtx).ok_or("least squares: a singular design")?;
    let coefficients: Vec<f64> = inverse.iter().map(|row| dot(row, &xty)).collect();
    let sse: f64 = used
        .iter()
        .map(|&i| (y[i] - dot(&x[i], &coefficients)).powi(2))
        .sum();
    let dof = (used.len() as f64 - p as f64).max(1.0);
    let variance = sse / dof;
    let standard_errors = (0..p)
        .map(|a| (variance * inverse[a][a]).max(0.0).sqrt())
        .collect();
    Ok(LeastSquares {
        coefficients,
        standard_errors,
    })
}

/// `X'WX` and `X'Wy` of the rows `used` of `x`, row `i` weighted `w(i)`:
/// least squares' normal equations (and, reweighted, least absolute
/// deviations' or an M-estimate's).
pub fn normal_equations(
    x: &[Vec<f64>],
    y: &[f64],
    used: &[usize],
    w: impl Fn(usize) -> f64,
) -> (Vec<Vec<f64>>, Vec<f64>) {
    let p = x.first().map_or(0, Vec::len);
    let mut xtx = vec![vec![0.0; p]; p];
    let mut xty = vec![0.0; p];
    for &i in used {
        let (row, weight) = (&x[i], w(i));
        for a in 0..p {
            if row[a] == 0.0 {
                continue;
            }
            let wa = weight * row[a];
            xty[a] += wa * y[i];
            for b in 0..p {
                xtx[a][b] += wa * row[b];
            }
        }
    }
    (xtx, xty)
}

/// The inverse of a symmetric positive definite matrix (Gauss-Jordan with
/// partial pivoting); `None` if it is singular.
fn invert(m: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let mut a: Vec<Vec<f64>> = m
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut r = row.clone();
            r.extend((0..n).map(|j| if i == j { 1.0 } else { 0.0 }));
            r
        })
        .collect();
    for col in 0..n {
        let pivot = (col..n).max_by(|i, j| a[*i][col].abs().total_cmp(&a[*j][col].abs()))?;
        if a[pivot][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, pivot);
        let scale = a[col][col];
        for v in a[col].iter_mut() {
            *v /= scale;
        }
        let pivot_row = a[col].clone();
        for (i, row) in a.iter_mut().enumerate() {
            if i != col && row[col] != 0.0 {
                let factor = row[col];
                for (v, p) in row.iter_mut().zip(&pivot_row) {
                    *v -= factor * p;
                }
            }
        }
    }
    Some(a.into_iter().map(|row| row[n..].to_vec()).collect())
}

fn residuals_of(x: &[Vec<f64>], y: &[f64], coefficients: &[f64]) -> Vec<f64> {
    x.iter()
        .zip(y)
        .map(|(row, y)| y - dot(row, coefficients))
        .collect()
}

/// The median and median absolute deviation of some values.
pub fn median_and_mad(residuals: &[f64]) -> (f64, f64) {
    let mut sorted = residuals.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = quantile(&sorted, 0.5);
    let mut deviations: Vec<f64> = residuals.iter().map(|r| (r - median).abs()).collect();
    deviations.sort_by(f64::total_cmp);
    (median, quantile(&deviations, 0.5))
}

/// The rows whose residual lies within [`TRIM_ROBUST_SDS`] robust standard
/// deviations (1.4826 x the median absolute deviation) of the residuals'
/// median: a trimmed fit's rows; `None` when the residuals have no spread.
fn untrimmed(residuals: &[f64]) -> Option<Vec<usize>> {
    let (median, mad) = median_and_mad(residuals);
    let limit = TRIM_ROBUST_SDS * 1.4826 * mad;
    (limit > 0.0).then(|| {
        (0..residuals.len())
            .filter(|i| (residuals[*i] - median).abs() <= limit)
            .collect()
    })
}

/// The residuals' robust scale (1.4826 x the median absolute deviation)
/// and their root mean square.
fn scales(residuals: &[f64]) -> (f64, f64) {
    let rms = (residuals.iter().map(|r| r * r).sum::<f64>() / residuals.len().max(1) as f64).sqrt();
    (1.4826 * median_and_mad(residuals).1, rms)
}

/// The sum of the products of `a`'s and `b`'s items.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Fits a ridge regression to the rows `used`, reading those of `columns`
/// that vary among them: a column that is constant in the training rows
/// (no quarter end yet in January to April) says nothing, and smartcore's
/// standardisation refuses it.
fn fit_ridge(
    rows: &[Vec<f64>],
    z: &[f64],
    used: &[usize],
    columns: &[usize],
    alpha: f64,
) -> Result<LinearPart, String> {
    let varying: Vec<usize> = columns
        .iter()
        .copied()
        .filter(|c| {
            let first = used.first().map(|i| rows[*i].get(*c));
            used.iter().any(|i| rows[*i].get(*c) != first.flatten())
        })
        .collect();
    let picked: Vec<Vec<f64>> = used.iter().map(|i| pick(&rows[*i], &varying)).collect();
    let x = matrix(&picked)?;
    let y: Vec<f64> = used.iter().map(|i| z[*i]).collect();
    let ridge = Ridge::fit(
        &x,
        &y,
        RidgeRegressionParameters::default()
            .with_alpha(alpha)
            .with_normalize(true),
    )
    .map_err(|e| format!("ridge fit failed: {e}"))?;
    Ok(LinearPart {
        columns: varying,
        ridge,
    })
}

/// The forest every forest learner uses: 50 trees, depth <= 8, >= 5
/// samples a leaf, half the columns tried at each split.
fn fit_forest(
    rows: &[Vec<f64>],
    z: &[f64],
    columns: &[usize],
    seed: u64,
) -> Result<ForestPart, String> {
    let picked: Vec<Vec<f64>> = rows.iter().map(|r| pick(r, columns)).collect();
    let x = matrix(&picked)?;
    let parameters = RandomForestRegressorParameters::default()
        .with_n_trees(50)
        .with_max_depth(8)
        .with_min_samples_leaf(5)
        .with_m(columns.len().max(1).div_ceil(2))
        .with_seed(seed);
    let forest =
        Forest::fit(&x, &z.to_vec(), parameters).map_err(|e| format!("forest fit failed: {e}"))?;
    Ok(ForestPart {
        columns: columns.to_vec(),
        forest,
    })
}

impl LinearPart {
    fn predict(&self, row: &[f64]) -> f64 {
        predict_row(row, &self.columns, |x| self.ridge.predict(x))
    }
}

impl ForestPart {
    fn predict(&self, row: &[f64]) -> f64 {
        predict_row(row, &self.columns, |x| self.forest.predict(x))
    }
}

/// The `columns` of one feature row through a smartcore predictor; 0 if it
/// fails (it cannot on a row of the right length, which the loader checks).
fn predict_row<E>(
    row: &[f64],
    columns: &[usize],
    predict: impl Fn(&DenseMatrix<f64>) -> Result<Vec<f64>, E>,
) -> f64 {
    matrix_row(&pick(row, columns))
        .and_then(|x| predict(&x).ok())
        .and_then(|p| p.first().copied())
        .unwrap_or(0.0)
}

impl Learner {
    /// The prediction for one full feature row, in model scale.
    pub fn predict(&self, row: &[f64]) -> f64 {
        match self {
            Learner::Ridge(linear) => linear.predict(row),
            Learner::Forest(forest) => forest.predict(row),
            Learner::RidgeForest(linear, forest) => linear.predict(row) + forest.predict(row),
            Learner::RidgeAtMedian(linear, shift) => linear.predict(row) + shift,
        }
    }

    fn columns(&self) -> impl Iterator<Item = &usize> {
        let (linear, forest) = match self {
            Learner::Ridge(l) | Learner::RidgeAtMedian(l, _) => (Some(l), None),
            Learner::Forest(f) => (None, Some(f)),
            Learner::RidgeForest(l, f) => (Some(l), Some(f)),
        };
        linear
            .into_iter()
            .flat_map(|l| &l.columns)
            .chain(forest.into_iter().flat_map(|f| &f.columns))
    }
}

/// The 10th and 90th percentiles of validation residuals, in model scale:
/// a forecast plus these is its p10 and p90; the forecast itself is the p50.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ResidualBand {
    pub q10: f64,
    pub q90: f64,
}

/// How validation residuals become a target's bands (the calibration
/// study in `models/README.md` compares these choices on simulated data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BandRule {
    /// Take the quantiles about the residuals' median rather than about 0.
    pub centred: bool,
    /// The split-conformal order statistics (the `ceil((n + 1) 0.9)`-th
    /// and `floor((n + 1) 0.1)`-th smallest of `n`) rather than
    /// interpolated empirical quantiles.
    pub conformal: bool,
    /// Whether, and how, the bands differ by [`DayKind`].
    pub kinds: KindBands,
}

/// A target's residuals of each kind, and each kind's `(scale, centre)`.
type KindScales = ([Vec<f64>; 2], [(f64, f64); 2]);

/// How a target's bands differ between ordinary and special days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindBands {
    /// One band for all days.
    Pooled,
    /// Each kind's band from its own residuals alone.
    PerKind,
    /// Each kind's residuals divided by their own scale (median absolute
    /// deviation), the quantiles taken of all of them together and scaled
    /// back: the kind sets the width, every residual the tail's shape
    /// (about 30 special days a target cannot place a 10th percentile).
    Scaled,
}

impl BandRule {
    /// The bands of `(kind, residual)` pairs: per kind, a kind with too
    /// few residuals getting the band of all of them, or one band for both.
    pub fn bands(&self, residuals: &[(DayKind, f64)]) -> [ResidualBand; 2] {
        let all = self.band(residuals.iter().map(|(_, r)| *r).collect());
        let of_kind = |kind: DayKind| -> Vec<f64> {
            residuals
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, r)| *r)
                .collect()
        };
        let kinds = [DayKind::Ordinary, DayKind::Special].map(of_kind);
        let too_few = |k: &Vec<f64>| k.len() < ResidualBand::MIN_ROWS;
        match self.kinds {
            KindBands::Pooled => [all; 2],
            KindBands::PerKind => kinds.map(|k| if too_few(&k) { all } else { self.band(k) }),
            KindBands::Scaled => self
                .shared_scaled_bands(&[residuals])
                .map_or([all; 2], |bands| bands[0]),
        }
    }

    /// [`KindBands::Scaled`] bands of several targets that share one tail
    /// shape: each target's residuals of each kind, about the target's
    /// median, divided by their median absolute deviation; the quantiles
    /// of all of them together, scaled back by each target's and kind's.
    /// `None` when a kind has too few residuals or no spread.
    pub fn shared_scaled_bands(
        &self,
        targets: &[&[(DayKind, f64)]],
    ) -> Option<Vec<[ResidualBand; 2]>> {
        let mut standardised = Vec::new();
        let mut scales = Vec::new();
        for residuals in targets {
            let (kinds, kind_scales) = self.kind_scales(residuals)?;
            if kind_scales.iter().any(|s| s.0 <= 0.0) {
                return None;
            }
            for (k, s) in kinds.iter().zip(kind_scales) {
                standardised.extend(k.iter().map(|r| (r - s.1) / s.0));
            }
            scales.push(kind_scales.map(|s| s.0));
        }
        let unit = BandRule {
            centred: false,
            ..*self
        }
        .band(standardised);
        Some(
            scales
                .iter()
                .map(|s| {
                    s.map(|s| ResidualBand {
                        q10: unit.q10 * s,
                        q90: unit.q90 * s,
                    })
                })
                .collect(),
        )
    }

    /// Bands of several targets that share each kind of day's tail shape:
    /// as [`Self::shared_scaled_bands`], but the quantiles of each kind
    /// taken from that kind's standardised residuals only (a special day's
    /// tails are its own, and four targets give it enough residuals).
    /// `None` when a kind has too few residuals or no spread.
    pub fn shared_kind_bands(
        &self,
        targets: &[&[(DayKind, f64)]],
    ) -> Option<Vec<[ResidualBand; 2]>> {
        let mut standardised: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let mut scales = Vec::new();
        for residuals in targets {
            let (kinds, kind_scales) = self.kind_scales(residuals)?;
            if kind_scales.iter().any(|s| s.0 <= 0.0) {
                return None;
            }
            for ((all, k), s) in standardised.iter_mut().zip(&kinds).zip(kind_scales) {
                all.extend(k.iter().map(|r| (r - s.1) / s.0));
            }
            scales.push(kind_scales.map(|s| s.0));
        }
        let plain = BandRule {
            centred: false,
            ..*self
        };
        let units = standardised.map(|k| plain.band(k));
        Some(
            scales
                .iter()
                .map(|s| {
                    [0, 1].map(|k| ResidualBand {
                        q10: units[k].q10 * s[k],
                        q90: units[k].q90 * s[k],
                    })
                })
                .collect(),
        )
    }

    /// A target's residuals of each kind and each kind's scale, the
    /// median absolute deviation about the centre (the median of all its
    /// residuals when centred, else 0), with that centre; `None` when a
    /// kind has too few residuals.
    fn kind_scales(&self, residuals: &[(DayKind, f64)]) -> Option<KindScales> {
        let kinds = [DayKind::Ordinary, DayKind::Special].map(|kind| -> Vec<f64> {
            residuals
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, r)| *r)
                .collect()
        });
        if kinds.iter().any(|k| k.len() < ResidualBand::MIN_ROWS) {
            return None;
        }
        let mut sorted: Vec<f64> = residuals.iter().map(|(_, r)| *r).collect();
        sorted.sort_by(f64::total_cmp);
        let centre = if self.centred {
            quantile(&sorted, 0.5)
        } else {
            0.0
        };
        let scales = kinds.each_ref().map(|k| {
            let mut deviations: Vec<f64> = k.iter().map(|r| (r - centre).abs()).collect();
            deviations.sort_by(f64::total_cmp);
            (quantile(&deviations, 0.5), centre)
        });
        Some((kinds, scales))
    }

    /// One band. Centred, it lies around the residuals' median: the
    /// learners fitted for the validation blocks saw less data than the
    /// final one and miss by a bias of their own (a trend from four
    /// months), which the final learner does not share; their spread about
    /// their median is what carries over.
    fn band(&self, mut residuals: Vec<f64>) -> ResidualBand {
        residuals.sort_by(f64::total_cmp);
        let centre = if self.centred {
            quantile(&residuals, 0.5)
        } else {
            0.0
        };
        let (q10, q90) = if self.conformal {
            conformal_quantiles(&residuals)
        } else {
            (quantile(&residuals, 0.1), quantile(&residuals, 0.9))
        };
        ResidualBand {
            q10: q10 - centre,
            q90: q90 - centre,
        }
    }
}

/// The split-conformal bounds of a central 80% interval from sorted
/// residuals, one tail at a time: the `ceil((n + 1) 0.9)`-th smallest (at
/// least 90% of exchangeable new residuals lie below it) and the
/// `floor((n + 1) 0.1)`-th (at most 10% below), clamped to the sample.
fn conformal_quantiles(sorted: &[f64]) -> (f64, f64) {
    let n = sorted.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let upper = ((n + 1) * 9).div_ceil(10).clamp(1, n);
    let lower = ((n + 1) / 10).clamp(1, n);
    (sorted[lower - 1], sorted[upper - 1])
}

impl ResidualBand {
    /// Fewer residuals than this and a kind of day gets the band of all.
    const MIN_ROWS: usize = 20;
}

impl TargetModel {
    /// The learner's own prediction for one feature row, in model scale.
    pub fn predict_model_scale(&self, row: &[f64]) -> f64 {
        self.learner.predict(row)
    }

    /// The calibrated p10/p50/p90 for one feature row, in
    /// original units, ordered.
    pub fn predict(&self, row: &[f64], kind: DayKind) -> Quantiles<f64> {
        let z = self.predict_model_scale(row);
        let band = &self.bands[kind as usize];
        // The learners aim at the centre (the linear ones fitted without
        // their outliers), so the forecast is the p50; shifting it by the
        // validation residuals' median would carry the bias of learners
        // fitted on less data into this one.
        let [p10, p50, p90] = if self.band_scale == self.scale {
            [band.q10, 0.0, band.q90].map(|q| self.scale.from_model(z + q))
        } else {
            let centre = self.band_scale.to_model(self.scale.from_model(z));
            [band.q10, 0.0, band.q90].map(|q| self.band_scale.from_model(centre + q))
        };
        let p50 = p50.max(p10);
        Quantiles {
            p10,
            p50,
            p90: p90.max(p50),
        }
    }
}

/// Everything `predict_all` needs, in one postcard file.
#[derive(Debug, Serialize, Deserialize)]
pub struct ModelSet {
    pub format_version: u32,
    /// One per feed, in [`crate::data::FEEDS`] order.
    pub feed_records: Vec<TargetModel>,
    pub feed_arrival: Vec<TargetModel>,
    /// One per job, in [`crate::data::JOBS`] order.
    pub job_runtime: Vec<TargetModel>,
    /// Median minutes from the last feed's arrival to the first job's start.
    pub start_gap_minutes: f64,
    /// The pipeline skips observed federal holidays (learnt from the data):
    /// no job runs then.
    pub skips_holidays: bool,
}

/// `models/manifest.json`: what the models are and how to check them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    /// `sha256:<hex>` of `models.postcard`.
    pub model_version: String,
    pub models_file: String,
    pub learner: String,
    pub trained_on: DateRange,
    pub calendar_features: Vec<String>,
    pub volume_feature: String,
    pub targets: Vec<String>,
}

/// A range of dates, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// `sha256:<hex>` of some bytes.
pub fn content_version(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Writes the models and their manifest into `dir`; returns the manifest.
pub fn save(dir: &Path, models: &ModelSet, mut manifest: Manifest) -> Result<Manifest, String> {
    let bytes =
        postcard::to_stdvec(models).map_err(|e| format!("cannot encode the models: {e}"))?;
    manifest.model_version = content_version(&bytes);
    manifest.models_file = MODELS_FILE.to_string();
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let models_path = dir.join(MODELS_FILE);
    std::fs::write(&models_path, &bytes).map_err(|e| format!("{}: {e}", models_path.display()))?;
    let json = serde_json::to_string_pretty(&manifest)
        .map_err(|e| format!("cannot encode the manifest: {e}"))?;
    let manifest_path = dir.join(MANIFEST_FILE);
    std::fs::write(&manifest_path, json + "\n")
        .map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    Ok(manifest)
}

/// Reads and checks the manifest and the models from `dir`.
pub fn load(dir: &Path) -> Result<(Manifest, ModelSet), LoadError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let fail = |path: &Path, message: String| LoadError::File {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read(&manifest_path)
        .map_err(|e| fail(&manifest_path, format!("cannot read: {e}")))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| fail(&manifest_path, format!("not a models manifest: {e}")))?;
    if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
        return Err(fail(
            &manifest_path,
            format!(
                "format {} version {}, expected {FORMAT} version {FORMAT_VERSION} (retrain with the train binary)",
                manifest.format, manifest.format_version
            ),
        ));
    }
    let models_path = dir.join(&manifest.models_file);
    let bytes =
        std::fs::read(&models_path).map_err(|e| fail(&models_path, format!("cannot read: {e}")))?;
    let version = content_version(&bytes);
    if version != manifest.model_version {
        return Err(fail(
            &models_path,
            format!(
                "content hash {version} does not match the manifest's {}",
                manifest.model_version
            ),
        ));
    }
    let models: ModelSet = postcard::from_bytes(&bytes)
        .map_err(|e| fail(&models_path, format!("corrupt models: {e}")))?;
    let complete = models.format_version == FORMAT_VERSION
        && models.feed_records.len() == crate::data::FEEDS.len()
        && models.feed_arrival.len() == crate::data::FEEDS.len()
        && models.job_runtime.len() == crate::data::JOBS.len();
    // Each learner reads columns of the feature row; anything else could
    // only come from a foreign file.
    let columns_ok = models
        .feed_records
        .iter()
        .chain(&models.feed_arrival)
        .chain(&models.job_runtime)
        .all(|m| m.learner.columns().next().is_some() && m.learner.columns().all(|c| *c < ROW_LEN));
    if !complete || !columns_ok {
        return Err(fail(
            &models_path,
            "the models do not cover every feed and job".to_string(),
        ));
    }
    Ok((manifest, models))
}

/// The `q` quantile of sorted values (linear interpolation).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

fn matrix(rows: &[Vec<f64>]) -> Result<DenseMatrix<f64>, String> {
    let n_cols = rows.first().map_or(0, Vec::len);
    if rows.is_empty() || n_cols == 0 || rows.iter().any(|r| r.len() != n_cols) {
        return Err(format!(
            "no training rows, or rows of unequal length ({} rows)",
            rows.len()
        ));
    }
    DenseMatrix::new(rows.len(), n_cols, rows.concat(), false).map_err(|e| e.to_string())
}

fn matrix_row(row: &[f64]) -> Option<DenseMatrix<f64>> {
    DenseMatrix::new(1, row.len(), row.to_vec(), false).ok()
}

/// The chosen columns of a feature row; a column past the row's end reads 0.
fn pick(row: &[f64], columns: &[usize]) -> Vec<f64> {
    columns
        .iter()
        .map(|c| row.get(*c).copied().unwrap_or(0.0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// y = 2 + 3x on 40 rows, and one row off by 100.
    fn line_with_an_outlier() -> (Vec<Vec<f64>>, Vec<f64>) {
        let rows: Vec<Vec<f64>> = (0..40).map(|i| vec![f64::from(i % 10), 1.0]).collect();
        let mut z: Vec<f64> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| 2.0 + 3.0 * r[0] + if i % 2 == 0 { 0.1 } else { -0.1 })
            .collect();
        z[7] += 100.0;
        (rows, z)
    }

    fn spec(trim: bool) -> LearnerSpec {
        LearnerSpec {
            kind: LearnerKind::Ridge,
            scale: Scale::Linear,
            alpha: 0.01,
            trim,
            // Column 1 is constant: the fit must leave it out, not fail.
            linear_columns: vec![0, 1],
            forest_columns: vec![0],
        }
    }

    #[test]
    fn a_trimmed_ridge_leaves_the_outlier_out() {
        let (rows, z) = line_with_an_outlier();
        let plain = spec(false).fit(&rows, &z, 1).unwrap();
        let trimmed = spec(true).fit(&rows, &z, 1).unwrap();
        let at = |l: &Learner, x: f64| l.predict(&[x, 1.0]);
        assert!(
            (at(&trimmed, 4.0) - 14.0).abs() < 0.1,
            "{}",
            at(&trimmed, 4.0)
        );
        assert!((at(&plain, 4.0) - 14.0).abs() > 1.0, "{}", at(&plain, 4.0));
        let Learner::Ridge(linear) = &trimmed else {
            panic!("not a ridge")
        };
        assert_eq!(linear.columns, [0]);
    }

    #[test]
    fn a_ridge_with_a_forest_predicts_the_sum_of_both() {
        let (rows, z) = line_with_an_outlier();
        let spec = LearnerSpec {
            kind: LearnerKind::RidgeForest,
            ..spec(true)
        };
        let learner = spec.fit(&rows, &z, 3).unwrap();
        let Learner::RidgeForest(linear, forest) = &learner else {
            panic!("not a ridge with a forest")
        };
        let row = [4.0, 1.0];
        let sum = linear.predict(&row) + forest.predict(&row);
        assert!((learner.predict(&row) - sum).abs() < 1e-12);
        assert!((learner.predict(&row) - 14.0).abs() < 0.5);
        assert_eq!(spec.name(), "ridge(alpha=0.01, trimmed)+forest on y");
    }

    #[test]
    fn a_ridge_at_the_median_forecasts_a_skewed_wait_at_its_median() {
        // A wait of 10 + 2x minutes, plus 0, 1, 2 or 9 more (median 1.5,
        // mean 3): least squares aim at the mean, the p50 is the median.
        let rows: Vec<Vec<f64>> = (0..80).map(|i| vec![f64::from(i % 10)]).collect();
        let extra = [0.0, 1.0, 2.0, 9.0];
        let z: Vec<f64> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| 10.0 + 2.0 * r[0] + extra[(i / 10) % 4])
            .collect();
        let spec = LearnerSpec {
            kind: LearnerKind::RidgeAtMedian,
            trim: false,
            linear_columns: vec![0],
            ..spec(false)
        };
        let at_median = spec.fit(&rows, &z, 1).unwrap();
        let plain = LearnerSpec {
            kind: LearnerKind::Ridge,
            ..spec.clone()
        }
        .fit(&rows, &z, 1)
        .unwrap();
        assert!(
            (plain.predict(&[4.0]) - 21.0).abs() < 0.05,
            "{}",
            plain.predict(&[4.0])
        );
        let p50 = at_median.predict(&[4.0]);
        assert!((p50 - 19.5).abs() < 0.05, "{p50}");
        assert_eq!(spec.name(), "ridge(alpha=0.01) at the median on y");
    }

    #[test]
    fn a_shared_fit_keeps_only_the_deviations_a_feeds_rows_show() {
        // Four feeds' log volumes over 700 days: a Monday effect of 0.26
        // for all, 0.36 for feed 1 (its own heavier Mondays), a month start
        // of 0.6 more for feed 3 only, a level each, and a noise that
        // differs by feed and day (a seeded xorshift).
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut noise = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 10_000) as f64 / 10_000.0 * 0.2 - 0.1
        };
        let row = |i: usize| {
            let mut row = vec![0.0; ROW_LEN];
            row[12 + i % 7] = 1.0;
            row[21] = f64::from(u8::from(i % 30 == 3));
            row
        };
        let rows: Vec<Vec<f64>> = (0..700).map(row).collect();
        let groups: Vec<Vec<f64>> = (0..4)
            .map(|g| {
                rows.iter()
                    .map(|r| {
                        let monday = if g == 1 { 0.36 } else { 0.26 };
                        let start = if g == 3 { 0.6 } else { 0.0 };
                        g as f64 + monday * r[12] + start * r[21] + noise()
                    })
                    .collect()
            })
            .collect();
        let spec = LearnerSpec {
            kind: LearnerKind::SharedRidge,
            alpha: 1.0,
            trim: true,
            linear_columns: vec![12, 13, 14, 15, 16, 17, 18, 21],
            ..spec(false)
        };
        let shared_groups: Vec<(&[Vec<f64>], &[f64])> = groups
            .iter()
            .map(|z| (rows.as_slice(), z.as_slice()))
            .collect();
        let monday_of = |l: &Learner| l.predict(&row(0)) - l.predict(&row(2));
        let start_of = |l: &Learner| l.predict(&row(3)) - l.predict(&row(10));
        let feeds: Vec<Learner> = (0..4)
            .map(|g| spec.fit_shared(&shared_groups, g).unwrap())
            .collect();
        for (g, learner) in feeds.iter().enumerate() {
            let monday = if g == 1 { 0.36 } else { 0.26 };
            assert!(
                (monday_of(learner) - monday).abs() < 0.02,
                "{g}: {}",
                monday_of(learner)
            );
            let start = if g == 3 { 0.6 } else { 0.0 };
            assert!(
                (start_of(learner) - start).abs() < 0.03,
                "{g}: {}",
                start_of(learner)
            );
            assert!((learner.predict(&row(2)) - g as f64).abs() < 0.02);
        }
        // The three feeds without a Monday of their own share one estimate
        // (up to the plain ridge's reproduction of it).
        assert!((monday_of(&feeds[0]) - monday_of(&feeds[2])).abs() < 1e-3);
        assert!((monday_of(&feeds[2]) - monday_of(&feeds[3])).abs() < 1e-3);
        assert_eq!(spec.name(), "shared least squares on y");
        assert!(spec.fit_shared(&shared_groups, 4).is_err());
    }

    #[test]
    fn least_squares_recovers_a_line_and_its_standard_errors() {
        let x: Vec<Vec<f64>> = (0..100).map(|i| vec![1.0, f64::from(i)]).collect();
        let y: Vec<f64> = (0..100)
            .map(|i| 2.0 + 0.5 * f64::from(i) + if i % 2 == 0 { 0.1 } else { -0.1 })
            .collect();
        let used: Vec<usize> = (0..100).collect();
        let fit = least_squares(&x, &y, &used).unwrap();
        assert!((fit.coefficients[0] - 2.0).abs() < 0.05);
        assert!((fit.coefficients[1] - 0.5).abs() < 1e-3);
        // sigma 0.1, sum of squares of i about its mean 83,325.
        let se = 0.1 / 83_325f64.sqrt();
        assert!(
            (fit.standard_errors[1] / se - 1.0).abs() < 0.05,
            "{}",
            fit.standard_errors[1]
        );
        // A column all zero gets nothing, not a singular matrix.
        let x0: Vec<Vec<f64>> = x.iter().map(|r| vec![r[0], r[1], 0.0]).collect();
        let fit0 = least_squares(&x0, &y, &used).unwrap();
        assert_eq!(fit0.coefficients[2], 0.0);
    }

    #[test]
    fn a_pooled_ridge_takes_a_rare_effect_from_every_group() {
        // Four feeds' log volumes: each its own level and Monday effect,
        // and a quarter end (column 7, 1 day in 40) that adds 0.7 to all.
        // On the quarter ends feed 0's own noise is +0.3, the others' -0.1.
        let row = |i: usize| {
            let mut row = vec![0.0; ROW_LEN];
            row[12] = f64::from(u8::from(i.is_multiple_of(5)));
            row[7] = f64::from(u8::from(i % 40 == 1));
            row
        };
        let rows: Vec<Vec<f64>> = (0..400).map(row).collect();
        let groups: Vec<Vec<f64>> = (0..4)
            .map(|g| {
                rows.iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let noise = if r[7] == 1.0 {
                            [0.3, -0.1, -0.1, -0.1][g]
                        } else if i % 2 == 0 {
                            0.01
                        } else {
                            -0.01
                        };
                        g as f64 + 0.1 * g as f64 * r[12] + 0.7 * r[7] + noise
                    })
                    .collect()
            })
            .collect();
        let spec = LearnerSpec {
            kind: LearnerKind::PooledRidge,
            alpha: 1.0,
            trim: false,
            linear_columns: vec![12, 7],
            ..spec(false)
        };
        let pooled_groups: Vec<(&[Vec<f64>], &[f64])> = groups
            .iter()
            .map(|z| (rows.as_slice(), z.as_slice()))
            .collect();
        let pooled = spec.fit_pooled(&pooled_groups, 0).unwrap();
        let alone = LearnerSpec {
            kind: LearnerKind::Ridge,
            ..spec.clone()
        }
        .fit(&rows, &groups[0], 1)
        .unwrap();
        let quarter_end = row(41);
        let ordinary = row(3);
        // Alone, feed 0 takes its own noise for the effect (0.7 + 0.3 / 1).
        let effect = |l: &Learner| l.predict(&quarter_end) - l.predict(&ordinary);
        assert!((effect(&alone) - 0.97).abs() < 0.05, "{}", effect(&alone));
        assert!((effect(&pooled) - 0.7).abs() < 0.02, "{}", effect(&pooled));
        // Each feed keeps its own level and Monday effect.
        let third = spec.fit_pooled(&pooled_groups, 3).unwrap();
        assert!((third.predict(&ordinary) - 3.0).abs() < 0.02);
        assert!((third.predict(&row(5)) - third.predict(&ordinary) - 0.3).abs() < 0.02);
        assert!(matches!(pooled, Learner::Ridge(_)));
        assert_eq!(spec.name(), "pooled ridge(alpha=1) on y");
        assert!(spec.fit_pooled(&pooled_groups, 4).is_err());
    }

    /// `n` residuals of one kind: 1, 2, ..., n.
    fn ranks(kind: DayKind, n: usize) -> Vec<(DayKind, f64)> {
        (1..=n).map(|i| (kind, i as f64)).collect()
    }

    #[test]
    fn conformal_bands_take_the_finite_sample_order_statistics() {
        let rule = |conformal| BandRule {
            centred: false,
            conformal,
            kinds: KindBands::Pooled,
        };
        // 29 residuals: the 27th = ceil(30 x 0.9) and the 3rd = floor(30 x 0.1)
        // smallest, where interpolation gives 26.2 and 3.8.
        let residuals = ranks(DayKind::Ordinary, 29);
        let [conformal, _] = rule(true).bands(&residuals);
        assert_eq!((conformal.q10, conformal.q90), (3.0, 27.0));
        let [interpolated, _] = rule(false).bands(&residuals);
        assert!((interpolated.q10 - 3.8).abs() < 1e-9 && (interpolated.q90 - 26.2).abs() < 1e-9);
        // Too few for the order statistic: the sample's extremes.
        assert_eq!(conformal_quantiles(&[1.0, 2.0, 3.0]), (1.0, 3.0));
    }

    #[test]
    fn scaled_bands_share_the_tails_shape_and_keep_each_kinds_width() {
        // Special days' residuals are the ordinary ones' twice over.
        let ordinary: Vec<(DayKind, f64)> = (0..=100)
            .map(|i| (DayKind::Ordinary, f64::from(i) / 10.0 - 5.0))
            .collect();
        let special: Vec<(DayKind, f64)> = ordinary
            .iter()
            .step_by(4)
            .map(|(_, r)| (DayKind::Special, 2.0 * r))
            .collect();
        let residuals = [ordinary, special].concat();
        let rule = |kinds| BandRule {
            centred: true,
            conformal: false,
            kinds,
        };
        let [o, s] = rule(KindBands::Scaled).bands(&residuals);
        assert!((s.q90 / o.q90 - 2.0).abs() < 0.1, "{o:?} {s:?}");
        assert!((s.q10 / o.q10 - 2.0).abs() < 0.1, "{o:?} {s:?}");
        assert!(o.q10 < 0.0 && 0.0 < o.q90);
        let [pooled, same] = rule(KindBands::Pooled).bands(&residuals);
        assert_eq!(pooled, same);
        assert!(o.q90 < pooled.q90 && pooled.q90 < s.q90);
        // Too few special days to scale: one band for both.
        let few = [ranks(DayKind::Ordinary, 50), ranks(DayKind::Special, 5)].concat();
        let [a, b] = rule(KindBands::Scaled).bands(&few);
        assert_eq!(a, b);
    }

    #[test]
    fn a_family_shares_the_tails_shape_and_each_target_keeps_its_width() {
        // Two targets of one family: the second's residuals are the first's
        // three times over, and their special days twice their ordinary.
        let first: Vec<(DayKind, f64)> = (0..=100)
            .map(|i| (DayKind::Ordinary, f64::from(i) / 10.0 - 5.0))
            .chain((0..=40).map(|i| (DayKind::Special, f64::from(i) / 2.0 - 10.0)))
            .collect();
        let second: Vec<(DayKind, f64)> = first.iter().map(|(k, r)| (*k, 3.0 * r)).collect();
        let rule = BandRule {
            centred: true,
            conformal: false,
            kinds: KindBands::Scaled,
        };
        let shared = rule.shared_scaled_bands(&[&first, &second]).unwrap();
        let [o1, s1] = shared[0];
        let [o2, s2] = shared[1];
        assert!((o2.q90 / o1.q90 - 3.0).abs() < 1e-9, "{o1:?} {o2:?}");
        assert!((s1.q10 / o1.q10 - 2.0).abs() < 0.1, "{o1:?} {s1:?}");
        assert!((s2.q90 / s1.q90 - 3.0).abs() < 1e-9, "{s1:?} {s2:?}");
        // One target alone: the Scaled bands.
        assert_eq!(
            rule.shared_scaled_bands(&[&first]).unwrap()[0],
            rule.bands(&first)
        );
        // A target with too few special days: no shared shape.
        let few = [ranks(DayKind::Ordinary, 50), ranks(DayKind::Special, 5)].concat();
        assert!(rule.shared_scaled_bands(&[&first, &few]).is_none());
    }

    #[test]
    fn shared_kind_bands_give_each_kind_its_own_shape() {
        // Ordinary days evenly spread on -5..5; special days the cubes of
        // the same over 25 (peaked, with long tails: a shape of their
        // own); a second target is the first three times over.
        let first: Vec<(DayKind, f64)> = (0..=100)
            .map(|i| (DayKind::Ordinary, f64::from(i) / 10.0 - 5.0))
            .chain(
                (0..=100).map(|i| (DayKind::Special, (f64::from(i) / 10.0 - 5.0).powi(3) / 25.0)),
            )
            .collect();
        let second: Vec<(DayKind, f64)> = first.iter().map(|(k, r)| (*k, 3.0 * r)).collect();
        let rule = BandRule {
            centred: true,
            conformal: false,
            kinds: KindBands::PerKind,
        };
        let by_kind = rule.shared_kind_bands(&[&first, &second]).unwrap();
        let one_shape = rule.shared_scaled_bands(&[&first, &second]).unwrap();
        // A target alone, per kind: what the shared shapes must match here.
        let [o, s] = rule.bands(&first);
        let [ko, ks] = by_kind[0];
        assert!((ko.q90 - o.q90).abs() < 1e-9, "{by_kind:?} {o:?}");
        assert!((ks.q90 - s.q90).abs() < 1e-9, "{by_kind:?} {s:?}");
        // One shape for both kinds puts the special band elsewhere.
        assert!(
            (one_shape[0][1].q90 - ks.q90).abs() > 0.5,
            "{one_shape:?} {by_kind:?}"
        );
        assert!((by_kind[1][1].q90 / ks.q90 - 3.0).abs() < 1e-9);
        let few = [ranks(DayKind::Ordinary, 50), ranks(DayKind::Special, 5)].concat();
        assert!(rule.shared_kind_bands(&[&first, &few]).is_none());
    }

    #[test]
    fn a_band_in_minutes_is_as_wide_on_a_late_day_as_on_an_early_one() {
        // A learner of ln(1 + y) forecasting about 20 and about 60 minutes.
        let rows: Vec<Vec<f64>> = (0..40).map(|i| vec![f64::from(i % 2), 1.0]).collect();
        let z: Vec<f64> = rows.iter().map(|r| (20.0 + 40.0 * r[0]).ln_1p()).collect();
        let spec = LearnerSpec {
            scale: Scale::Log1p,
            ..spec(false)
        };
        let band = ResidualBand {
            q10: -2.0,
            q90: 5.0,
        };
        let model = |band_scale| TargetModel {
            target: "feed:claims:arrival_minutes".to_string(),
            scale: Scale::Log1p,
            learner: spec.fit(&rows, &z, 1).unwrap(),
            bands: [band; 2],
            band_scale,
        };
        let minutes = model(Scale::Linear);
        for row in [[0.0, 1.0], [1.0, 1.0]] {
            let q = minutes.predict(&row, DayKind::Ordinary);
            assert!((q.p90 - q.p50 - 5.0).abs() < 1e-9, "{q:?}");
            assert!((q.p50 - q.p10 - 2.0).abs() < 1e-9, "{q:?}");
        }
        // The same band in the model's scale widens with the forecast.
        let log = model(Scale::Log1p);
        let early = log.predict(&[0.0, 1.0], DayKind::Ordinary);
        let late = log.predict(&[1.0, 1.0], DayKind::Ordinary);
        assert!(
            late.p90 - late.p50 > 2.0 * (early.p90 - early.p50),
            "{early:?} {late:?}"
        );
    }

    #[test]
    fn bands_are_centred_on_the_residuals_median() {
        let residuals: Vec<(DayKind, f64)> = (0..=100)
            .map(|i| (DayKind::Ordinary, 5.0 + f64::from(i) / 10.0))
            .collect();
        let per_kind = BandRule {
            centred: true,
            conformal: false,
            kinds: KindBands::PerKind,
        };
        let [ordinary, special] = per_kind.bands(&residuals);
        assert!((ordinary.q10 + 4.0).abs() < 1e-9 && (ordinary.q90 - 4.0).abs() < 1e-9);
        // Too few special days: they get the band of all.
        assert_eq!(ordinary, special);
    }
}
