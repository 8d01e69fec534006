//! The trained models and their on-disk format (see `models/README.md`):
//! `models/models.postcard` holds a [`ModelSet`] (smartcore random forests
//! plus each target's residual quantiles) in postcard, and
//! `models/manifest.json` holds the format version and the model version,
//! the sha256 of the postcard bytes.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use smartcore::ensemble::random_forest_regressor::{
    RandomForestRegressor, RandomForestRegressorParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;

use crate::LoadError;
use crate::features::DayKind;
use crate::forecast::Quantiles;

/// The format's name, so a stray JSON file is not mistaken for a manifest.
pub const FORMAT: &str = "pde-prediction-models";
/// Bumped whenever [`ModelSet`] or the features change shape.
pub const FORMAT_VERSION: u32 = 1;
/// The manifest's name inside the models directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The models' name inside the models directory.
pub const MODELS_FILE: &str = "models.postcard";

/// smartcore's random forest regressor on dense f64 rows.
pub type Forest = RandomForestRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;

/// The scale a target is modelled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scale {
    /// As is (arrival minutes).
    Linear,
    /// `ln(1 + y)`: volumes and runtimes, whose noise grows with their size
    /// and which are never negative.
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
}

/// One target's forest and the spread of its out-of-bag residuals.
#[derive(Debug, Serialize, Deserialize)]
pub struct TargetModel {
    /// `feed:<feed>:records`, `feed:<feed>:arrival_minutes` or `job:<job>:runtime_minutes`.
    pub target: String,
    pub scale: Scale,
    /// The columns of the full feature row (see the manifest's feature
    /// names) this forest reads, in order.
    pub columns: Vec<usize>,
    /// The spread of `actual - out-of-bag prediction` on the training
    /// rows, in model scale, for ordinary and for special days (indexed by
    /// [`DayKind`]): a holiday or a month end misses by more than a plain
    /// Tuesday, and one band for both would be too wide for the one and too
    /// narrow for the other.
    pub bands: [ResidualBand; 2],
    pub forest: Forest,
}

/// A freshly fitted target and what its out-of-bag predictions said.
pub struct Fitted {
    pub model: TargetModel,
    /// Each training row's out-of-bag median prediction, original units.
    pub oob_p50: Vec<f64>,
    /// Each training row's kind and `actual - out-of-bag prediction`, model scale.
    pub oob_residuals: Vec<(DayKind, f64)>,
}

/// Percentiles of out-of-bag residuals, in model scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ResidualBand {
    pub q10: f64,
    pub q50: f64,
    pub q90: f64,
}

impl ResidualBand {
    /// Fewer residuals than this and a band falls back to all of them.
    const MIN_ROWS: usize = 20;

    /// One band per [`DayKind`], from `(kind, residual)` pairs; a kind
    /// with too few residuals gets the band of all of them.
    pub fn by_kind(residuals: &[(DayKind, f64)]) -> [ResidualBand; 2] {
        let all = ResidualBand::of(residuals.iter().map(|(_, r)| *r).collect());
        [DayKind::Ordinary, DayKind::Special].map(|kind| {
            let of_kind: Vec<f64> = residuals
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, r)| *r)
                .collect();
            if of_kind.len() < ResidualBand::MIN_ROWS {
                all
            } else {
                ResidualBand::of(of_kind)
            }
        })
    }

    fn of(mut residuals: Vec<f64>) -> ResidualBand {
        residuals.sort_by(f64::total_cmp);
        ResidualBand {
            q10: quantile(&residuals, 0.1),
            q50: quantile(&residuals, 0.5),
            q90: quantile(&residuals, 0.9),
        }
    }
}

impl TargetModel {
    /// Fits a forest to `rows` (one feature vector per sample) and `y`
    /// (original units) and measures its out-of-bag residuals. The
    /// out-of-bag median predictions are an honest stand-in for what the
    /// model would have said on a day it never saw.
    pub fn fit(
        target: &str,
        scale: Scale,
        columns: &[usize],
        rows: &[Vec<f64>],
        kinds: &[DayKind],
        y: &[f64],
        seed: u64,
    ) -> Result<Fitted, String> {
        let picked: Vec<Vec<f64>> = rows.iter().map(|r| pick(r, columns)).collect();
        let x = matrix(&picked).map_err(|e| format!("{target}: {e}"))?;
        let z: Vec<f64> = y.iter().map(|v| scale.to_model(*v)).collect();
        let n_features = columns.len().max(1);
        let parameters = RandomForestRegressorParameters::default()
            .with_n_trees(50)
            .with_max_depth(8)
            .with_min_samples_leaf(5)
            .with_m(n_features.div_ceil(2))
            .with_seed(seed);
        let with_samples = Forest::fit(&x, &z, parameters.clone().with_keep_samples(true))
            .map_err(|e| format!("{target}: fit failed: {e}"))?;
        let oob = with_samples
            .predict_oob(&x)
            .map_err(|e| format!("{target}: out-of-bag prediction failed: {e}"))?;
        let residuals: Vec<(DayKind, f64)> = kinds
            .iter()
            .zip(z.iter().zip(&oob))
            .map(|(k, (a, p))| (*k, a - p))
            .collect();
        let bands = ResidualBand::by_kind(&residuals);
        // The same seed grows the same trees; this copy just leaves out the
        // per-tree sample masks, which would bloat the file.
        let forest =
            Forest::fit(&x, &z, parameters).map_err(|e| format!("{target}: fit failed: {e}"))?;
        let oob_p50 = oob
            .iter()
            .zip(kinds)
            .map(|(p, k)| scale.from_model(p + bands[*k as usize].q50))
            .collect();
        let model = TargetModel {
            target: target.to_string(),
            scale,
            columns: columns.to_vec(),
            bands,
            forest,
        };
        Ok(Fitted {
            model,
            oob_p50,
            oob_residuals: residuals,
        })
    }

    /// The forest's own prediction for one feature row, in model scale.
    pub fn predict_model_scale(&self, row: &[f64]) -> f64 {
        match matrix_row(&pick(row, &self.columns)).and_then(|x| self.forest.predict(&x).ok()) {
            Some(p) => p.first().copied().unwrap_or(0.0),
            None => 0.0,
        }
    }

    /// The calibrated p10/p50/p90 for one feature row, in
    /// original units, ordered.
    pub fn predict(&self, row: &[f64], kind: DayKind) -> Quantiles<f64> {
        let z = self.predict_model_scale(row);
        let band = &self.bands[kind as usize];
        let [p10, p50, p90] = [band.q10, band.q50, band.q90].map(|q| self.scale.from_model(z + q));
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DateRange {
    pub from: String,
    pub to: String,
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
    // Each forest reads columns of the 13-feature row; anything else could
    // only come from a foreign file.
    let row_len = crate::features::CALENDAR_FEATURES.len() + 1;
    let columns_ok = models
        .feed_records
        .iter()
        .chain(&models.feed_arrival)
        .chain(&models.job_runtime)
        .all(|m| !m.columns.is_empty() && m.columns.iter().all(|c| *c < row_len));
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
