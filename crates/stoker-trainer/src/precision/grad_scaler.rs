//! The loss scaler of `16-mixed`: torch.amp.GradScaler's rule, defaults and checkpoint keys.
//!
//! float16's smallest normal value is 6e-5, below which small gradients vanish; so the loss is
//! multiplied by a large scale before the backward pass and the gradients divided by it before
//! clipping and the optimizer. A step whose gradients overflowed (an inf or a NaN) is skipped
//! and the scale backs off; after `growth_interval` good steps in a row it grows again.

use serde::{Deserialize, Serialize};

use super::mixed::Fp16MixedSpec;
use stoker::burn::optim::GradientsParams;
use stoker::burn::tensor::Tensor;
use stoker::error::{Result, StokerError};
use stoker::model::DynModel;

/// A running loss scaler.
#[derive(Debug, Clone)]
pub struct GradScaler {
    args: Fp16MixedSpec,
    /// The scale, a float32 as torch keeps it.
    scale: f32,
    /// Steps without overflow since the scale last changed.
    growth_tracker: u32,
}

/// What a checkpoint holds of the scaler: torch's `GradScaler.state_dict()` keys.
#[derive(Debug, Serialize, Deserialize)]
struct ScalerState {
    scale: f32,
    growth_factor: f64,
    backoff_factor: f64,
    growth_interval: u32,
    #[serde(rename = "_growth_tracker")]
    growth_tracker: u32,
}

impl GradScaler {
    /// A scaler at its initial scale.
    pub fn new(args: Fp16MixedSpec) -> Self {
        GradScaler {
            scale: args.init_scale as f32,
            growth_tracker: 0,
            args,
        }
    }

    /// The current scale.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// `loss` multiplied by the scale.
    pub fn scale_loss(&self, loss: Tensor<1>) -> Tensor<1> {
        loss.mul_scalar(self.scale)
    }

    /// The gradients divided by the scale (multiplied by its float32 reciprocal, as torch), or
    /// `None` when one of them holds an inf or a NaN. One value is read from the device.
    pub fn unscale(
        &self,
        model: &dyn DynModel,
        grads: GradientsParams,
    ) -> Result<Option<GradientsParams>> {
        let probes: Vec<Tensor<1>> = model
            .gradients_flat(&grads)
            .into_iter()
            // 0 * x is 0 for every finite x and NaN for an inf or a NaN.
            .map(|(_, g)| g.mul_scalar(0.0).sum())
            .collect();
        if probes.is_empty() {
            return Ok(Some(grads));
        }
        let probe = Tensor::cat(probes, 0).sum().into_scalar::<f64>();
        if !probe.is_finite() {
            return Ok(None);
        }
        let inverse = (1.0 / self.scale as f64) as f32;
        Ok(Some(
            model.map_gradients(grads, &mut |_, g| g.mul_scalar(inverse)),
        ))
    }

    /// torch's `_amp_update_scale_` after a step whose gradients overflowed (`found_inf`) or not.
    pub fn update(&mut self, found_inf: bool) {
        if found_inf {
            self.scale = (self.scale as f64 * self.args.backoff_factor) as f32;
            self.growth_tracker = 0;
            return;
        }
        let successful = self.growth_tracker + 1;
        if successful == self.args.growth_interval {
            let grown = (self.scale as f64 * self.args.growth_factor) as f32;
            if grown.is_finite() {
                self.scale = grown;
            }
            self.growth_tracker = 0;
        } else {
            self.growth_tracker = successful;
        }
    }

    /// The checkpoint's copy.
    pub fn state(&self) -> serde_json::Value {
        serde_json::to_value(ScalerState {
            scale: self.scale,
            growth_factor: self.args.growth_factor,
            backoff_factor: self.args.backoff_factor,
            growth_interval: self.args.growth_interval,
            growth_tracker: self.growth_tracker,
        })
        .expect("the scaler's state is plain numbers")
    }

    /// Restores [`state`](Self::state): the scale and the count of good steps (the factors and
    /// the interval are the config's).
    pub fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        if state.is_null() {
            // A checkpoint of a run in another precision (resumed with --allow-config-change).
            stoker::console::note(format!(
                "the checkpoint has no loss scaler state (written in another precision): the scaler starts at {}",
                self.scale
            ));
            return Ok(());
        }
        let state: ScalerState = serde_json::from_value(state.clone()).map_err(|e| {
            StokerError::msg(format!(
                "the checkpoint's loss scaler state is not a GradScaler's ({e}); was it written by a run with another `trainer.args.precision`?"
            ))
        })?;
        self.scale = state.scale;
        self.growth_tracker = state.growth_tracker;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_model::{gradients, values};
    use serde_json::Value;

    fn fixture() -> Value {
        let text = include_str!("../../tests/fixtures/grad_scaler.json");
        serde_json::from_str(text).unwrap()
    }

    fn f32s(value: &Value) -> Vec<f32> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect()
    }

    #[test]
    fn the_scale_and_the_unscaled_gradients_follow_torchs_grad_scaler() {
        let fixture = fixture();
        let custom = &fixture["custom"];
        let spec: Fp16MixedSpec = serde_json::from_value(custom["args"].clone()).unwrap();
        let mut scaler = GradScaler::new(spec);
        let c = f32s(&fixture["c"]);
        for (step, row) in custom["steps"].as_array().unwrap().iter().enumerate() {
            assert_eq!(
                scaler.scale(),
                row["scale"].as_f64().unwrap() as f32,
                "step {step}"
            );
            // d(scale * sum(p * c))/dp = scale * c, in float32 as torch computes it.
            let mut raw: Vec<f32> = c.iter().map(|v| v * scaler.scale()).collect();
            if row["overflow"].as_bool().unwrap() {
                raw[1] = f32::INFINITY;
            }
            let (model, grads) = gradients(raw.try_into().unwrap());
            let unscaled = scaler.unscale(model.as_ref(), grads).unwrap();
            assert_eq!(
                unscaled.is_some(),
                row["stepped"].as_bool().unwrap(),
                "step {step}"
            );
            if let Some(grads) = unscaled {
                let expected = f32s(&row["unscaled"]);
                assert_eq!(
                    values(model.as_ref(), &grads, "a.weight"),
                    expected,
                    "step {step}"
                );
            }
            scaler.update(!row["stepped"].as_bool().unwrap());
            assert_eq!(
                scaler.scale(),
                row["scale_after"].as_f64().unwrap() as f32,
                "step {step}"
            );
            let tracker = row["growth_tracker"].as_u64().unwrap() as u32;
            assert_eq!(scaler.growth_tracker, tracker, "step {step}");
        }
    }

    #[test]
    fn torchs_defaults_grow_the_scale_every_2000_good_steps() {
        let fixture = fixture();
        let defaults = &fixture["defaults"];
        let overflow: Vec<u64> = defaults["overflow"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let mut scaler = GradScaler::new(Fp16MixedSpec::default());
        assert_eq!(scaler.scale(), 65536.0);
        let expected = f32s(&defaults["scale_after"]);
        for (step, scale) in expected.iter().enumerate() {
            scaler.update(overflow.contains(&(step as u64)));
            assert_eq!(scaler.scale(), *scale, "step {step}");
        }
    }

    #[test]
    fn the_state_round_trips_with_torchs_keys() {
        let mut scaler = GradScaler::new(Fp16MixedSpec::default());
        scaler.update(true);
        scaler.update(false);
        let state = scaler.state();
        assert_eq!(state["scale"], 32768.0);
        assert_eq!(state["_growth_tracker"], 1);
        assert_eq!(state["growth_interval"], 2000);
        let mut restored = GradScaler::new(Fp16MixedSpec::default());
        restored.load_state(&state).unwrap();
        assert_eq!((restored.scale, restored.growth_tracker), (32768.0, 1));
        let error = restored
            .load_state(&serde_json::json!({"x": 1}))
            .unwrap_err();
        assert!(error.to_string().contains("not a GradScaler's"), "{error}");
    }
}
