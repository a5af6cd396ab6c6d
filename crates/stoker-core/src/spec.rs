//! The spec traits: one per component kind. A spec is the deserialized `args` of a component;
//! `build` turns it into the runtime object.

use std::fmt::Debug;
use std::sync::Arc;

use burn::optim::ModuleOptimizer;
use burn::tensor::Device;

use crate::augment::Augmentation;
use crate::callback::Callback;
use crate::data::{DataInfo, DataModule};
use crate::error::BuildError;
use crate::logger::Logger;
use crate::loss::{Loss, PhysicsTerm};
use crate::metric::Metric;
use crate::model::DynModel;
use crate::precision::Precision;
use crate::schedule::{Horizon, LrScheduler};
use crate::strategy::Strategy;
use crate::trainer::Trainer;
use crate::transform::SignalTransform;

/// What a spec can know when it is built. Components are built in the order data, model,
/// loss, metrics, optimizer, trainer, scheduler, loggers; each later one sees more.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// The device data lives on (no autodiff). Models initialize on [`train_device`](Self::train_device).
    pub device: Device,
    /// `environment.seed`.
    pub seed: u64,
    /// What the data module holds (known from the model on).
    pub data: Option<DataInfo>,
    /// The model's parameter paths (known from the loss on).
    pub parameters: Option<Vec<String>>,
    /// The optimizer's learning rate (known from the scheduler on).
    pub base_lr: Option<f64>,
    /// The planned length of training (known from the scheduler on).
    pub horizon: Option<Horizon>,
}

impl BuildContext {
    /// A context that knows the data's float tensors `(name, sample shape)` and nothing
    /// later (seed 0, batches of 1): what building a model or a loss in a unit test needs.
    pub fn with_float_tensors(device: &Device, tensors: &[(&str, &[usize])]) -> BuildContext {
        let tensors = tensors
            .iter()
            .map(|(name, shape)| crate::data::TensorInfo {
                name: name.to_string(),
                sample_shape: shape.to_vec(),
                kind: crate::data::ElementKind::Float,
            })
            .collect();
        BuildContext {
            device: device.clone(),
            seed: 0,
            data: Some(DataInfo {
                tensors,
                split_sizes: [1, 0, 0],
                batch_size: 1,
            }),
            parameters: None,
            base_lr: None,
            horizon: None,
        }
    }

    /// The device models train on: `device` with autodiff.
    pub fn train_device(&self) -> Device {
        self.device.clone().autodiff()
    }

    /// What the data module holds.
    pub fn data(&self) -> Result<&DataInfo, BuildError> {
        self.data
            .as_ref()
            .ok_or_else(|| BuildError::new("the data is not known yet at this point of the build"))
    }

    /// The model's parameter paths (`layers.0.weight`, ...).
    pub fn parameters(&self) -> Result<&[String], BuildError> {
        self.parameters
            .as_deref()
            .ok_or_else(|| BuildError::new("the model is not known yet at this point of the build"))
    }

    /// The optimizer's learning rate.
    pub fn base_lr(&self) -> Result<f64, BuildError> {
        self.base_lr.ok_or_else(|| {
            BuildError::new("the learning rate is not known yet at this point of the build")
        })
    }

    /// The planned length of training.
    pub fn horizon(&self) -> Result<Horizon, BuildError> {
        self.horizon.ok_or_else(|| {
            BuildError::new("the training horizon is not known yet at this point of the build")
        })
    }
}

/// Builds a data module (`data:`).
pub trait DataSpec: Debug + Send + Sync {
    /// Opens the files (or generates the samples) and prepares the splits.
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn DataModule>, BuildError>;
}

/// Builds a model (`model:`).
pub trait ModelSpec: Debug + Send + Sync {
    /// Initializes the model on `ctx.train_device()`, checking it fits `ctx.data()`.
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn DynModel>, BuildError>;
}

/// Builds a loss (`loss:`).
pub trait LossSpec: Debug + Send + Sync {
    /// Builds the loss.
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Loss>, BuildError>;
}

/// Builds a metric (`metrics:`); called once per split.
pub trait MetricSpec: Debug + Send + Sync {
    /// Builds one instance.
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Metric>, BuildError>;
}

/// Builds an optimizer (`optimizer:`) on burn-optim's [`ModuleOptimizer`].
pub trait OptimizerSpec: Debug + Send + Sync {
    /// Builds the optimizer.
    fn build(&self, ctx: &BuildContext) -> Result<ModuleOptimizer, BuildError>;

    /// The base learning rate.
    fn lr(&self) -> f64;
}

/// Builds a learning-rate scheduler (`scheduler:`).
pub trait SchedulerSpec: Debug + Send + Sync {
    /// Builds the scheduler from `ctx.base_lr()` and `ctx.horizon()`.
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn LrScheduler>, BuildError>;
}

/// Builds a training loop (`trainer:`).
pub trait TrainerSpec: Debug + Send + Sync {
    /// Builds the loop.
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Trainer>, BuildError>;

    /// How long this loop plans to train, given the data.
    fn horizon(&self, data: &DataInfo) -> Horizon;

    /// Whether a run should continue from the newest checkpoint of the experiment when one
    /// exists (`trainer.args.auto_resume`).
    fn auto_resume(&self) -> bool {
        false
    }

    /// The float type every tensor of the device takes by default during this training
    /// (`bf16` for `precision: bf16-true`), or `None` for float32. The runner configures the
    /// device with it before the data and the model are built.
    fn float_dtype(&self) -> Option<burn::tensor::FloatDType> {
        None
    }

    /// The learning-rate finder to run before training (`trainer.args.auto_lr_find`), if any:
    /// the runner runs it and trains with the rate it suggests.
    fn auto_lr_find(&self) -> Option<crate::tuning::LrFindArgs> {
        None
    }

    /// The batch-size finder to run before training (`trainer.args.auto_scale_batch_size`), if
    /// any: the runner runs it and trains with the batch size it finds.
    fn auto_scale_batch_size(&self) -> Option<crate::tuning::BatchSizeArgs> {
        None
    }
}

/// Builds a callback (`callbacks:`).
pub trait CallbackSpec: Debug + Send + Sync {
    /// Builds the callback.
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Callback>, BuildError>;
}

/// Builds a training-batch augmentation (`augmentations:`).
pub trait AugmentationSpec: Debug + Send + Sync {
    /// Builds the augmentation.
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Augmentation>, BuildError>;
}

/// Builds a physics term (a PDE residual, a boundary condition) that a `physics_informed` loss
/// names.
pub trait PhysicsSpec: Debug + Send + Sync {
    /// Builds the term.
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn PhysicsTerm>, BuildError>;
}

/// Builds a time-frequency representation of signals of `length` samples, that a model names
/// (MultiTFR_CNN's `transforms:`).
pub trait TransformSpec: Debug + Send + Sync {
    /// Builds the transform.
    fn build(&self, length: usize) -> Result<Arc<dyn SignalTransform>, BuildError>;
}

/// Builds a logger (`loggers:`).
pub trait LoggerSpec: Debug + Send + Sync {
    /// Builds the logger.
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Logger>, BuildError>;
}

/// Builds a strategy (`trainer.args.strategy`): how training is spread over devices and
/// processes.
pub trait StrategySpec: Debug + Send + Sync {
    /// Builds the strategy.
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Strategy>, BuildError>;
}

/// Builds a precision plugin (`trainer.args.precision`): the number format of a training step.
pub trait PrecisionSpec: Debug + Send + Sync {
    /// Builds the precision plugin.
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Precision>, BuildError>;
}

/// Builds a sweep's sampler (a sweep file's `sampler:`).
pub trait SamplerSpec: Debug + Send + Sync {
    /// Builds the sampler.
    fn build(&self) -> Result<Box<dyn crate::sweep::Sampler>, BuildError>;

    /// The seed the sampler's draws derive from.
    fn seed(&self) -> u64;
}

/// Builds a sweep's pruner (a sweep file's `pruner:`).
pub trait PrunerSpec: Debug + Send + Sync {
    /// Builds the pruner.
    fn build(&self) -> Result<Box<dyn crate::sweep::Pruner>, BuildError>;
}

/// One parameter of a sweep's space: `{log_uniform: [1e-4, 1e-2]}`, `{int: [16, 64], step: 16}`,
/// `{choice: [a, b]}`. The entry itself is the args (the type's key holds the range or the
/// choices).
pub trait SpaceSpec: Debug + Send + Sync {
    /// The parameter's distribution (an error names the argument at fault).
    fn distribution(&self) -> Result<crate::sweep::Distribution, BuildError>;

    /// The YAML value a trial sets for an internal value (the number, or the choice as written).
    fn value(&self, internal: f64) -> serde_yaml::Value;
}
