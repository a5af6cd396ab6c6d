//! `distillation`: knowledge distillation from a teacher's scores.

use serde::{Deserialize, Serialize};
use stoker::burn::tensor::activation::{log_softmax, softmax};
use stoker::prelude::*;

use crate::cross_entropy::{cross_entropy, labels};
use stoker::names::{prediction as default_pred, target as default_target};

fn default_temperature() -> f64 {
    4.0
}

fn half() -> f64 {
    0.5
}

fn default_teacher() -> String {
    "teacher_logits".into()
}

/// Knowledge distillation (Hinton et al., 2015): alpha x T^2 x KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) x cross entropy with the labels; the teacher's scores come from the model output or the batch.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "distillation")]
pub struct DistillationSpec {
    /// Softening temperature T.
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Weight of the soft (teacher) term; the hard (label) term gets 1 - alpha.
    #[serde(default = "half")]
    pub alpha: f64,
    /// The teacher's scores [batch, classes]: a model output, or else a batch tensor.
    #[serde(default = "default_teacher")]
    pub teacher: String,
    /// The student's scores.
    #[serde(default = "default_pred")]
    pub pred: String,
    /// The batch tensor holding the integer labels.
    #[serde(default = "default_target")]
    pub target: String,
}

struct Distillation(DistillationSpec);

impl Loss for Distillation {
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
        let s = &self.0;
        let student = output.float::<2>(&s.pred)?;
        let teacher = if output.contains(&s.teacher) {
            output.float::<2>(&s.teacher)?
        } else {
            batch.float::<2>(&s.teacher)?
        };
        if teacher.dims() != student.dims() {
            return Err(StokerError::msg(format!(
                "teacher `{}` has shape {:?}, student `{}` {:?}",
                s.teacher,
                teacher.dims(),
                s.pred,
                student.dims()
            )));
        }
        let [n, _] = student.dims();
        let t = s.temperature;
        let teacher = teacher.detach().div_scalar(t);
        let p_teacher = softmax(teacher.clone(), 1);
        let kl = (p_teacher
            * (log_softmax(teacher, 1) - log_softmax(student.clone().div_scalar(t), 1)))
        .sum()
        .div_scalar(n as f64);
        let soft = kl.mul_scalar(t * t);
        let hard = cross_entropy(student, labels(batch, &s.target)?, None, i64::MIN, 0.0)?;
        let total = soft.clone().mul_scalar(s.alpha) + hard.clone().mul_scalar(1.0 - s.alpha);
        Ok(LossValue {
            total,
            terms: vec![("soft".into(), soft), ("hard".into(), hard)],
        })
    }
}

impl LossSpec for DistillationSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(BuildError::at("temperature", "must be positive"));
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(BuildError::at("alpha", "must be in [0, 1]"));
        }
        ctx.data()?.require_kind(
            "target",
            &self.target,
            ElementKind::Int,
            "distillation's hard term needs integer class labels",
        )?;
        Ok(Box::new(Distillation(self.clone())))
    }
}
