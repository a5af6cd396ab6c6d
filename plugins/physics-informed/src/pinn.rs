//! `PINN_trainer`: the loop of `Default_trainer` with a training step that weighs a PDE residual
//! against the data loss adaptively (Wang, Teng & Perdikaris 2021, "Understanding and mitigating
//! gradient flow pathologies in physics-informed neural networks", their algorithm 1).

use serde::{Deserialize, Serialize};
use stoker::burn::optim::GradientsParams;
use stoker::prelude::*;
use stoker::registry::Named;
use stoker::trainer::Trainer;
use stoker::training::{
    Loop, LoopArgs, StepContext, StepOutput, StepTrainer, TrainingStep, ValidationContext,
    default_validation_step,
};

/// Physics-informed training: the loss on the data plus lambda x a PDE residual, with lambda adapted every update_every steps by learning-rate annealing (Wang, Teng & Perdikaris 2021): lambda_hat = max|grad data loss| / mean|grad residual|, lambda = (1 - alpha) lambda + alpha lambda_hat; logs lambda as lambda_pde every step, and the residual as train_loss_pde and val_loss_pde.
///
/// On the steps that update lambda the model runs forward twice (with the same random draws):
/// Burn frees the graph it back-propagates, and each term needs its own gradients. A model with
/// batch norm updates its running statistics twice on those steps.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[component(trainer, name = "PINN_trainer")]
pub struct PinnTrainerSpec {
    /// The loop's arguments, as Default_trainer takes them.
    #[serde(flatten)]
    pub loop_args: LoopArgs,
    /// The PDE residual, a physics term `{name, args}` (cargo xtask list physics).
    pub residual: Named,
    /// The residual's weight before the first update.
    #[serde(default = "one")]
    pub lambda: f64,
    /// How far each update moves lambda towards lambda_hat (the paper's alpha, 0.9).
    #[serde(default = "point_nine")]
    pub alpha: f64,
    /// Update lambda at every N-th optimizer step (from step 0).
    #[serde(default = "ten")]
    pub update_every: usize,
}

fn one() -> f64 {
    1.0
}
fn point_nine() -> f64 {
    0.9
}
fn ten() -> usize {
    10
}

impl TrainerSpec for PinnTrainerSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Trainer>, BuildError> {
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return Err(BuildError::at("lambda", "must be a number >= 0"));
        }
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            return Err(BuildError::at("alpha", "must be in (0, 1]"));
        }
        if self.update_every == 0 {
            return Err(BuildError::at("update_every", "must be at least 1"));
        }
        let residual = self
            .residual
            .parse::<dyn PhysicsSpec>("residual")?
            .build(ctx)
            .map_err(|e| e.under("residual.args"))?;
        let step = PinnStep {
            residual,
            lambda: self.lambda,
            alpha: self.alpha,
            update_every: self.update_every,
        };
        Ok(Box::new(StepTrainer::new(
            Loop::build(&self.loop_args, ctx)?,
            step,
        )))
    }

    stoker::training::loop_args_methods!();
}

/// The training step: data loss + lambda x residual, lambda adapted.
struct PinnStep {
    residual: Box<dyn PhysicsTerm>,
    lambda: f64,
    alpha: f64,
    update_every: usize,
}

impl PinnStep {
    /// The loss as logged: its total, and the data and residual terms.
    fn value(&self, data: Tensor<1>, residual: Tensor<1>) -> LossValue {
        LossValue {
            total: data.clone() + residual.clone().mul_scalar(self.lambda),
            terms: vec![("data".into(), data), ("pde".into(), residual)],
        }
    }
}

/// max |g| over every gradient value, and mean |g|.
fn abs_max_and_mean(model: &dyn DynModel, grads: &GradientsParams) -> (f64, f64) {
    let flat = model.gradients_flat(grads);
    let count: usize = flat.iter().map(|(_, g)| g.dims()[0]).sum();
    let (maxes, sums): (Vec<Tensor<1>>, Vec<Tensor<1>>) = flat
        .into_iter()
        .map(|(_, g)| (g.clone().abs().max(), g.abs().sum()))
        .unzip();
    let stats = Tensor::cat(
        vec![Tensor::cat(maxes, 0).max(), Tensor::cat(sums, 0).sum()],
        0,
    )
    .into_data()
    .convert::<f64>()
    .try_to_vec::<f64>()
    .unwrap_or_default();
    match stats.as_slice() {
        [max, sum] => (*max, sum / count.max(1) as f64),
        _ => (f64::NAN, f64::NAN),
    }
}

impl TrainingStep for PinnStep {
    /// `lambda_pde`, and the loss terms its steps return (`data`, `pde`), which the loss
    /// metric logs per split.
    fn logs(&self, name: &str) -> bool {
        matches!(
            name,
            "lambda_pde" | "train_loss_data" | "train_loss_pde" | "val_loss_data" | "val_loss_pde"
        )
    }

    fn training_step(&mut self, ctx: &mut StepContext<'_>) -> Result<StepOutput> {
        let output = ctx.forward()?;
        let data = ctx.compute_loss(&output)?.total;
        let residual = self.residual.penalty(&output, ctx.batch)?;
        let update = ctx.starts_step && ctx.global_step.is_multiple_of(self.update_every);
        let grads = if update {
            // Each term's own gradients: Burn frees a graph it back-propagates, so the residual
            // needs a second forward pass (with the same random draws).
            let data_grads = ctx.backward(data.clone());
            ctx.device.seed(ctx.seed);
            let again = ctx.forward()?;
            let residual_grads = ctx.backward(self.residual.penalty(&again, ctx.batch)?);
            let (data_max, _) = abs_max_and_mean(ctx.model, &data_grads);
            let (_, residual_mean) = abs_max_and_mean(ctx.model, &residual_grads);
            let lambda_hat = data_max / residual_mean;
            if lambda_hat.is_finite() {
                self.lambda = (1.0 - self.alpha) * self.lambda + self.alpha * lambda_hat;
            }
            // The gradients of data + lambda x residual, from the two terms' own.
            let lambda = self.lambda;
            let weighted = ctx
                .model
                .map_gradients(residual_grads, &mut |_, g| g.mul_scalar(lambda));
            ctx.model.add_gradients(data_grads, weighted)
        } else {
            ctx.backward(data.clone() + residual.clone().mul_scalar(self.lambda))
        };
        ctx.log("lambda_pde", self.lambda);
        let loss = self.value(data.detach(), residual.detach());
        Ok(StepOutput {
            output,
            loss,
            grads,
            batch: None,
        })
    }

    fn validation_step(&mut self, ctx: &ValidationContext<'_>) -> Result<(Output, LossValue)> {
        let (output, data) = default_validation_step(ctx)?;
        let residual = self.residual.penalty(&output, ctx.batch)?;
        // val_loss stays the data loss, the accuracy a checkpoint is judged by.
        let mut value = self.value(data.total.clone(), residual);
        value.total = data.total;
        Ok((output, value))
    }

    fn state(&self) -> Result<serde_json::Value> {
        Ok(serde_json::json!({ "lambda": self.lambda }))
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        self.lambda = state["lambda"]
            .as_f64()
            .ok_or_else(|| StokerError::msg("PINN_trainer: the checkpoint holds no lambda"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stoker::burn;
    use stoker::burn::module::Param;
    use stoker::model::boxed;
    use stoker::training::run_training_step;

    /// `pred = w x + b`.
    #[derive(Module, Debug)]
    struct Affine {
        w: Param<Tensor<1>>,
        b: Param<Tensor<1>>,
    }

    impl Model for Affine {
        fn forward(&self, batch: &Batch) -> Result<Output> {
            let x = batch.float::<2>("x")?;
            let mut out = Output::output();
            let w = self.w.val().unsqueeze::<2>();
            let b = self.b.val().unsqueeze::<2>();
            out.insert_float("pred", x * w + b);
            Ok(out)
        }
    }

    /// The mean squared error of `pred` against `y`.
    struct Mse;

    impl Loss for Mse {
        fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
            let e = output.float::<2>("pred")? - batch.float::<2>("y")?;
            Ok(LossValue::single(e.square().mean()))
        }
    }

    /// A stand-in residual: mean(pred^2).
    struct Squared;

    impl PhysicsTerm for Squared {
        fn penalty(&self, output: &Output, _batch: &Batch) -> Result<Tensor<1>> {
            Ok(output.float::<2>("pred")?.square().mean())
        }
    }

    fn scalar(v: f32, device: &Device) -> Param<Tensor<1>> {
        Param::from_tensor(Tensor::from_data(TensorData::new(vec![v], [1]), device))
    }

    fn column(values: &[f64], device: &Device) -> Tensor<2> {
        let v: Vec<f32> = values.iter().map(|v| *v as f32).collect();
        Tensor::from_data(TensorData::new(v, [values.len(), 1]), device)
    }

    /// The gradients of w and b in `grads`.
    fn pair(model: &dyn DynModel, grads: &GradientsParams) -> (f64, f64) {
        let mut values = model
            .gradients_flat(grads)
            .into_iter()
            .map(|(_, g)| g.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()[0]);
        (values.next().unwrap(), values.next().unwrap())
    }

    #[test]
    fn lambda_follows_the_annealing_rule_and_weighs_the_residuals_gradients() {
        let device = Device::flex().autodiff();
        let (w, b) = (0.5, -0.25);
        let model = boxed(Affine {
            w: scalar(w as f32, &device),
            b: scalar(b as f32, &device),
        });
        let (x, y) = ([1.0, 2.0, 3.0], [1.0, 0.0, 2.0]);
        let plain = Device::flex();
        let mut batch = Batch::batch();
        batch.insert_float("x", column(&x, &plain));
        batch.insert_float("y", column(&y, &plain));
        let mut step = PinnStep {
            residual: Box::new(Squared),
            lambda: 2.0,
            alpha: 0.9,
            update_every: 3,
        };

        // Hand-derived: e = pred - y, data gradients mean(2 e x), mean(2 e); the residual's
        // mean(2 pred x), mean(2 pred).
        let pred: Vec<f64> = x.iter().map(|x| w * x + b).collect();
        let mean = |f: &dyn Fn(usize) -> f64| (0..3).map(f).sum::<f64>() / 3.0;
        let gd = (
            mean(&|i| 2.0 * (pred[i] - y[i]) * x[i]),
            mean(&|i| 2.0 * (pred[i] - y[i])),
        );
        let gr = (mean(&|i| 2.0 * pred[i] * x[i]), mean(&|i| 2.0 * pred[i]));
        let lambda_hat = gd.0.abs().max(gd.1.abs()) / ((gr.0.abs() + gr.1.abs()) / 2.0);
        let lambda = 0.1 * 2.0 + 0.9 * lambda_hat;

        // Step 3 is an update step: lambda moves, the gradients are data + lambda x residual.
        let (out, logged) =
            run_training_step(&mut step, model.as_ref(), &Mse, &batch, &plain, 3).unwrap();
        assert!(
            (step.lambda - lambda).abs() < 1e-5,
            "{} vs {lambda}",
            step.lambda
        );
        assert_eq!(logged, vec![("lambda_pde".to_string(), step.lambda)]);
        let (dw, db) = pair(model.as_ref(), &out.grads);
        assert!((dw - (gd.0 + lambda * gr.0)).abs() < 1e-4, "{dw}");
        assert!((db - (gd.1 + lambda * gr.1)).abs() < 1e-4, "{db}");
        let terms: Vec<&str> = out.loss.terms.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(terms, ["data", "pde"]);

        // Step 4 is not: lambda stays, one backward of data + lambda x residual.
        let (out, _) =
            run_training_step(&mut step, model.as_ref(), &Mse, &batch, &plain, 4).unwrap();
        assert!((step.lambda - lambda).abs() < 1e-5);
        let (dw, _) = pair(model.as_ref(), &out.grads);
        assert!((dw - (gd.0 + step.lambda * gr.0)).abs() < 1e-4, "{dw}");

        // The state round-trips exactly.
        let state = step.state().unwrap();
        let kept = step.lambda;
        step.lambda = 0.0;
        step.load_state(&state).unwrap();
        assert_eq!(step.lambda, kept);
    }
}
