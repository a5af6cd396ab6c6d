//! The default watch on the training loss: the sum of the losses since the last read, kept on
//! the device (one addition per step, no read), read where rows are logged and before any checkpoint is written, so that
//! a NaN stops the run instead of training on and saving NaN weights. `detect_anomaly: true`
//! checks every step exactly instead (see [`anomaly`](crate::anomaly)).

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
}

impl LossWatch {
    /// A watch that starts at optimizer step `step`.
    pub fn new(step: usize) -> Self {
        LossWatch {
            sum: None,
            checked_step: step,
            tripped: false,
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

    /// Whether a read found a non-finite loss.
    pub fn tripped(&self) -> bool {
        self.tripped
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
        let kept = match last_checkpoint {
            Some(path) => format!("the last checkpoint, written before it, is {path}"),
            None => "no checkpoint was written before it".into(),
        };
        Err(StokerError::msg(format!(
            "the training loss became NaN or infinite {steps} (epoch {epoch}): training stopped and no checkpoint of the non-finite weights was written; {kept}\n hint: lower the learning rate, clip gradients (gradient_clip_val), check the data for NaN (data modules refuse it unless allow_non_finite), or set trainer.args.detect_anomaly: true to stop at the exact step and name the parameter"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stoker::burn::tensor::{Device, TensorData};

    fn loss(value: f32) -> Tensor<1> {
        Tensor::from_data(TensorData::new(vec![value], [1]), &Device::flex())
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
