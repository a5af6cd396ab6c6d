//! The default watch on the training loss: the sum of the losses since the last read, kept on
//! the device (one addition per step, no read), read where rows are logged and before any
//! checkpoint is written, so that a NaN stops the run instead of training on and saving NaN
//! weights; and the weights a checkpoint is about to hold, checked on the host.
//! `detect_anomaly: true` checks every step exactly instead (see [`anomaly`](crate::anomaly)).

use stoker::burn::tensor::Tensor;
use stoker::error::{Result, StokerError};

/// The losses since the last read, summed on the device: the sum is NaN or infinite exactly
/// when one of them was (or when finite losses summed beyond f32's range, 3.4e38: divergence
/// all the same).
#[derive(Default)]
pub struct LossWatch {
    sum: Option<Tensor<1>>,
    /// The optimizer step of the last read that found none.
    checked_step: usize,
    /// Whether a read found one: the run is stopping.
    tripped: bool,
    /// The checkpoint the run resumed from, finite by this watch: named when no checkpoint was
    /// written since.
    resumed_from: Option<String>,
}

impl LossWatch {
    /// A watch that starts at optimizer step `step`.
    pub fn new(step: usize) -> Self {
        LossWatch {
            sum: None,
            checked_step: step,
            tripped: false,
            resumed_from: None,
        }
    }

    /// A watch for a run resumed at optimizer step `step` from the checkpoint `path`.
    pub fn resumed(step: usize, path: String) -> Self {
        LossWatch {
            resumed_from: Some(path),
            ..LossWatch::new(step)
        }
    }

    /// Adds `loss` to the sum, on the device (detached: no graph is kept).
    pub fn record(&mut self, loss: &Tensor<1>) {
        let loss = loss.clone().detach();
        self.sum = Some(match self.sum.take() {
            Some(sum) => sum + loss,
            None => loss,
        });
    }

    /// Which finite checkpoint the run can go back to, for the error: the last one written
    /// (`last_checkpoint`), else the one it resumed from.
    fn kept(&self, last_checkpoint: Option<&str>) -> String {
        match last_checkpoint.or(self.resumed_from.as_deref()) {
            Some(path) => format!("the last checkpoint, written before it, is {path}"),
            None => "no checkpoint was written before it".into(),
        }
    }

    /// Whether a read found a non-finite loss (or [`weights`](Self::weights) non-finite weights).
    pub fn tripped(&self) -> bool {
        self.tripped
    }

    /// Refuses weights (a safetensors file's bytes, read to the host for a checkpoint) that hold
    /// a NaN or an infinity although every loss was finite (a gradient that overflowed, a
    /// square root at 0): the run stops and the checkpoint is not written.
    pub fn weights(
        &mut self,
        weights: &[u8],
        epoch: usize,
        step: usize,
        last_checkpoint: Option<&str>,
    ) -> Result<()> {
        let Some(name) = first_non_finite_tensor(weights) else {
            return Ok(());
        };
        self.tripped = true;
        let kept = self.kept(last_checkpoint);
        Err(StokerError::msg(format!(
            "parameter `{name}` became NaN or infinite by step {step} (epoch {epoch}) although the training loss stayed finite: training stopped and no checkpoint of the non-finite weights was written; {kept}\n hint: clip gradients (gradient_clip_val), lower the learning rate, or set trainer.args.detect_anomaly: true to stop at the step whose gradient is not finite"
        )))
    }

    /// Reads the sum (one device read). `Err` names the optimizer steps it happened between
    /// when a loss since the last read was not finite; `step` is the current optimizer step.
    pub fn check(
        &mut self,
        epoch: usize,
        step: usize,
        last_checkpoint: Option<&str>,
    ) -> Result<()> {
        let Some(sum) = self.sum.take() else {
            return Ok(());
        };
        if sum.into_scalar::<f64>().is_finite() {
            self.checked_step = step;
            return Ok(());
        }
        self.tripped = true;
        let steps = if step <= self.checked_step + 1 {
            format!("at step {}", self.checked_step + 1)
        } else {
            format!("between steps {} and {step}", self.checked_step + 1)
        };
        let kept = self.kept(last_checkpoint);
        Err(StokerError::msg(format!(
            "the training loss became NaN or infinite {steps} (epoch {epoch}): training stopped and no checkpoint of the non-finite weights was written; {kept}\n hint: lower the learning rate, clip gradients (gradient_clip_val), check the data for NaN (data modules refuse it unless allow_non_finite), or set trainer.args.detect_anomaly: true to stop at the exact step and name the parameter"
        )))
    }
}

/// The first tensor of a safetensors file with a NaN or an infinite value (float32, float16 and
/// bfloat16 tensors are read; others are skipped).
fn first_non_finite_tensor(bytes: &[u8]) -> Option<String> {
    let file = safetensors::SafeTensors::deserialize(bytes).ok()?;
    let mut names = file.names();
    names.sort();
    names.into_iter().find_map(|name| {
        let view = file.tensor(name).ok()?;
        let data = view.data();
        let finite = match view.dtype() {
            safetensors::Dtype::F32 => data
                .chunks_exact(4)
                .all(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite()),
            // Exponent bits all ones: infinity or NaN.
            safetensors::Dtype::F16 => data
                .chunks_exact(2)
                .all(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7c00 != 0x7c00),
            safetensors::Dtype::BF16 => data
                .chunks_exact(2)
                .all(|b| u16::from_le_bytes([b[0], b[1]]) & 0x7f80 != 0x7f80),
            _ => true,
        };
        (!finite).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use stoker::burn::tensor::{Device, TensorData};

    fn loss(value: f32) -> Tensor<1> {
        Tensor::from_data(TensorData::new(vec![value], [1]), &Device::flex())
    }

    fn safetensors_of(tensors: &[(&str, safetensors::Dtype, Vec<u8>, usize)]) -> Vec<u8> {
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
            .iter()
            .map(|(name, dtype, data, n)| {
                let view = safetensors::tensor::TensorView::new(*dtype, vec![*n], data).unwrap();
                (name.to_string(), view)
            })
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    #[test]
    fn finds_the_first_tensor_with_a_non_finite_value() {
        let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let f16 = safetensors::Dtype::F16;
        let bf16 = safetensors::Dtype::BF16;
        let f32 = safetensors::Dtype::F32;
        let fine = safetensors_of(&[
            ("a.weight", f32, f32s(&[1.0, -2.0, 3.4e38]), 3),
            ("b.weight", f16, vec![0x00, 0x3c, 0xff, 0x7b], 2), // 1.0, 65504 (max)
            ("c.weight", bf16, vec![0x80, 0x3f], 1),            // 1.0
        ]);
        assert_eq!(first_non_finite_tensor(&fine), None);
        let bad = safetensors_of(&[
            ("a.weight", f32, f32s(&[1.0, 2.0]), 2),
            ("b.bias", f32, f32s(&[0.0, f32::NAN]), 2),
        ]);
        assert_eq!(first_non_finite_tensor(&bad).as_deref(), Some("b.bias"));
        let half_inf = safetensors_of(&[("h", f16, vec![0x00, 0x7c], 1)]);
        assert_eq!(first_non_finite_tensor(&half_inf).as_deref(), Some("h"));
        let bf16_nan = safetensors_of(&[("g", bf16, vec![0xc0, 0x7f], 1)]);
        assert_eq!(first_non_finite_tensor(&bf16_nan).as_deref(), Some("g"));

        let mut watch = LossWatch::resumed(7, "ck/epoch=1.safetensors".into());
        let text = watch.weights(&bad, 2, 9, None).unwrap_err().to_string();
        assert!(text.starts_with("parameter `b.bias` became NaN or infinite by step 9 (epoch 2) although the training loss stayed finite"), "{text}");
        assert!(
            text.contains("the last checkpoint, written before it, is ck/epoch=1.safetensors"),
            "{text}"
        );
        assert!(watch.tripped());
    }

    #[test]
    fn names_the_steps_between_reads_and_stays_tripped() {
        let mut watch = LossWatch::new(10);
        assert!(watch.check(0, 10, None).is_ok(), "nothing recorded");
        for step in 11..=14 {
            watch.record(&loss(0.5));
            assert!(watch.check(1, step, None).is_ok());
        }
        watch.record(&loss(0.5));
        watch.record(&loss(f32::NAN));
        watch.record(&loss(0.25));
        let error = watch.check(1, 17, Some("ck/last.safetensors")).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with(
                "the training loss became NaN or infinite between steps 15 and 17 (epoch 1)"
            ),
            "{text}"
        );
        assert!(
            text.contains("the last checkpoint, written before it, is ck/last.safetensors"),
            "{text}"
        );
        assert!(watch.tripped());

        let mut watch = LossWatch::new(0);
        watch.record(&loss(f32::INFINITY));
        let text = watch.check(0, 1, None).unwrap_err().to_string();
        assert!(
            text.contains("at step 1 (epoch 0)")
                && text.contains("no checkpoint was written before it"),
            "{text}"
        );
    }
}
