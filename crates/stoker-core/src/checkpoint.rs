//! Checkpoint files: one safetensors file holding the model weights (PyTorch layout, loadable
//! with `safetensors.torch.load_file`), the optimizer state, and the training state as JSON
//! metadata. Written atomically.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};

use crate::error::{Result, StokerError};
use crate::fs::write_atomic;

/// The metadata key that marks a stoker checkpoint and holds its format version.
pub const FORMAT_KEY: &str = "stoker.format";
/// The current checkpoint format.
pub const FORMAT: &str = "stoker-checkpoint-1";
/// The metadata key of the training state (JSON).
pub const STATE_KEY: &str = "stoker.state";
/// The tensor that holds the optimizer state (burn-optim's burnpack bytes, as `u8`).
pub const OPTIMIZER_TENSOR: &str = "__stoker_optimizer__";

/// The training state a checkpoint records (its `stoker.state` metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// The epoch the next batch belongs to (0-based).
    pub epoch: usize,
    /// Training batches of `epoch` already done.
    pub batch: usize,
    /// Optimizer steps taken.
    pub global_step: usize,
    /// `environment.seed` of the run.
    pub seed: u64,
    /// The resolved config of the run (YAML).
    pub config: String,
    /// The latest value of every logged metric.
    pub metrics: BTreeMap<String, f64>,
    /// Everything else a resume needs; absent from weights-only checkpoints.
    pub resume: Option<ResumeState>,
}

/// The part of a checkpoint that only resuming needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumeState {
    /// Each parameter's id (its optimizer state's key), by path.
    pub param_ids: BTreeMap<String, u64>,
    /// The scheduler's state.
    pub scheduler: serde_json::Value,
    /// The training metrics' sums so far in `epoch`, in config order.
    pub train_metrics: Vec<serde_json::Value>,
    /// Each configured callback's name and state, in the order the loop runs them.
    pub callbacks: Vec<(String, serde_json::Value)>,
    /// Each callback the loop added itself (the implicit `ModelCheckpoint`, the `Timer` of
    /// `max_time`), by name.
    #[serde(default)]
    pub implicit_callbacks: Vec<(String, serde_json::Value)>,
    /// Each logger's name and state.
    pub loggers: Vec<(String, serde_json::Value)>,
    /// The best checkpoint written so far, if any.
    pub best_checkpoint: Option<PathBuf>,
    /// Training time spent before this checkpoint, in seconds.
    pub elapsed_seconds: f64,
    /// The training step's own state (a trainer plugin's adaptive weights, say).
    #[serde(default)]
    pub step: serde_json::Value,
    /// The precision's state (a loss scaler's scale and counters).
    #[serde(default)]
    pub precision: serde_json::Value,
    /// The number of processes that trained (data-parallel): a resume continues each
    /// process's shard of the epoch, so it needs as many.
    #[serde(default = "one_process")]
    pub world_size: usize,
}

fn one_process() -> usize {
    1
}

impl CheckpointState {
    /// Reads the state out of a loaded checkpoint, naming `path` when it does not fit.
    pub fn from_checkpoint(path: &Path, checkpoint: &Checkpoint) -> Result<CheckpointState> {
        serde_json::from_value(checkpoint.state.clone())
            .map_err(|e| bad_file(path, format!("its training state does not parse: {e}")))
    }
}

/// What a checkpoint file holds.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The model weights alone, as a safetensors file (what `DynModel::load_safetensors` takes).
    pub weights: Vec<u8>,
    /// The optimizer state, if the checkpoint has one (not for weights-only checkpoints).
    pub optimizer: Option<Vec<u8>>,
    /// The training state.
    pub state: serde_json::Value,
}

fn bad_file(path: &Path, what: impl std::fmt::Display) -> StokerError {
    StokerError::msg(format!(
        "{}: not a readable stoker checkpoint ({what}); pass a file from a run's `checkpoints/` directory",
        path.display()
    ))
}

/// Writes a checkpoint to `path` atomically.
pub fn save(
    path: &Path,
    weights: &[u8],
    optimizer: Option<&[u8]>,
    state: &serde_json::Value,
) -> Result<()> {
    write_atomic(path, &to_bytes(weights, optimizer, state)?)
}

/// A checkpoint file's bytes.
pub fn to_bytes(
    weights: &[u8],
    optimizer: Option<&[u8]>,
    state: &serde_json::Value,
) -> Result<Vec<u8>> {
    let model = SafeTensors::deserialize(weights)
        .map_err(|e| StokerError::msg(format!("the model's weights did not serialize: {e}")))?;
    let mut views: Vec<(String, TensorView<'_>)> = model.tensors().into_iter().collect();
    if let Some(bytes) = optimizer {
        let view = TensorView::new(Dtype::U8, vec![bytes.len()], bytes)
            .map_err(|e| StokerError::msg(format!("the optimizer state did not serialize: {e}")))?;
        views.push((OPTIMIZER_TENSOR.to_string(), view));
    }
    let metadata = HashMap::from([
        (FORMAT_KEY.to_string(), FORMAT.to_string()),
        (STATE_KEY.to_string(), state.to_string()),
    ]);
    safetensors::serialize(views, Some(metadata))
        .map_err(|e| StokerError::msg(format!("the checkpoint did not serialize: {e}")))
}

/// Reads a checkpoint written by [`save`].
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| StokerError::io(path, e))?;
    let (_, metadata) = SafeTensors::read_metadata(&bytes).map_err(|e| bad_file(path, e))?;
    let meta = metadata.metadata().clone().unwrap_or_default();
    match meta.get(FORMAT_KEY).map(String::as_str) {
        Some(FORMAT) => {}
        Some(other) => {
            return Err(bad_file(
                path,
                format!("format `{other}`, expected `{FORMAT}`"),
            ));
        }
        None => return Err(bad_file(path, "no stoker metadata")),
    }
    let state: serde_json::Value = serde_json::from_str(
        meta.get(STATE_KEY)
            .ok_or_else(|| bad_file(path, "no training state"))?,
    )
    .map_err(|e| bad_file(path, e))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| bad_file(path, e))?;
    let mut optimizer = None;
    let mut views = Vec::new();
    for (name, view) in file.tensors() {
        if name == OPTIMIZER_TENSOR {
            optimizer = Some(view.data().to_vec());
        } else {
            views.push((name, view));
        }
    }
    let weights = safetensors::serialize(views, None::<HashMap<String, String>>)
        .map_err(|e| bad_file(path, e))?;
    Ok(Checkpoint {
        weights,
        optimizer,
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A weights-only safetensors file from raw f32 tensors.
    fn weights_from_f32(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Result<Vec<u8>> {
        let bytes: Vec<Vec<u8>> = tensors
            .iter()
            .map(|(_, _, data)| data.iter().flat_map(|v| v.to_le_bytes()).collect())
            .collect();
        let views = tensors
            .iter()
            .zip(&bytes)
            .map(|((name, shape, _), data)| {
                TensorView::new(Dtype::F32, shape.clone(), data).map(|v| (name.to_string(), v))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| StokerError::msg(e.to_string()))?;
        safetensors::serialize(views, None::<HashMap<String, String>>)
            .map_err(|e| StokerError::msg(e.to_string()))
    }

    #[test]
    fn round_trips_weights_optimizer_and_state() {
        let dir = std::env::temp_dir().join(format!("stoker-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("last.safetensors");
        let weights =
            weights_from_f32(&[("layer.weight", vec![2, 2], vec![1.0, 2.0, 3.0, 4.0])]).unwrap();
        let state = serde_json::json!({"epoch": 3, "global_step": 120});
        save(&path, &weights, Some(&[7, 8, 9]), &state).unwrap();

        let loaded = load(&path).unwrap();
        assert_eq!(loaded.state, state);
        assert_eq!(loaded.optimizer.as_deref(), Some(&[7u8, 8, 9][..]));
        let tensors = SafeTensors::deserialize(&loaded.weights).unwrap();
        assert_eq!(tensors.names(), vec!["layer.weight"]);

        std::fs::write(dir.join("junk.safetensors"), b"not a checkpoint").unwrap();
        let error = load(&dir.join("junk.safetensors")).unwrap_err().to_string();
        assert!(
            error.contains("not a readable stoker checkpoint"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
