//! `cross_entropy` and `label_smoothing_cross_entropy`: softmax cross entropy on class scores and
//! integer labels or class probabilities (soft labels, mixup, cutmix), with class weights, an
//! ignored label and label smoothing as PyTorch has them.

use serde::{Deserialize, Serialize};
use stoker::burn::tensor::activation::log_softmax;
use stoker::burn::tensor::{Int, TensorData};
use stoker::prelude::*;
pub use stoker::targets::{ClassTargets, class_targets};

use stoker::names::{prediction as default_pred, target as default_target};

/// Integer labels as `[batch]`, for losses that need one class per sample.
pub fn labels(batch: &Batch, name: &str) -> Result<Tensor<1, Int>> {
    match class_targets(batch, name)? {
        ClassTargets::Labels(labels) => Ok(labels),
        ClassTargets::Probabilities(_) => Err(StokerError::msg(format!(
            "`{name}` holds class probabilities (from the data, or mixed by mixup or cutmix); this loss needs integer labels"
        ))),
    }
}

/// Checks the data has class targets under `name`: integer labels, or float probabilities over
/// at least two classes per sample.
pub fn check_class_target(
    data: &DataInfo,
    name: &str,
    loss: &str,
) -> std::result::Result<(), BuildError> {
    if data.tensor(name).is_some_and(|t| {
        t.kind == ElementKind::Float && matches!(t.sample_shape[..], [c] if c >= 2)
    }) {
        return Ok(());
    }
    data.require_kind(
        "target",
        name,
        ElementKind::Int,
        &format!("{loss} needs integer class labels or class probabilities [classes]"),
    )?;
    Ok(())
}

/// One value per class as a `[classes]` tensor on `device`; `what` names them in the error when
/// their count is not `classes`.
pub fn class_weights(
    values: &[f32],
    classes: usize,
    device: &Device,
    what: &str,
) -> Result<Tensor<1>> {
    if values.len() != classes {
        return Err(StokerError::msg(format!(
            "{} {what} for {classes} classes",
            values.len()
        )));
    }
    Ok(Tensor::from_data(
        TensorData::new(values.to_vec(), [classes]),
        device,
    ))
}

/// The scores' and the class probabilities' shapes must agree.
pub fn check_probabilities(logits: &Tensor<2>, target: &Tensor<2>) -> Result<()> {
    if target.dims() != logits.dims() {
        return Err(StokerError::msg(format!(
            "scores of shape {:?} but class probabilities of shape {:?}",
            logits.dims(),
            target.dims()
        )));
    }
    Ok(())
}

/// Cross entropy of `logits` [n, c] against class probabilities `target` [n, c] as PyTorch
/// computes it: the target mixed with the uniform distribution by `smoothing`, each class's term
/// weighted by `weight`, the mean over samples.
pub fn soft_cross_entropy(
    logits: Tensor<2>,
    target: Tensor<2>,
    weight: Option<&[f32]>,
    smoothing: f64,
) -> Result<Tensor<1>> {
    let [n, classes] = logits.dims();
    check_probabilities(&logits, &target)?;
    let target = if smoothing > 0.0 {
        target
            .mul_scalar(1.0 - smoothing)
            .add_scalar(smoothing / classes as f64)
    } else {
        target
    };
    let device = logits.device();
    let mut terms = log_softmax(logits, 1) * target;
    if let Some(w) = weight {
        terms = terms * class_weights(w, classes, &device, "class weights")?.reshape([1, classes]);
    }
    Ok(terms.sum().neg().div_scalar(n as f64))
}

fn default_ignore_index() -> i64 {
    -100
}

/// Softmax cross entropy between class scores [batch, classes] and integer labels [batch] or class probabilities [batch, classes], as torch.nn.functional.cross_entropy: class weights, ignore_index, label_smoothing.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "cross_entropy")]
pub struct CrossEntropySpec {
    /// A weight per class (the weighted mean divides by the weights of the labels).
    #[serde(default)]
    pub weight: Option<Vec<f64>>,
    /// Samples with this label count for nothing.
    #[serde(default = "default_ignore_index")]
    pub ignore_index: i64,
    /// Mix the one-hot target with the uniform distribution by this much.
    #[serde(default)]
    pub label_smoothing: f64,
    /// The model output holding the class scores (logits).
    #[serde(default = "default_pred")]
    pub pred: String,
    /// The batch tensor holding the class targets: integer labels or class probabilities.
    #[serde(default = "default_target")]
    pub target: String,
}

fn default_smoothing() -> f64 {
    0.1
}

/// Cross entropy against labels smoothed towards the uniform distribution: (1 - smoothing) x the negative log-likelihood + smoothing x the mean negative log-probability over classes (the bearing seed's LabelSmoothingCrossEntropy).
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "label_smoothing_cross_entropy")]
pub struct LabelSmoothingSpec {
    /// How much of the target is uniform.
    #[serde(default = "default_smoothing")]
    pub smoothing: f64,
    /// The model output holding the class scores (logits).
    #[serde(default = "default_pred")]
    pub pred: String,
    /// The batch tensor holding the class targets: integer labels or class probabilities.
    #[serde(default = "default_target")]
    pub target: String,
}

/// The built loss (both names).
pub struct CrossEntropy {
    weight: Option<Vec<f32>>,
    ignore_index: i64,
    smoothing: f64,
    pred: String,
    target: String,
}

/// Cross entropy of `logits` [n, c] against `labels` [n] as PyTorch computes it (mean reduction).
pub fn cross_entropy(
    logits: Tensor<2>,
    labels: Tensor<1, Int>,
    weight: Option<&[f32]>,
    ignore_index: i64,
    smoothing: f64,
) -> Result<Tensor<1>> {
    let [n, classes] = logits.dims();
    if labels.dims() != [n] {
        return Err(StokerError::msg(format!(
            "{n} rows of scores but labels of shape {:?}",
            labels.dims()
        )));
    }
    let class_weight = weight
        .map(|w| class_weights(w, classes, &logits.device(), "class weights"))
        .transpose()?;
    let keep = labels.clone().not_equal_elem(ignore_index);
    let safe = labels.mask_fill(keep.clone().bool_not(), 0);
    let keep = keep.float();
    let log_probs = log_softmax(logits, 1);
    let picked = log_probs
        .clone()
        .gather(1, safe.clone().reshape([n, 1]))
        .reshape([n]);
    let label_weight = match &class_weight {
        Some(w) => w.clone().select(0, safe) * keep.clone(),
        None => keep.clone(),
    };
    let denominator = label_weight.clone().sum();
    let nll = (picked * label_weight).sum().neg() / denominator.clone();
    if smoothing == 0.0 {
        return Ok(nll);
    }
    let per_class = match class_weight {
        Some(w) => log_probs * w.reshape([1, classes]),
        None => log_probs,
    };
    let smooth = (per_class.sum_dim(1).reshape([n]) * keep)
        .sum()
        .neg()
        .div_scalar(classes as f64)
        / denominator;
    Ok(nll.mul_scalar(1.0 - smoothing) + smooth.mul_scalar(smoothing))
}

impl Loss for CrossEntropy {
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
        let logits = output.float::<2>(&self.pred)?;
        let value = match class_targets(batch, &self.target)? {
            ClassTargets::Labels(labels) => cross_entropy(
                logits,
                labels,
                self.weight.as_deref(),
                self.ignore_index,
                self.smoothing,
            )?,
            ClassTargets::Probabilities(p) => {
                soft_cross_entropy(logits, p, self.weight.as_deref(), self.smoothing)?
            }
        };
        Ok(LossValue::single(value))
    }
}

fn check_smoothing(arg: &str, value: f64) -> std::result::Result<(), BuildError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(BuildError::at(arg, format!("{value} is not in [0, 1]")))
    }
}

impl LossSpec for CrossEntropySpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        check_class_target(ctx.data()?, &self.target, "cross_entropy")?;
        check_smoothing("label_smoothing", self.label_smoothing)?;
        if let Some(w) = &self.weight
            && let Some(i) = w.iter().position(|v| !(v.is_finite() && *v >= 0.0))
        {
            return Err(BuildError::at(
                format!("weight[{i}]"),
                "class weights must be >= 0",
            ));
        }
        Ok(Box::new(CrossEntropy {
            weight: self
                .weight
                .as_ref()
                .map(|w| w.iter().map(|&v| v as f32).collect()),
            ignore_index: self.ignore_index,
            smoothing: self.label_smoothing,
            pred: self.pred.clone(),
            target: self.target.clone(),
        }))
    }
}

impl LossSpec for LabelSmoothingSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        check_class_target(ctx.data()?, &self.target, "label_smoothing_cross_entropy")?;
        check_smoothing("smoothing", self.smoothing)?;
        Ok(Box::new(CrossEntropy {
            weight: None,
            ignore_index: i64::MIN,
            smoothing: self.smoothing,
            pred: self.pred.clone(),
            target: self.target.clone(),
        }))
    }
}
