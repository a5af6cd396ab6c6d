//! `ProgressiveResizing_trainer`: training on smaller inputs first (fast.ai's progressive
//! resizing; for neural operators, training at a coarse resolution before the fine one). A
//! schedule gives the size of the inputs' trailing axes from each epoch on; each training batch
//! is cropped, resampled or subsampled to it (inputs and, for fields, targets alike), while
//! validation and test see the data's own size.

use serde::{Deserialize, Serialize};
use stoker::prelude::*;
use stoker::rng::{Rng, derive_seed};
use stoker::trainer::Trainer;
use stoker::training::{
    Loop, LoopArgs, StepContext, StepOutput, StepTrainer, TrainingStep, default_training_step,
};

use crate::leaf::replaced_as;
use crate::resize::{ResizeMode, draw_offsets, resize};

/// The size of the resized axes: one length (the last axis) or one per trailing axis.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Size {
    /// The last axis' length.
    Length(usize),
    /// The lengths of the last axes, in order (`[8, 8]` for a field's two axes).
    Lengths(Vec<usize>),
}

impl Size {
    fn lengths(&self) -> Vec<usize> {
        match self {
            Size::Length(n) => vec![*n],
            Size::Lengths(v) => v.clone(),
        }
    }
}

fn default_tensors() -> Vec<String> {
    vec![stoker::names::input()]
}

/// Progressive resizing: `schedule` lists `[first epoch, size]` pairs (`[[0, 512], [10, 1024]]` for signals, `[[0, [8, 8]], [20, [16, 16]]]` for fields); from each entry's epoch on, every training batch's `tensors` have their trailing axes brought to its size by `mode` (crop: a random window per sample, the same window in every tensor of the sample; resample: linear interpolation keeping the grid's ends; subsample: every k-th point). Validation and test see the data's own size. The size in force is logged as `train_size` (the last axis' length).
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[component(trainer, name = "ProgressiveResizing_trainer")]
pub struct ProgressiveResizingTrainerSpec {
    /// The loop's arguments, as Default_trainer takes them.
    #[serde(flatten)]
    pub loop_args: LoopArgs,
    /// `[first epoch, size]` pairs, the first at epoch 0, epochs increasing; a size is one length (the last axis) or a list (the last axes).
    pub schedule: Vec<(usize, Size)>,
    /// crop (default; signals: a shorter window at the same sampling rate), resample or subsample (fields: the same domain on a coarser grid).
    #[serde(default)]
    pub mode: ResizeMode,
    /// The batch tensors resized together (default: the input; add the target for fields).
    #[serde(default = "default_tensors")]
    pub tensors: Vec<String>,
}

impl ProgressiveResizingTrainerSpec {
    /// The schedule as lengths, checked against the data's trailing axes `full`.
    fn checked_schedule(
        &self,
        full: &[usize],
    ) -> std::result::Result<Vec<(usize, Vec<usize>)>, BuildError> {
        let at = |i: usize, m: String| BuildError::at(format!("schedule[{i}]"), m);
        if self.schedule.is_empty() {
            return Err(BuildError::at("schedule", "lists no sizes"));
        }
        let mut schedule = Vec::new();
        for (i, (epoch, size)) in self.schedule.iter().enumerate() {
            let size = size.lengths();
            match schedule.last() {
                None if *epoch != 0 => {
                    return Err(at(
                        i,
                        format!("starts at epoch {epoch}; the first entry must be for epoch 0"),
                    ));
                }
                Some((last, _)) if epoch <= last => {
                    return Err(at(
                        i,
                        format!(
                            "epoch {epoch} does not follow epoch {last}; list the epochs in increasing order"
                        ),
                    ));
                }
                _ => {}
            }
            if size.len() != full.len() {
                return Err(at(
                    i,
                    format!(
                        "gives {} length(s) where the schedule resizes {} axis/axes; every size has as many lengths as the first",
                        size.len(),
                        full.len()
                    ),
                ));
            }
            for (&m, &n) in size.iter().zip(full) {
                let refuse = |why: String| Err(at(i, format!("size {m}: {why}")));
                if m == 0 || m > n {
                    return refuse(format!(
                        "the data's axis has {n} points; a size is between 1 and that"
                    ));
                }
                if self.mode == ResizeMode::Resample && m < 2 && n > 1 {
                    return refuse("resample needs at least 2 points (the grid's two ends)".into());
                }
                if self.mode == ResizeMode::Subsample && n % m != 0 {
                    return refuse(format!(
                        "subsample keeps every k-th point, so the size must divide the axis' {n} points"
                    ));
                }
            }
            schedule.push((*epoch, size));
        }
        Ok(schedule)
    }
}

impl TrainerSpec for ProgressiveResizingTrainerSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Trainer>, BuildError> {
        let data = ctx.data()?;
        if self.tensors.is_empty() {
            return Err(BuildError::at("tensors", "lists no tensors"));
        }
        let axes = match self.schedule.first() {
            Some((_, size)) => size.lengths().len(),
            None => return Err(BuildError::at("schedule", "lists no sizes")),
        };
        let mut full: Option<Vec<usize>> = None;
        for (i, name) in self.tensors.iter().enumerate() {
            let info = data.require(&format!("tensors[{i}]"), name)?;
            let shape = &info.sample_shape;
            let at = |m: String| BuildError::at(format!("tensors[{i}]"), m);
            if info.kind != ElementKind::Float {
                return Err(at(format!(
                    "`{name}` holds integers; only float tensors are resized"
                )));
            }
            if shape.len() < axes {
                return Err(at(format!(
                    "`{name}` has sample shape {shape:?}, fewer axes than the schedule's sizes ({axes})"
                )));
            }
            let trailing = shape[shape.len() - axes..].to_vec();
            match &full {
                Some(first) if *first != trailing => {
                    return Err(at(format!(
                        "`{name}` ends in {trailing:?} where `{}` ends in {first:?}; tensors resized together share their trailing axes",
                        self.tensors[0]
                    )));
                }
                Some(_) => {}
                None => full = Some(trailing),
            }
        }
        let full = full.expect("at least one tensor");
        let schedule = self.checked_schedule(&full)?;
        if let (Some(epochs), Some((last, _))) = (self.loop_args.epochs(), schedule.last())
            && *last >= epochs
        {
            stoker::console::note(format!(
                "ProgressiveResizing_trainer: the schedule's entry for epoch {last} is never reached in {epochs} epoch(s)"
            ));
        }
        let step = ResizeStep {
            schedule,
            full,
            mode: self.mode,
            tensors: self.tensors.clone(),
            announced: None,
        };
        Ok(Box::new(StepTrainer::new(
            Loop::build(&self.loop_args, ctx)?,
            step,
        )))
    }

    stoker::training::loop_args_methods!();
}

/// Seeds the crop offsets apart from the other draws made from the micro-batch's seed.
const CROP_STREAM: u64 = 0x7265_7369_7a65;

/// The resizing step.
struct ResizeStep {
    schedule: Vec<(usize, Vec<usize>)>,
    /// The data's trailing axes.
    full: Vec<usize>,
    mode: ResizeMode,
    tensors: Vec<String>,
    /// The size last announced on the console.
    announced: Option<Vec<usize>>,
}

impl ResizeStep {
    /// The size in force at `epoch`.
    fn size_at(&self, epoch: usize) -> &[usize] {
        let entry = self.schedule.iter().rev().find(|(e, _)| *e <= epoch);
        &entry.expect("the schedule starts at epoch 0").1
    }

    /// `batch` with its tensors resized to `size`; crops draw their windows from `seed`.
    fn resized(&self, batch: &Batch, size: &[usize], seed: u64) -> Result<Batch> {
        let mut rng = Rng::new(derive_seed(&[seed, CROP_STREAM]));
        let offsets = match self.mode {
            ResizeMode::Crop => draw_offsets(batch.batch_size(), &self.full, size, &mut rng),
            _ => Vec::new(),
        };
        let mut out = batch.clone();
        for name in &self.tensors {
            let shape = batch.shape(name)?;
            let flat = batch.float_flat(name)?;
            let (flat, shape) = resize(flat, &shape, size, self.mode, &offsets);
            out = replaced_as(&out, name, flat, &shape)?;
        }
        Ok(out)
    }
}

impl TrainingStep for ResizeStep {
    fn logs(&self, name: &str) -> bool {
        name == "train_size"
    }

    fn training_step(&mut self, ctx: &mut StepContext<'_>) -> Result<StepOutput> {
        let size = self.size_at(ctx.epoch).to_vec();
        if self.announced.as_ref() != Some(&size) {
            stoker::console::note(format!(
                "ProgressiveResizing_trainer: epoch {}: training at {size:?} (the data's size: {:?})",
                ctx.epoch, self.full
            ));
            self.announced = Some(size.clone());
        }
        ctx.log(
            "train_size",
            *size.last().expect("a size has a length") as f64,
        );
        if size == self.full {
            return default_training_step(ctx);
        }
        let batch = self.resized(ctx.batch, &size, ctx.seed)?;
        let output = ctx.forward_with(ctx.model, &batch)?;
        let loss = ctx.compute_loss_with(&output, &batch)?;
        let grads = ctx.backward(loss.total.clone());
        Ok(StepOutput {
            output,
            loss,
            grads,
            batch: Some(batch),
        })
    }
}
