//! An in-process harness for the loop's tests: a one-weight model `pred = w * x` on the ramp
//! `x = (i + 1) / n`, `y = 3 x`, trained by SGD on the mean squared error, with a callback and
//! a logger that record what the loop did. Every gradient is hand-derivable:
//! d/dw mean((w x - 3 x)^2) over one sample = 2 (w - 3) x^2.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use stoker_core::batch::{Batch, Output};
use stoker_core::burn;
use stoker_core::burn::module::{Module, Param};
use stoker_core::burn::optim::SgdConfig;
use stoker_core::burn::tensor::{Device, Tensor, TensorData};
use stoker_core::callback::{Callback, HookContext};
use stoker_core::checkpoint::{self, CheckpointState};
use stoker_core::data::{
    DataInfo, DataModule, ElementKind, EpochBatches, Order, Shard, Split, TensorInfo,
};
use stoker_core::error::{Result, StokerError};
use stoker_core::logger::{LogRow, Logger, Loggers, RunInfo};
use stoker_core::loss::{Loss, LossValue};
use stoker_core::metric::{Metric, Reducer, StepView};
use stoker_core::model::{DynModel, Model, boxed};
use stoker_core::schedule::LrScheduler;
use stoker_core::spec::BuildContext;
use stoker_core::trainer::Trainer;
use stoker_core::trainer::{FitReport, Resume, SplitMetrics, TrainingParts};
use stoker_trainer::{Loop, LoopArgs, StepTrainer, TrainingStep};

/// `pred = w * x`.
#[derive(Module, Debug)]
pub struct Line {
    w: Param<Tensor<1>>,
}

impl Model for Line {
    fn forward(&self, batch: &Batch) -> Result<Output> {
        let x = batch.float::<2>("x")?;
        let mut out = Output::output();
        out.insert_float("pred", x * self.w.val().unsqueeze::<2>());
        Ok(out)
    }
}

/// The line with weight `w`, on the autodiff device.
pub fn line(w: f32) -> Box<dyn DynModel> {
    let device = Device::flex().autodiff();
    let w = Tensor::<1>::from_data(TensorData::new(vec![w], [1]), &device).require_grad();
    boxed(Line {
        w: Param::from_tensor(w),
    })
}

/// The weight of a [`line`].
pub fn weight(model: &dyn DynModel) -> f64 {
    let (_, w) = model.parameters_flat().remove(0);
    w.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0] as f64
}

/// The ramp `x = (i + 1) / n`, `y = 3 x`, in batches of `batch_size`, in order; `val` samples
/// (the first ones) also form the validation split.
pub struct Ramp {
    pub info: DataInfo,
    pub n: usize,
    pub device: Device,
}

impl Ramp {
    pub fn new(n: usize, batch_size: usize, val: usize) -> Self {
        let tensor = |name: &str| TensorInfo {
            name: name.into(),
            sample_shape: vec![1],
            kind: ElementKind::Float,
        };
        Ramp {
            info: DataInfo {
                tensors: vec![tensor("x"), tensor("y")],
                split_sizes: [n, val, 0],
                batch_size,
            },
            n,
            device: Device::flex(),
        }
    }

    /// `x` of sample `i`.
    pub fn x(&self, i: usize) -> f64 {
        (i + 1) as f64 / self.n as f64
    }
}

struct RampEpoch<'a> {
    ramp: &'a Ramp,
    len: usize,
}

impl EpochBatches for RampEpoch<'_> {
    fn len(&self) -> usize {
        self.len.div_ceil(self.ramp.info.batch_size)
    }

    fn batch(&mut self, index: usize) -> Result<Batch> {
        let size = self.ramp.info.batch_size;
        let xs: Vec<f32> = (index * size..((index + 1) * size).min(self.len))
            .map(|i| self.ramp.x(i) as f32)
            .collect();
        let ys: Vec<f32> = xs.iter().map(|x| 3.0 * x).collect();
        let rows = xs.len();
        let mut batch = Batch::batch();
        let device = &self.ramp.device;
        batch.insert_float(
            "x",
            Tensor::<2>::from_data(TensorData::new(xs, [rows, 1]), device),
        );
        batch.insert_float(
            "y",
            Tensor::<2>::from_data(TensorData::new(ys, [rows, 1]), device),
        );
        Ok(batch)
    }
}

impl DataModule for Ramp {
    fn info(&self) -> &DataInfo {
        &self.info
    }

    fn epoch(
        &self,
        split: Split,
        _epoch: usize,
        _order: Order,
        shard: Shard,
    ) -> Result<Box<dyn EpochBatches + '_>> {
        if !shard.is_whole() {
            return Err(StokerError::msg("the test ramp is not sharded"));
        }
        Ok(Box::new(RampEpoch {
            ramp: self,
            len: self.info.len(split),
        }))
    }
}

/// The mean squared error of `pred` against `y`.
pub struct Mse;

impl Loss for Mse {
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {
        let diff = output.float::<2>("pred")? - batch.float::<2>("y")?;
        Ok(LossValue::single(diff.square().mean()))
    }
}

/// The mean of the loss over the batches (`loss`).
#[derive(Default)]
pub struct MeanLoss {
    sum: f64,
    count: usize,
}

impl Metric for MeanLoss {
    fn update(&mut self, step: &StepView<'_>) -> Result<()> {
        self.sum += step.loss.total.clone().into_scalar::<f64>();
        self.count += 1;
        Ok(())
    }

    fn compute(&mut self) -> Result<Vec<(String, f64)>> {
        Ok(vec![("loss".into(), self.sum / self.count.max(1) as f64)])
    }

    fn reset(&mut self) {
        *self = MeanLoss::default();
    }

    fn reduce(&mut self, reducer: &mut dyn Reducer, _device: &Device) -> Result<()> {
        let mut values = [self.sum, self.count as f64];
        reducer.sum(&mut values)?;
        (self.sum, self.count) = (values[0], values[1] as usize);
        Ok(())
    }

    fn state(&self) -> Result<serde_json::Value> {
        Ok(serde_json::json!([self.sum, self.count]))
    }

    fn load_state(&mut self, state: &serde_json::Value, _device: &Device) -> Result<()> {
        self.sum = state[0].as_f64().unwrap();
        self.count = state[1].as_u64().unwrap() as usize;
        Ok(())
    }
}

/// A constant learning rate that counts the steps and epochs it is told of.
pub struct Counting {
    pub lr: f64,
    pub counts: Arc<Mutex<(usize, usize)>>,
}

impl LrScheduler for Counting {
    fn lr(&self) -> f64 {
        self.lr
    }

    fn on_optimizer_step(&mut self) {
        self.counts.lock().unwrap().0 += 1;
    }

    fn on_epoch_end(&mut self, _metrics: &BTreeMap<String, f64>) -> Result<()> {
        self.counts.lock().unwrap().1 += 1;
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    fn load_state(&mut self, _state: &serde_json::Value) -> Result<()> {
        Ok(())
    }
}

/// One hook call as the recorder saw it: its name, the epoch, the batch of the epoch, the step.
pub type Event = (&'static str, usize, usize, usize);

/// A callback that records every hook, and asks for what its fields say.
#[derive(Default)]
pub struct Recorder {
    pub events: Arc<Mutex<Vec<Event>>>,
    /// The weight after each optimizer step.
    pub weights: Arc<Mutex<Vec<f64>>>,
    /// Ask to stop at the end of this optimizer step.
    pub stop_at_step: Option<usize>,
    /// Ask for a checkpoint at the end of micro-batch (epoch, batch index).
    pub save_at: Option<(usize, usize, PathBuf)>,
}

impl Recorder {
    fn note(&self, hook: &'static str, ctx: &HookContext<'_>) {
        let p = ctx.position;
        self.events
            .lock()
            .unwrap()
            .push((hook, p.epoch, p.batch, p.global_step));
    }
}

impl Callback for Recorder {
    fn on_train_epoch_start(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        self.note("epoch_start", ctx);
        Ok(())
    }

    fn on_train_epoch_end(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        self.note("epoch_end", ctx);
        Ok(())
    }

    fn on_validation_start(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        self.note("validation", ctx);
        Ok(())
    }

    fn on_train_batch_end(
        &mut self,
        ctx: &mut HookContext<'_>,
        _step: &StepView<'_>,
        stepped: bool,
    ) -> Result<()> {
        self.note(if stepped { "step" } else { "micro_batch" }, ctx);
        if stepped {
            self.weights.lock().unwrap().push(weight(ctx.model));
            if self.stop_at_step == Some(ctx.position.global_step) {
                ctx.control.stop("the recorder asked");
            }
        }
        if let Some((epoch, index, path)) = &self.save_at
            && (*epoch, *index + 1) == (ctx.position.epoch, ctx.position.batch)
        {
            ctx.control.save(path.clone(), false);
        }
        Ok(())
    }

    fn on_save_checkpoint(&mut self) -> Result<serde_json::Value> {
        Ok(serde_json::json!(self.events.lock().unwrap().len()))
    }
}

/// A logger that keeps every row.
pub struct Rows(pub Arc<Mutex<Vec<LogRow>>>);

impl Logger for Rows {
    fn start(&mut self, _run: &RunInfo) -> Result<()> {
        Ok(())
    }

    fn log(&mut self, row: &LogRow) -> Result<()> {
        self.0.lock().unwrap().push(row.clone());
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// What a test run records.
#[derive(Default, Clone)]
pub struct Records {
    pub events: Arc<Mutex<Vec<Event>>>,
    pub weights: Arc<Mutex<Vec<f64>>>,
    pub rows: Arc<Mutex<Vec<LogRow>>>,
    pub schedule: Arc<Mutex<(usize, usize)>>,
}

impl Records {
    /// The (epoch, batch) of every call of `hook`.
    pub fn at(&self, hook: &str) -> Vec<(usize, usize)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.0 == hook)
            .map(|e| (e.1, e.2))
            .collect()
    }

    /// The (step, value) of every row that logged `name`.
    pub fn logged(&self, name: &str) -> Vec<(usize, f64)> {
        self.rows
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| {
                r.values
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| (r.step, *v))
            })
            .collect()
    }
}

/// A scratch run directory for one test.
pub fn run_info(name: &str) -> RunInfo {
    let dir = std::env::temp_dir().join(format!("stoker-loop-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    RunInfo {
        name: name.into(),
        version: 0,
        dir,
        config_yaml: String::new(),
    }
}

/// The loop's arguments from YAML (no summary, no implicit checkpoint unless asked).
pub fn args(yaml: &str) -> LoopArgs {
    let text = format!("enable_model_summary: false\nnum_sanity_val_steps: 0\n{yaml}");
    stoker_core::__private::serde_yaml::from_str(&text).unwrap()
}

/// Trains `data` from weight `w0` with `args`, `step` and `recorder`, resuming from `resume`.
pub fn fit(
    run: &RunInfo,
    args: &LoopArgs,
    data: Ramp,
    w0: f32,
    step: impl TrainingStep + 'static,
    recorder: Recorder,
    resume: Option<PathBuf>,
) -> (FitReport, Records) {
    let records = Records {
        events: Arc::clone(&recorder.events),
        weights: Arc::clone(&recorder.weights),
        ..Records::default()
    };
    let device = Device::flex();
    let ctx = BuildContext {
        device: device.clone(),
        seed: 0,
        data: Some(data.info.clone()),
        parameters: None,
        base_lr: Some(0.1),
        horizon: None,
    };
    let built = Loop::build(args, &ctx).unwrap();
    let metrics = || -> Vec<Box<dyn Metric>> { vec![Box::new(MeanLoss::default())] };
    let resume = resume.map(|path| {
        let checkpoint = checkpoint::load(&path).unwrap();
        let state = CheckpointState::from_checkpoint(&path, &checkpoint).unwrap();
        Resume {
            path,
            checkpoint,
            state,
        }
    });
    let parts = TrainingParts {
        device,
        seed: 0,
        data: std::sync::Arc::new(data),
        model: line(w0),
        loss: Box::new(Mse),
        metrics: SplitMetrics {
            train: metrics(),
            val: metrics(),
            test: metrics(),
            named_val: Vec::new(),
        },
        optimizer: SgdConfig::new().init(),
        optimizer_name: "sgd".into(),
        scheduler: Box::new(Counting {
            lr: 0.1,
            counts: Arc::clone(&records.schedule),
        }),
        loggers: Loggers::new(vec![(
            "rows".into(),
            Box::new(Rows(Arc::clone(&records.rows))),
        )]),
        callbacks: vec![("Recorder".into(), Box::new(recorder))],
        augmentations: Default::default(),
        resume,
    };
    let mut trainer = StepTrainer::new(built, step);
    let report = trainer.fit(parts, run).unwrap();
    (report, records)
}
