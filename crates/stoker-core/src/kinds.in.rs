// The component kinds, declared once. Read by `stoker-core` (registry.rs and experiment.rs: `Kind`, `AnySpec`, the
// spec-kind impls, `Experiment`'s sections and the top-level keys) and by `stoker-derive`
// (`#[component(KIND, ...)]`), each with its own `kinds!` macro.
//
// Each entry: the doc of the kind, its `Kind` variant, its name (YAML, the CLI and
// `#[component(KIND, ...)]` spell it so), its spec trait (in `stoker_core::spec`), and where an
// experiment selects it:
//   [one FIELD "key"]                 a required top-level section holding one component
//   [default FIELD "key" "NAME"]      a top-level section with a default component
//   [list FIELD "key" [NAMES]]        a top-level list (NAMES when the key is absent)
//   [optional_list FIELD "key"]       a top-level list left out of config.yaml when empty
//   [nested "where"]                  named inside another component's args only
kinds! {
    /// A data module (`data:`): loads the splits and cuts them into batches.
    Data "data" DataSpec [one data "data"],
    /// A model (`model:`).
    Model "model" ModelSpec [one model "model"],
    /// A loss (`loss:`).
    Loss "loss" LossSpec [one loss "loss"],
    /// A metric (`metrics:`).
    Metric "metric" MetricSpec [list metrics "metrics" []],
    /// An optimizer (`optimizer:`).
    Optimizer "optimizer" OptimizerSpec [one optimizer "optimizer"],
    /// A learning-rate scheduler (`scheduler:`).
    Scheduler "scheduler" SchedulerSpec [default scheduler "scheduler" "constant"],
    /// A training loop (`trainer:`).
    Trainer "trainer" TrainerSpec [default trainer "trainer" "Default_trainer"],
    /// A callback (`callbacks:`).
    Callback "callback" CallbackSpec [list callbacks "callbacks" []],
    /// A physics term (a PDE residual, a boundary condition) inside a `physics_informed` loss or a physics-informed trainer.
    Physics "physics" PhysicsSpec [nested "a physics_informed loss's `residual:`/`boundary:`, or a physics-informed trainer's `residual:`"],
    /// A time-frequency representation of signals (STFT, wavelet transform, ...) that a model computes on the device.
    Transform "transform" TransformSpec [nested "a multi-representation model's `transforms:` (MultiTFR_CNN)"],
    /// A logger (`loggers:`).
    Logger "logger" LoggerSpec [list loggers "loggers" ["csv"]],
    /// A training-batch augmentation (`augmentations:`).
    Augmentation "augmentation" AugmentationSpec [optional_list augmentations "augmentations"],
    /// How training is spread over devices and processes (`trainer.args.strategy`).
    Strategy "strategy" StrategySpec [nested "trainer.args.strategy"],
    /// The number format a training step computes in (`trainer.args.precision`).
    Precision "precision" PrecisionSpec [nested "trainer.args.precision"],
    /// How a sweep proposes each trial's parameters (a sweep file's `sampler:`).
    Sampler "sampler" SamplerSpec [nested "a sweep file's `sampler:`"],
    /// When a sweep stops a trial early (a sweep file's `pruner:`).
    Pruner "pruner" PrunerSpec [nested "a sweep file's `pruner:`"],
    /// A parameter's range or choices (each entry of a sweep file's `space:`, written `{TYPE: ..., ...}`).
    Space "space" SpaceSpec [nested "a sweep file's `space:` entries"],
}
