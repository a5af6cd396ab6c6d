//! The default watch on the training loss: a count of non-finite losses kept on the device
//! (no read per step), read where rows are logged and before any checkpoint is written, so that
//! a NaN stops the run instead of training on and saving NaN weights. `detect_anomaly: true`
//! checks every step exactly instead (see [`anomaly`](crate::anomaly)).

use stoker::burn::tensor::{Int, Tensor};
use stoker::error::{Result, StokerError};

/// Non-finite losses since the last read, counted on the device.
#[derive(Default)]
pub struct LossWatch {
    count: Option<Tensor<1, Int>>,
    /// The optimizer step of the last read that found none.
    checked_step: usize,
    /// Whether a read found one: the run is stopping.
    tripped: bool,
}

impl LossWatch {
    /// A watch that starts at optimizer step `step`.
    pub fn new(step: usize) -> Self {
        LossWatch {
            count: None,
            checked_step: step,
            tripped: false,
        }
    }

    /// Counts `loss` if it is NaN or infinite, on the device.
    pub fn record(&mut self, loss: &Tensor<1>) {
        let bad = loss.clone().is_finite().bool_not().int().sum();
        self.count = Some(match self.count.take() {
            Some(count) => count + bad,
            None => bad,
        });
    }

    /// Whether a read found a non-finite loss.
    pub fn tripped(&self) -> bool {
        self.tripped
    }

    /// Reads the count (one device read). `Err` names the optimizer steps it happened between
    /// when a loss since the last read was not finite; `step` is the current optimizer step.
    pub fn check(
        &mut self,
        epoch: usize,
        step: usize,
        last_checkpoint: Option<&str>,
    ) -> Result<()> {
        let Some(count) = self.count.take() else {
            return Ok(());
        };
        if count.into_scalar::<i64>() == 0 {
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
