//! The training-step seam in-process: a step of its own replaces what a micro-batch and a
//! validation batch do, logs values, and keeps state that a checkpoint carries across a resume.

mod support;

use stoker_core::batch::Output;
use stoker_core::burn::tensor::Tensor;
use stoker_core::error::Result;
use stoker_core::loss::LossValue;
use stoker_trainer::{StepContext, StepOutput, TrainingStep, ValidationContext};
use support::{Ramp, Recorder, args, fit, run_info};

/// Trains on twice the loss (so each update is twice the default one), counts its calls, logs
/// the count, and validates with a constant loss of 7.
#[derive(Default)]
struct Doubling {
    calls: u64,
}

impl TrainingStep for Doubling {
    fn training_step(&mut self, ctx: &mut StepContext<'_>) -> Result<StepOutput> {
        self.calls += 1;
        ctx.log("calls", self.calls as f64);
        let output = ctx.forward()?;
        let loss = ctx.compute_loss(&output)?;
        let grads = ctx.backward(loss.total.clone().mul_scalar(2.0));
        Ok(StepOutput {
            output,
            loss,
            grads,
            batch: None,
        })
    }

    fn validation_step(&mut self, ctx: &ValidationContext<'_>) -> Result<(Output, LossValue)> {
        let output = ctx.model.forward(ctx.batch)?;
        let device = output.float::<2>("pred")?.device();
        let seven = Tensor::<1>::from_floats([7.0], &device);
        Ok((output, LossValue::single(seven)))
    }

    fn state(&self) -> Result<serde_json::Value> {
        Ok(serde_json::json!({ "calls": self.calls }))
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        self.calls = state["calls"].as_u64().unwrap();
        Ok(())
    }
}

#[test]
fn a_step_of_its_own_changes_the_updates_and_the_validation() {
    let run = run_info("seam-update");
    let data = Ramp::new(4, 1, 2);
    let x0 = data.x(0);
    let (report, records) = fit(
        &run,
        &args("max_epochs: 1\nenable_checkpointing: false"),
        data,
        0.5,
        Doubling::default(),
        Recorder::default(),
        None,
    );
    // One step of lr 0.1 on twice the loss of sample 0.
    let first = records.weights.lock().unwrap()[0];
    let expected = 0.5 - 0.1 * 2.0 * 2.0 * (0.5 - 3.0) * x0 * x0;
    assert!((first - expected).abs() < 1e-6, "{first} vs {expected}");
    assert_eq!(report.final_metrics["val_loss"], 7.0);
    let calls: Vec<f64> = records.logged("calls").iter().map(|(_, v)| *v).collect();
    assert_eq!(calls, [1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn the_steps_state_is_checkpointed_and_restored_on_resume() {
    let run = run_info("seam-resume");
    let every_step = "max_epochs: 2\nenable_checkpointing: false";
    let (full, records) = fit(
        &run,
        &args(every_step),
        Ramp::new(6, 1, 0),
        0.5,
        Doubling::default(),
        Recorder {
            save_at: Some((0, 3, run.dir.join("mid.safetensors"))),
            ..Recorder::default()
        },
        None,
    );
    let final_weight = *records.weights.lock().unwrap().last().unwrap();
    let (resumed, again) = fit(
        &run,
        &args(every_step),
        Ramp::new(6, 1, 0),
        0.5,
        Doubling::default(),
        Recorder::default(),
        Some(run.dir.join("mid.safetensors")),
    );
    assert_eq!(resumed.global_step, full.global_step);
    // The count went on from 4 (the checkpoint's) to 12, as in the uninterrupted run.
    let calls: Vec<f64> = again.logged("calls").iter().map(|(_, v)| *v).collect();
    assert_eq!(calls, [5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
    assert_eq!(*again.weights.lock().unwrap().last().unwrap(), final_weight);
}

#[test]
fn values_a_step_logs_land_on_the_optimizer_step_they_make() {
    let run = run_info("seam-accumulate");
    let (report, records) = fit(
        &run,
        &args("max_epochs: 1\naccumulate_grad_batches: 2\nenable_checkpointing: false"),
        Ramp::new(6, 1, 0),
        0.5,
        Doubling::default(),
        Recorder::default(),
        None,
    );
    assert_eq!(report.global_step, 3);
    // Six micro-batches, two per step: each step's row holds its last micro-batch's count.
    assert_eq!(records.logged("calls"), [(1, 2.0), (2, 4.0), (3, 6.0)]);
}
