//! `Adversarial_trainer`: FGSM adversarial training (Goodfellow, Shlens & Szegedy 2015,
//! "Explaining and harnessing adversarial examples", section 5): each step trains on
//! `(1 - weight) * J(x) + weight * J(x + epsilon * sign(grad_x J(x)))`, and validation and test
//! attack their inputs the same way, so that the attacked accuracy is a metric like any other.

use serde::{Deserialize, Serialize};
use stoker::burn::tensor::kind::BridgeTensor;
use stoker::prelude::*;
use stoker::trainer::Trainer;
use stoker::training::{
    Loop, LoopArgs, StepContext, StepOutput, StepTrainer, TrainingStep, ValidationContext,
    default_validation_step,
};

use crate::leaf::{replaced, with_input_leaf};

fn half() -> f64 {
    0.5
}

fn default_attacked() -> String {
    "fgsm_pred".into()
}

/// FGSM adversarial training: every step trains on (1 - weight) x loss(x) + weight x loss(x + epsilon x sign(grad_x loss(x))), the perturbation computed from the same step's clean pass (logged as train_loss_clean and train_loss_fgsm); training, validation and test add the model's scores on FGSM-attacked inputs (epsilon in training, eval_epsilon at validation and test) to the output as `attacked`, and validation and test log their loss as val_loss_fgsm / test_loss_fgsm; `{name: accuracy, args: {pred: fgsm_pred, label: fgsm}}` then logs the attacked accuracy.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[component(trainer, name = "Adversarial_trainer")]
pub struct AdversarialTrainerSpec {
    /// The loop's arguments, as Default_trainer takes them.
    #[serde(flatten)]
    pub loop_args: LoopArgs,
    /// The perturbation's size, in the input's units (after the data's normalization).
    pub epsilon: f64,
    /// The weight of the adversarial loss; the clean loss gets 1 - weight (Goodfellow et al.'s alpha = 0.5). 0 trains on clean inputs only, as Default_trainer does, and still measures the attacks.
    #[serde(default = "half")]
    pub weight: f64,
    /// The perturbation's size at validation and test (default: epsilon; 0: no attack).
    #[serde(default)]
    pub eval_epsilon: Option<f64>,
    /// The batch tensor perturbed.
    #[serde(default = "stoker::names::input")]
    pub input: String,
    /// The model output the attacked scores are taken from.
    #[serde(default = "stoker::names::prediction")]
    pub pred: String,
    /// The output name of the scores on attacked inputs, at validation and test.
    #[serde(default = "default_attacked")]
    pub attacked: String,
}

impl TrainerSpec for AdversarialTrainerSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Trainer>, BuildError> {
        if !(self.epsilon.is_finite() && self.epsilon >= 0.0) {
            return Err(BuildError::at("epsilon", "must be a number >= 0"));
        }
        if !(0.0..=1.0).contains(&self.weight) {
            return Err(BuildError::at("weight", "must be in [0, 1]"));
        }
        let eval_epsilon = self.eval_epsilon.unwrap_or(self.epsilon);
        if !(eval_epsilon.is_finite() && eval_epsilon >= 0.0) {
            return Err(BuildError::at("eval_epsilon", "must be a number >= 0"));
        }
        let info = ctx.data()?.require("input", &self.input)?;
        if info.kind != ElementKind::Float {
            return Err(BuildError::at(
                "input",
                format!(
                    "`{}` holds integers; FGSM perturbs a float input",
                    self.input
                ),
            ));
        }
        let step = FgsmStep {
            epsilon: self.epsilon,
            weight: self.weight,
            eval_epsilon,
            input: self.input.clone(),
            pred: self.pred.clone(),
            attacked: self.attacked.clone(),
        };
        Ok(Box::new(StepTrainer::new(
            Loop::build(&self.loop_args, ctx)?,
            step,
        )))
    }

    stoker::training::loop_args_methods!();
}

/// The FGSM step.
struct FgsmStep {
    epsilon: f64,
    weight: f64,
    eval_epsilon: f64,
    input: String,
    pred: String,
    attacked: String,
}

impl FgsmStep {
    /// `batch` with its input moved by `epsilon * sign(gradient)` (`gradient` flattened as
    /// [`with_input_leaf`] flattens the input), outside any graph.
    fn perturbed(
        &self,
        batch: &Batch,
        leaf: &Tensor<2>,
        gradient: Tensor<2>,
        epsilon: f64,
    ) -> Result<Batch> {
        let x = leaf.clone().detach().without_autodiff();
        replaced(batch, &self.input, x + gradient.sign().mul_scalar(epsilon))
    }
}

impl FgsmStep {
    /// The model's scores `pred` in `output`.
    fn scores(&self, output: &Output) -> Result<BridgeTensor> {
        output
            .bridge(&self.pred)
            .map_err(|e| StokerError::msg(format!("Adversarial_trainer (trainer.args.pred): {e}")))
    }
}

fn no_gradient(input: &str) -> StokerError {
    StokerError::msg(format!(
        "Adversarial_trainer: the loss does not depend on `{input}`, so FGSM has no gradient to follow; check trainer.args.input"
    ))
}

impl TrainingStep for FgsmStep {
    fn training_step(&mut self, ctx: &mut StepContext<'_>) -> Result<StepOutput> {
        let model = ctx.model;
        // The clean pass, with the input as a leaf: its backward gives both the clean
        // parameters' gradients and the input's (the sign ignores the loss scale).
        let (clean_batch, leaf) = with_input_leaf(ctx.batch, &self.input)?;
        let mut output = ctx.forward_with(model, &clean_batch)?;
        let clean = ctx.compute_loss_with(&output, &clean_batch)?.total;
        let (clean_grads, gradient) = ctx.backward_with_leaf(clean.clone(), &leaf);
        let gradient = gradient.ok_or_else(|| no_gradient(&self.input))?;
        let attacked_batch = self.perturbed(ctx.batch, &leaf, gradient, self.epsilon)?;
        let attacked_output = ctx.forward_with(model, &attacked_batch)?;
        let attacked = ctx
            .compute_loss_with(&attacked_output, &attacked_batch)?
            .total;
        let keep = 1.0 - self.weight;
        let grads = if self.weight == 0.0 {
            clean_grads
        } else {
            let attacked_grads = ctx.backward(attacked.clone().mul_scalar(self.weight));
            let clean_grads = model.map_gradients(clean_grads, &mut |_, g| g.mul_scalar(keep));
            model.add_gradients(clean_grads, attacked_grads)
        };
        // The training metrics see the clean scores, and the attacked ones as `attacked`.
        output.insert_bridge(self.attacked.clone(), self.scores(&attacked_output)?);
        let (clean, attacked) = (clean.detach(), attacked.detach());
        Ok(StepOutput {
            output,
            loss: LossValue {
                total: clean.clone().mul_scalar(keep) + attacked.clone().mul_scalar(self.weight),
                terms: vec![("clean".into(), clean), ("fgsm".into(), attacked)],
            },
            grads,
            batch: None,
        })
    }

    fn validation_step(&mut self, ctx: &ValidationContext<'_>) -> Result<(Output, LossValue)> {
        let (mut output, mut loss) = default_validation_step(ctx)?;
        if self.eval_epsilon == 0.0 {
            return Ok((output, loss));
        }
        // The evaluation copy's parameters take no gradients; the input leaf does, through them.
        let (leaf_batch, leaf) = with_input_leaf(ctx.batch, &self.input)?;
        let attacked_loss = ctx
            .loss
            .forward(&ctx.model.forward(&leaf_batch)?, &leaf_batch)?
            .total;
        let gradient = leaf
            .grad(&attacked_loss.backward())
            .ok_or_else(|| no_gradient(&self.input))?;
        let attacked_batch = self.perturbed(ctx.batch, &leaf, gradient, self.eval_epsilon)?;
        let attacked = ctx.model.forward(&attacked_batch)?;
        let attacked_loss = ctx.loss.forward(&attacked, &attacked_batch)?.total;
        output.insert_bridge(self.attacked.clone(), self.scores(&attacked)?);
        loss.terms.push(("fgsm".into(), attacked_loss));
        Ok((output, loss))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stoker::burn;
    use stoker::burn::module::Param;
    use stoker::burn::optim::GradientsParams;
    use stoker::model::boxed;
    use stoker::training::run_training_step;

    /// `pred = w x + b`, elementwise on a column.
    #[derive(Module, Debug)]
    struct Affine {
        w: Param<Tensor<1>>,
        b: Param<Tensor<1>>,
    }

    impl Model for Affine {
        fn forward(&self, batch: &Batch) -> Result<Output> {
            let x = batch.float::<2>("x")?;
            let mut out = Output::output();
            out.insert_float(
                "pred",
                x * self.w.val().unsqueeze::<2>() + self.b.val().unsqueeze::<2>(),
            );
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

    const X: [f64; 4] = [1.0, -2.0, 0.5, 3.0];
    const Y: [f64; 4] = [2.0, 0.0, -1.0, 1.0];
    const W: f64 = 0.5;
    const B: f64 = -0.25;
    const EPSILON: f64 = 0.1;

    fn column(values: &[f64], device: &Device) -> Tensor<2> {
        let v: Vec<f32> = values.iter().map(|v| *v as f32).collect();
        Tensor::from_data(TensorData::new(v, [values.len(), 1]), device)
    }

    fn values(t: Tensor<2>) -> Vec<f64> {
        t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
    }

    fn setup() -> (Box<dyn DynModel>, Batch, Device) {
        let device = Device::flex().autodiff();
        let scalar = |v: f64| {
            Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![v as f32], [1]),
                &device,
            ))
        };
        let model = boxed(Affine {
            w: scalar(W),
            b: scalar(B),
        });
        let plain = Device::flex();
        let mut batch = Batch::batch();
        batch.insert_float("x", column(&X, &plain));
        batch.insert_float("y", column(&Y, &plain));
        (model, batch, plain)
    }

    fn step(weight: f64) -> FgsmStep {
        FgsmStep {
            epsilon: EPSILON,
            weight,
            eval_epsilon: 2.0 * EPSILON,
            input: "x".into(),
            pred: "pred".into(),
            attacked: "fgsm_pred".into(),
        }
    }

    /// The attacked inputs, by hand: d/dx_i mean((w x + b - y)^2) = 2 (w x_i + b - y_i) w / n,
    /// so x_i moves by epsilon in the sign of (w x_i + b - y_i) w.
    fn attacked(epsilon: f64) -> Vec<f64> {
        X.iter()
            .zip(Y)
            .map(|(x, y)| x + epsilon * ((W * x + B - y) * W).signum())
            .collect()
    }

    /// The gradients of mean((w x + b - y)^2) over `x` with respect to w and b.
    fn gradients(x: &[f64]) -> (f64, f64) {
        let n = x.len() as f64;
        let e: Vec<f64> = x.iter().zip(Y).map(|(x, y)| W * x + B - y).collect();
        (
            e.iter().zip(x).map(|(e, x)| 2.0 * e * x).sum::<f64>() / n,
            e.iter().map(|e| 2.0 * e).sum::<f64>() / n,
        )
    }

    fn pair(model: &dyn DynModel, grads: &GradientsParams) -> (f64, f64) {
        let flat = model.gradients_flat(grads);
        let value = |i: usize| {
            flat[i]
                .1
                .clone()
                .into_data()
                .convert::<f64>()
                .try_to_vec::<f64>()
                .unwrap()[0]
        };
        (value(0), value(1))
    }

    #[test]
    fn a_step_trains_on_the_clean_and_the_attacked_inputs_weighted() {
        let (model, batch, device) = setup();
        let adversarial = attacked(EPSILON);
        let (clean, attack) = (gradients(&X), gradients(&adversarial));
        for weight in [0.0, 0.3, 1.0] {
            let (out, _) =
                run_training_step(&mut step(weight), model.as_ref(), &Mse, &batch, &device, 0)
                    .unwrap();
            let (dw, db) = pair(model.as_ref(), &out.grads);
            let expected_w = (1.0 - weight) * clean.0 + weight * attack.0;
            let expected_b = (1.0 - weight) * clean.1 + weight * attack.1;
            assert!(
                (dw - expected_w).abs() < 1e-5,
                "weight {weight}: {dw} vs {expected_w}"
            );
            assert!(
                (db - expected_b).abs() < 1e-5,
                "weight {weight}: {db} vs {expected_b}"
            );
            // The metrics see the clean scores and the attacked ones.
            let pred = values(out.output.float::<2>("pred").unwrap());
            let fgsm = values(out.output.float::<2>("fgsm_pred").unwrap());
            for i in 0..X.len() {
                assert!((pred[i] - (W * X[i] + B)).abs() < 1e-6);
                assert!((fgsm[i] - (W * adversarial[i] + B)).abs() < 1e-6);
            }
            let terms: Vec<&str> = out.loss.terms.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(terms, ["clean", "fgsm"]);
        }
    }

    #[test]
    fn validation_attacks_the_evaluation_copy_with_eval_epsilon() {
        let (model, batch, _) = setup();
        let eval = model.for_eval();
        let (output, loss) = step(0.5)
            .validation_step(&ValidationContext {
                batch: &batch,
                model: eval.as_ref(),
                loss: &Mse,
                epoch: 0,
                global_step: 0,
            })
            .unwrap();
        let adversarial = attacked(2.0 * EPSILON);
        let fgsm = values(output.float::<2>("fgsm_pred").unwrap());
        let pred = values(output.float::<2>("pred").unwrap());
        for i in 0..X.len() {
            assert!(
                (fgsm[i] - (W * adversarial[i] + B)).abs() < 1e-6,
                "{fgsm:?}"
            );
            assert!((pred[i] - (W * X[i] + B)).abs() < 1e-6);
        }
        // The loss stays the clean one; the attacked loss is its `fgsm` term.
        let mse = |x: &[f64]| {
            x.iter()
                .zip(Y)
                .map(|(x, y)| (W * x + B - y).powi(2))
                .sum::<f64>()
                / x.len() as f64
        };
        let total = loss
            .total
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .unwrap()[0];
        assert!((total - mse(&X)).abs() < 1e-5);
        let term = loss.terms[0]
            .1
            .clone()
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .unwrap()[0];
        assert_eq!(loss.terms[0].0, "fgsm");
        assert!((term - mse(&adversarial)).abs() < 1e-5, "{term}");
        assert!(mse(&adversarial) > mse(&X), "the attack raises the loss");
    }
}
