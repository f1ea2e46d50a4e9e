//! Checkpoints: a manifest (`config.json`) and weight files in a step folder, written through a
//! staging folder and a rename, with a `latest` pointer replaced atomically, so a crash at any
//! moment leaves the previous checkpoint loadable.
//!
//! Layout of a checkpoint folder `DIR`:
//! ```text
//! DIR/latest                     name of the newest complete step folder
//! DIR/step-000100/config.json    ModelSpec, TrainingConfig, step, loss history, file checksums
//! DIR/step-000100/model.mpk      EMA weights (what sampling uses, unless best.mpk is there)
//! DIR/step-000100/best.mpk       EMA weights at the lowest validation loss so far (keep_best)
//! DIR/step-000100/train.mpk      raw weights (resume)
//! DIR/step-000100/optimizer.mpk  AdamW state (resume)
//! DIR/loss.csv, DIR/loss.svg     the loss curve
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::{backend::Backend, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{LossPoint, TrainingConfig};
use crate::io::{read_file, write_atomic};
use crate::prior::{DiffusionPrior, DiffusionPriorConfig};
use crate::regression::{RegressionConfig, RegressionModel};
use crate::{ModelError, Result};

/// Version of the checkpoint layout.
const FORMAT: u32 = 1;

/// Which model a checkpoint holds, with its full configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSpec {
    /// A [`DiffusionPrior`].
    DiffusionPrior(DiffusionPriorConfig),
    /// A [`RegressionModel`].
    Regression(RegressionConfig),
}

/// Size and SHA-256 of a stored file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FileEntry {
    bytes: usize,
    sha256: String,
}

/// The manifest of one checkpoint (`config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    model: ModelSpec,
    training: TrainingConfig,
    step: usize,
    ema_updates: u64,
    /// Shapes of the model's float parameters in visit order.
    parameter_shapes: Vec<Vec<usize>>,
    history: Vec<LossPoint>,
    files: BTreeMap<String, FileEntry>,
}

/// Parses a manifest; training options added after a checkpoint was written (`host_gradients`,
/// `keep_best`, `patience`) take their defaults, so older checkpoints still open.
fn parse_manifest(bytes: &[u8]) -> std::result::Result<Manifest, serde_json::Error> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes)?;
    if let (Some(training), Ok(serde_json::Value::Object(defaults))) = (
        value.get_mut("training").and_then(|t| t.as_object_mut()),
        serde_json::to_value(TrainingConfig::new()),
    ) {
        for (key, default) in defaults {
            training.entry(key).or_insert(default);
        }
    }
    serde_json::from_value(value)
}

/// An opened, verified checkpoint.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    folder: PathBuf,
    manifest: Manifest,
}

fn checkpoint_error(path: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::Checkpoint {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// A stored file whose size differs from what the manifest recorded.
fn size_mismatch(path: &Path, bytes: usize, manifest_bytes: usize) -> ModelError {
    checkpoint_error(
        path,
        format!("truncated or altered: {bytes} bytes, manifest says {manifest_bytes}"),
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The full-precision named MessagePack recorder all checkpoint files use.
pub(crate) fn recorder() -> NamedMpkBytesRecorder<FullPrecisionSettings> {
    NamedMpkBytesRecorder::default()
}

/// Encodes a module's weights.
pub(crate) fn encode_module<B: Backend, M: Module<B>>(module: &M, path: &Path) -> Result<Vec<u8>> {
    Recorder::<B>::record(&recorder(), module.clone().into_record(), ())
        .map_err(|e| checkpoint_error(path, format!("cannot encode weights: {e}")))
}

/// Shapes of a module's float parameters, in visit order.
pub(crate) fn parameter_shapes<B: Backend, M: Module<B>>(module: &M) -> Vec<Vec<usize>> {
    struct Shapes(Vec<Vec<usize>>);
    impl<B: Backend> ModuleVisitor<B> for Shapes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(param.val().dims().to_vec());
        }
    }
    let mut shapes = Shapes(Vec::new());
    module.visit(&mut shapes);
    shapes.0
}

/// What [`Checkpoint::save`] writes besides the files.
pub(crate) struct CheckpointState<'a> {
    pub model: &'a ModelSpec,
    pub training: &'a TrainingConfig,
    pub step: usize,
    pub ema_updates: u64,
    pub parameter_shapes: Vec<Vec<usize>>,
    pub history: &'a [LossPoint],
}

impl Checkpoint {
    /// Writes a new step folder under `dir` with `files` (name, bytes) and the manifest, then
    /// points `latest` at it and removes every other step folder but the one `latest` named
    /// before. No existing folder is ever replaced, so a process killed at any moment leaves
    /// `latest` naming a complete checkpoint.
    pub(crate) fn save(
        dir: &Path,
        state: CheckpointState<'_>,
        files: &[(&str, Vec<u8>)],
    ) -> Result<()> {
        let previous = fs::read_to_string(dir.join("latest"))
            .ok()
            .map(|name| name.trim().to_owned());
        let name = fresh_step_name(dir, state.step);
        let staging = dir.join(format!(".{name}.staging"));
        let folder = dir.join(&name);
        let io = |path: &Path, e: std::io::Error| ModelError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(|e| io(&staging, e))?;
        }
        fs::create_dir_all(&staging).map_err(|e| io(&staging, e))?;
        let mut entries = BTreeMap::new();
        for (file, bytes) in files {
            write_atomic(&staging.join(file), bytes)?;
            entries.insert(
                file.to_string(),
                FileEntry {
                    bytes: bytes.len(),
                    sha256: sha256_hex(bytes),
                },
            );
        }
        let manifest = Manifest {
            format: FORMAT,
            model: state.model.clone(),
            training: state.training.clone(),
            step: state.step,
            ema_updates: state.ema_updates,
            parameter_shapes: state.parameter_shapes,
            history: state.history.to_vec(),
            files: entries,
        };
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| checkpoint_error(&staging, format!("cannot encode the manifest: {e}")))?;
        write_atomic(&staging.join("config.json"), &json)?;
        fs::rename(&staging, &folder).map_err(|e| io(&folder, e))?;
        write_atomic(&dir.join("latest"), name.as_bytes())?;
        prune(dir, &name, previous.as_deref());
        Ok(())
    }

    /// Opens the newest checkpoint in `dir` (following `latest`) and reads its manifest.
    ///
    /// # Errors
    /// [`ModelError::Checkpoint`] when `latest` or `config.json` is missing, unreadable or
    /// malformed, or the layout version is unknown.
    pub fn open(dir: &Path) -> Result<Self> {
        let pointer = dir.join("latest");
        let name = fs::read_to_string(&pointer).map_err(|e| {
            checkpoint_error(
                dir,
                format!("no checkpoint here (cannot read `latest`: {e})"),
            )
        })?;
        let name = name.trim();
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(checkpoint_error(
                &pointer,
                format!("`latest` names an invalid folder {name:?}"),
            ));
        }
        let folder = dir.join(name);
        let config = folder.join("config.json");
        let bytes = read_file(&config).map_err(|e| checkpoint_error(&config, e.to_string()))?;
        let manifest: Manifest = parse_manifest(&bytes)
            .map_err(|e| checkpoint_error(&config, format!("malformed manifest: {e}")))?;
        if manifest.format != FORMAT {
            return Err(checkpoint_error(
                &config,
                format!("unknown layout version {}", manifest.format),
            ));
        }
        Ok(Self { folder, manifest })
    }

    /// The model configuration.
    pub fn model(&self) -> &ModelSpec {
        &self.manifest.model
    }

    /// The training configuration it was trained with.
    pub fn training(&self) -> &TrainingConfig {
        &self.manifest.training
    }

    /// Steps trained.
    pub fn step(&self) -> usize {
        self.manifest.step
    }

    /// The loss history up to this checkpoint.
    pub fn history(&self) -> &[LossPoint] {
        &self.manifest.history
    }

    /// The step folder.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// The weights sampling uses: `best.mpk` when the run kept the lowest-validation-loss weights,
    /// else `model.mpk`.
    pub fn sampling_file(&self) -> &'static str {
        if self.manifest.files.contains_key("best.mpk") {
            "best.mpk"
        } else {
            "model.mpk"
        }
    }

    /// Whether the run kept its lowest-validation-loss weights (`best.mpk`).
    pub fn has_best(&self) -> bool {
        self.manifest.files.contains_key("best.mpk")
    }

    pub(crate) fn ema_updates(&self) -> u64 {
        self.manifest.ema_updates
    }

    /// Reads a stored file and checks its size and SHA-256 against the manifest.
    ///
    /// # Errors
    /// [`ModelError::Checkpoint`] for a missing, truncated or altered file.
    pub(crate) fn read_verified(&self, file: &str) -> Result<Vec<u8>> {
        let path = self.folder.join(file);
        let entry = self
            .manifest
            .files
            .get(file)
            .ok_or_else(|| checkpoint_error(&path, "not listed in the manifest"))?;
        let bytes = read_file(&path).map_err(|e| checkpoint_error(&path, e.to_string()))?;
        if bytes.len() != entry.bytes {
            return Err(size_mismatch(&path, bytes.len(), entry.bytes));
        }
        if sha256_hex(&bytes) != entry.sha256 {
            return Err(checkpoint_error(
                &path,
                "corrupt: SHA-256 differs from the manifest",
            ));
        }
        Ok(bytes)
    }

    /// Checks, before a model of the configuration's size is allocated, that the configuration
    /// needs no more parameters (`minimum`, a lower bound) than the manifest's shapes hold, and
    /// that those fit in weights `file` as it is on disk (4 bytes a value): a manifest edited to
    /// a huge width is an error, not an allocation of that size.
    ///
    /// # Errors
    /// [`ModelError::Checkpoint`] naming the manifest or the weights file.
    pub(crate) fn check_size(&self, minimum: u128, file: &str) -> Result<()> {
        let stored = self
            .manifest
            .parameter_shapes
            .iter()
            .map(|shape| {
                shape
                    .iter()
                    .fold(1u128, |n, &d| n.saturating_mul(d as u128))
            })
            .fold(0u128, u128::saturating_add);
        let path = self.folder.join(file);
        let on_disk = fs::metadata(&path)
            .map_err(|e| checkpoint_error(&path, e.to_string()))?
            .len();
        if let Some(entry) = self.manifest.files.get(file) {
            if entry.bytes as u64 != on_disk {
                return Err(size_mismatch(&path, on_disk as usize, entry.bytes));
            }
        }
        if stored.saturating_mul(4) > u128::from(on_disk) {
            return Err(checkpoint_error(
                &path,
                format!("the manifest's parameter shapes need {stored} values, the file holds {on_disk} bytes"),
            ));
        }
        if minimum > stored {
            return Err(checkpoint_error(
                &path,
                "the configuration does not match the stored parameter shapes",
            ));
        }
        Ok(())
    }

    /// Loads weights `file` into `module` (which must have the checkpoint's architecture), checking
    /// every parameter shape against the manifest.
    pub(crate) fn load_into<B: Backend, M: Module<B>>(
        &self,
        module: M,
        file: &str,
        device: &B::Device,
    ) -> Result<M> {
        let path = self.folder.join(file);
        let expected = parameter_shapes::<B, M>(&module);
        if expected != self.manifest.parameter_shapes {
            return Err(checkpoint_error(
                &path,
                "the configuration does not match the stored parameter shapes",
            ));
        }
        let bytes = self.read_verified(file)?;
        let record = Recorder::<B>::load::<M::Record>(&recorder(), bytes, device)
            .map_err(|e| checkpoint_error(&path, format!("cannot decode weights: {e}")))?;
        let loaded = module.load_record(record);
        if parameter_shapes::<B, M>(&loaded) != expected {
            return Err(checkpoint_error(
                &path,
                "stored weights have other shapes than the configuration",
            ));
        }
        Ok(loaded)
    }
}

/// `step-NNNNNN`, or `step-NNNNNN.K` with the first K whose folder does not exist: a step saved
/// again (a run restarted in the same folder) gets a new folder instead of replacing the one
/// `latest` may still name.
fn fresh_step_name(dir: &Path, step: usize) -> String {
    let base = format!("step-{step:06}");
    std::iter::once(base.clone())
        .chain((1..).map(|k| format!("{base}.{k}")))
        .find(|name| !dir.join(name).exists())
        .expect("an unbounded sequence of names has a free one")
}

/// Removes step folders other than `keep` and `previous` (what `latest` named before), and
/// leftover staging folders. Best effort: a failure leaves extra folders, never a broken one.
fn prune(dir: &Path, keep: &str, previous: Option<&str>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale_staging = name.starts_with(".step-") && name.ends_with(".staging");
        let old_step = name.starts_with("step-") && name != keep && Some(name.as_str()) != previous;
        if stale_staging || old_step {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Loads the weights of a diffusion-prior checkpoint for sampling: the EMA weights at the lowest
/// validation loss when the run kept them (`best.mpk`), else the last EMA weights.
///
/// # Errors
/// [`ModelError::Checkpoint`] when `dir` holds no checkpoint, another kind of model, or
/// missing/truncated/corrupt/mismatched files.
pub fn load_prior<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(DiffusionPrior<B>, DiffusionPriorConfig)> {
    let checkpoint = Checkpoint::open(dir)?;
    let ModelSpec::DiffusionPrior(config) = checkpoint.model().clone() else {
        return Err(checkpoint_error(
            dir,
            "holds a regression model, not a diffusion prior",
        ));
    };
    let file = checkpoint.sampling_file();
    checkpoint.check_size(config.minimum_parameters(), file)?;
    let fresh = config.init::<B>(device)?;
    Ok((checkpoint.load_into(fresh, file, device)?, config))
}

/// Loads a regression-baseline checkpoint.
///
/// # Errors
/// As [`load_prior`].
pub fn load_regression<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(RegressionModel<B>, RegressionConfig)> {
    let checkpoint = Checkpoint::open(dir)?;
    let ModelSpec::Regression(config) = checkpoint.model().clone() else {
        return Err(checkpoint_error(
            dir,
            "holds a diffusion prior, not a regression model",
        ));
    };
    let file = checkpoint.sampling_file();
    checkpoint.check_size(config.minimum_parameters(), file)?;
    let fresh = config.init::<B>(device)?;
    Ok((checkpoint.load_into(fresh, file, device)?, config))
}
