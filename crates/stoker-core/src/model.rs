//! Models: the small trait a plugin implements on a Burn `Module`, and the object-safe
//! [`DynModel`] the loop drives.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::{Gradients, Tensor};

use crate::batch::{Batch, Output};
use crate::error::{Result, StokerError};

/// A model: an ordinary Burn module with a forward pass from a [`Batch`] to an [`Output`].
///
/// Implement this on your `#[derive(Module)]` struct and return `Box::new(ModelHandle::new(m))`
/// (or [`boxed`]) from your `ModelSpec::build`.
pub trait Model: Module + 'static {
    /// The forward pass. Read inputs by name (`batch.float::<2>("x")?`) and return named outputs
    /// (conventionally `pred`).
    fn forward(&self, batch: &Batch) -> Result<Output>;

    /// The forward pass of evaluation (validation, test, `eval`, `predict`): what the model
    /// does at inference time when that differs from training, such as an autoregressive
    /// rollout beside the teacher-forced predictions. Defaults to [`forward`](Model::forward).
    fn forward_eval(&self, batch: &Batch) -> Result<Output> {
        self.forward(batch)
    }
}

/// What one parameter is, for summaries.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamInfo {
    /// Its path in the module tree (`layers.0.weight`).
    pub path: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Whether the optimizer updates it.
    pub trainable: bool,
    /// Bytes per element (4 for f32, 2 for bf16).
    pub element_bytes: usize,
}

/// The object-safe model the training loop drives. [`ModelHandle`] implements it for any
/// [`Model`]; plugin authors do not implement it themselves.
pub trait DynModel: Send {
    /// The forward pass.
    fn forward(&self, batch: &Batch) -> Result<Output>;

    /// Back-propagates `loss` and collects the gradients of this model's parameters.
    fn backward(&self, loss: Tensor<1>) -> GradientsParams;

    /// The model's parameters' gradients out of a backward pass's `grads` (what
    /// [`backward`](DynModel::backward) returns, for a step that also wants the gradients of
    /// other leaves, such as the input's).
    fn params_gradients(&self, grads: Gradients) -> GradientsParams;

    /// Applies one optimizer step with learning rate `lr`.
    fn optimizer_step(&mut self, optimizer: &mut ModuleOptimizer, lr: f64, grads: GradientsParams);

    /// A copy for evaluation: no autodiff, dropout and other training behaviour off.
    fn for_eval(&self) -> Box<dyn DynModel>;

    /// The number of scalar parameters.
    fn num_params(&self) -> usize;

    /// Every parameter's path and shape.
    fn parameters(&self) -> Vec<ParamInfo>;

    /// The weights as a safetensors file in PyTorch's layout (`nn.Linear` weights are
    /// `[out, in]`), loadable with `safetensors.torch.load_file`.
    fn to_safetensors(&self) -> Result<Vec<u8>>;

    /// Loads weights written by [`to_safetensors`](DynModel::to_safetensors). Every parameter
    /// must be present with the same shape.
    fn load_safetensors(&mut self, bytes: Vec<u8>) -> Result<()>;

    /// Every parameter's value, flattened and detached from autodiff, with its path.
    fn parameters_flat(&self) -> Vec<(String, Tensor<1>)>;

    /// Replaces every parameter by `f(path, flattened value)` (same number of values), keeping
    /// its id and whether it requires gradients. Used for pruning and restoring weights.
    fn map_parameters(&mut self, f: &mut dyn FnMut(&str, Tensor<1>) -> Tensor<1>);

    /// Every parameter's gradient in `grads`, flattened, with the parameter's path.
    fn gradients_flat(&self, grads: &GradientsParams) -> Vec<(String, Tensor<1>)>;

    /// Replaces every gradient in `grads` by `f(path, flattened gradient)`.
    fn map_gradients(
        &self,
        grads: GradientsParams,
        f: &mut dyn FnMut(&str, Tensor<1>) -> Tensor<1>,
    ) -> GradientsParams;

    /// The sum of two gradient sets of this model (gradient accumulation).
    fn add_gradients(&self, a: GradientsParams, b: GradientsParams) -> GradientsParams;

    /// Every parameter's id (the key of its optimizer state), by path.
    fn param_ids(&self) -> BTreeMap<String, u64>;

    /// Gives parameters the ids in `ids` (by path), so that an optimizer state saved with those
    /// ids applies to this model. Every parameter must be named.
    fn set_param_ids(&mut self, ids: &BTreeMap<String, u64>) -> Result<()>;
}

/// Wraps a [`Model`] into a [`DynModel`].
pub struct ModelHandle<M: Model> {
    // `None` only for the instant an optimizer step moves the module through the optimizer.
    module: Option<M>,
    // The evaluation copy ([`DynModel::for_eval`]) runs [`Model::forward_eval`].
    evaluating: bool,
}

impl<M: Model> ModelHandle<M> {
    /// Wraps `module`.
    pub fn new(module: M) -> Self {
        ModelHandle {
            module: Some(module),
            evaluating: false,
        }
    }

    /// The wrapped module.
    pub fn module(&self) -> &M {
        self.module
            .as_ref()
            .expect("the module is present outside an optimizer step")
    }
}

/// Boxes a [`Model`] as the [`DynModel`] a `ModelSpec::build` returns.
pub fn boxed<M: Model>(module: M) -> Box<dyn DynModel> {
    Box::new(ModelHandle::new(module))
}

/// A function over one flattened tensor of a parameter, given the parameter's path.
pub type FlatFn<'a> = dyn FnMut(&str, Tensor<1>) -> Tensor<1> + 'a;

/// Tracks the module path while visiting or mapping.
#[derive(Default)]
struct PathTracker {
    path: Vec<String>,
}

impl PathTracker {
    fn enter(&mut self, name: &str) {
        self.path.push(name.to_string());
    }

    fn exit(&mut self) {
        self.path.pop();
    }

    fn current(&self) -> String {
        self.path.join(".")
    }
}

/// Runs a closure on each float parameter's flattened value or gradient.
struct FlatVisitor<'a, F: FnMut(&str, ParamId, Tensor<1>)> {
    path: PathTracker,
    grads: Option<&'a GradientsParams>,
    f: F,
}

impl<F: FnMut(&str, ParamId, Tensor<1>)> ModuleVisitor for FlatVisitor<'_, F> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.enter(name);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = match self.grads {
            Some(grads) => match grads.get::<D>(param.id) {
                Some(grad) => grad,
                None => return,
            },
            None => param.val().detach().inner(),
        };
        let n = value.shape().num_elements();
        (self.f)(&self.path.current(), param.id, value.reshape([n]));
    }
}

/// Maps each float parameter through a closure on its flattened value.
struct FlatMapper<'a> {
    path: PathTracker,
    f: &'a mut dyn FnMut(&str, Tensor<1>) -> Tensor<1>,
}

impl ModuleMapper for FlatMapper<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.enter(name);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let require_grad = tensor.is_require_grad();
        let dims = tensor.dims();
        let n = tensor.shape().num_elements();
        let flat = tensor.detach().inner().reshape([n]);
        let mapped = (self.f)(&self.path.current(), flat).reshape(dims);
        let mut value = Tensor::from_inner(mapped);
        if require_grad {
            value = value.require_grad();
        }
        Param::from_mapped_value(id, value, mapper)
    }
}

/// Gives parameters new ids by path.
struct IdMapper<'a> {
    path: PathTracker,
    ids: &'a BTreeMap<String, u64>,
    missing: Vec<String>,
}

impl ModuleMapper for IdMapper<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.enter(name);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.path.current();
        let (id, tensor, mapper) = param.consume();
        let id = match self.ids.get(&path) {
            Some(&saved) => ParamId::from(saved),
            None => {
                self.missing.push(path);
                id
            }
        };
        Param::from_mapped_value(id, tensor, mapper)
    }
}

/// Rewrites every gradient through a closure, or adds another gradient set into it.
struct GradMapper<'a> {
    path: PathTracker,
    grads: GradientsParams,
    other: Option<GradientsParams>,
    f: Option<&'a mut FlatFn<'a>>,
}

impl ModuleVisitor for GradMapper<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.enter(name);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let own = self.grads.remove::<D>(param.id);
        let other = self.other.as_mut().and_then(|o| o.remove::<D>(param.id));
        let grad = match (own, other) {
            (Some(a), Some(b)) => a + b,
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return,
        };
        let grad = match self.f.as_mut() {
            Some(f) => {
                let dims = grad.dims();
                let n = grad.shape().num_elements();
                f(&self.path.current(), grad.reshape([n])).reshape(dims)
            }
            None => grad,
        };
        self.grads.register::<D>(param.id, grad);
    }
}

struct ParamCollector {
    path: Vec<String>,
    params: Vec<ParamInfo>,
}

impl burn::module::ModuleVisitor for ParamCollector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        self.params.push(ParamInfo {
            path: self.path.join("."),
            shape: param.lazy_shape().to_vec(),
            trainable: param.is_require_grad(),
            element_bytes: param.val().dtype().size(),
        });
    }
}

impl<M: Model> DynModel for ModelHandle<M> {
    fn forward(&self, batch: &Batch) -> Result<Output> {
        if self.evaluating {
            self.module().forward_eval(batch)
        } else {
            self.module().forward(batch)
        }
    }

    fn backward(&self, loss: Tensor<1>) -> GradientsParams {
        self.params_gradients(loss.backward())
    }

    fn params_gradients(&self, grads: Gradients) -> GradientsParams {
        GradientsParams::from_grads(grads, self.module())
    }

    fn optimizer_step(&mut self, optimizer: &mut ModuleOptimizer, lr: f64, grads: GradientsParams) {
        let module = self.module.take().expect("the module is present");
        self.module = Some(optimizer.step(lr, module, grads));
    }

    fn for_eval(&self) -> Box<dyn DynModel> {
        Box::new(ModelHandle {
            module: Some(self.module().valid()),
            evaluating: true,
        })
    }

    fn num_params(&self) -> usize {
        self.module().num_params()
    }

    fn parameters(&self) -> Vec<ParamInfo> {
        let mut collector = ParamCollector {
            path: Vec::new(),
            params: Vec::new(),
        };
        self.module().visit(&mut collector);
        collector.params
    }

    fn to_safetensors(&self) -> Result<Vec<u8>> {
        // Running statistics (batch norm's) hold their latest update apart, per thread, until
        // they are read again; `valid` folds it into the value that is saved, as the next read
        // would. Without it a checkpoint keeps the statistics of one step before its weights.
        drop(self.module().valid());
        let mut store = SafetensorsStore::from_bytes(None).with_to_adapter(BurnToPyTorchAdapter);
        self.module()
            .save_into(&mut store)
            .map_err(|e| StokerError::msg(format!("could not serialize the model: {e}")))?;
        store
            .get_bytes()
            .map_err(|e| StokerError::msg(format!("could not serialize the model: {e}")))
    }

    fn parameters_flat(&self) -> Vec<(String, Tensor<1>)> {
        let mut out = Vec::new();
        let mut visitor = FlatVisitor {
            path: PathTracker::default(),
            grads: None,
            f: |path: &str, _id: ParamId, value: Tensor<1>| out.push((path.to_string(), value)),
        };
        self.module().visit(&mut visitor);
        out
    }

    fn map_parameters(&mut self, f: &mut dyn FnMut(&str, Tensor<1>) -> Tensor<1>) {
        let module = self.module.take().expect("the module is present");
        let mut mapper = FlatMapper {
            path: PathTracker::default(),
            f,
        };
        self.module = Some(module.map(&mut mapper));
    }

    fn gradients_flat(&self, grads: &GradientsParams) -> Vec<(String, Tensor<1>)> {
        let mut out = Vec::new();
        let mut visitor = FlatVisitor {
            path: PathTracker::default(),
            grads: Some(grads),
            f: |path: &str, _id: ParamId, value: Tensor<1>| out.push((path.to_string(), value)),
        };
        self.module().visit(&mut visitor);
        out
    }

    fn map_gradients(
        &self,
        grads: GradientsParams,
        f: &mut dyn FnMut(&str, Tensor<1>) -> Tensor<1>,
    ) -> GradientsParams {
        let mut mapper = GradMapper {
            path: PathTracker::default(),
            grads,
            other: None,
            f: Some(f),
        };
        self.module().visit(&mut mapper);
        mapper.grads
    }

    fn add_gradients(&self, a: GradientsParams, b: GradientsParams) -> GradientsParams {
        let mut mapper = GradMapper {
            path: PathTracker::default(),
            grads: a,
            other: Some(b),
            f: None,
        };
        self.module().visit(&mut mapper);
        mapper.grads
    }

    fn param_ids(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        let mut visitor = FlatVisitor {
            path: PathTracker::default(),
            grads: None,
            f: |path: &str, id: ParamId, _value: Tensor<1>| {
                out.insert(path.to_string(), id.val());
            },
        };
        self.module().visit(&mut visitor);
        out
    }

    fn set_param_ids(&mut self, ids: &BTreeMap<String, u64>) -> Result<()> {
        let module = self.module.take().expect("the module is present");
        let mut mapper = IdMapper {
            path: PathTracker::default(),
            ids,
            missing: Vec::new(),
        };
        self.module = Some(module.map(&mut mapper));
        if mapper.missing.is_empty() {
            Ok(())
        } else {
            Err(StokerError::msg(format!(
                "the checkpoint has no optimizer ids for parameters {}",
                mapper.missing.join(", ")
            )))
        }
    }

    fn load_safetensors(&mut self, bytes: Vec<u8>) -> Result<()> {
        let mut store = SafetensorsStore::from_bytes(Some(bytes))
            .with_from_adapter(PyTorchToBurnAdapter)
            .allow_partial(false)
            .validate(true);
        let module = self.module.as_mut().expect("the module is present");
        let result = module
            .load_from(&mut store)
            .map_err(|e| StokerError::msg(format!("the weights do not fit this model: {e}")))?;
        if !result.errors.is_empty() || !result.missing.is_empty() {
            return Err(StokerError::msg(format!(
                "the weights do not fit this model: {result}"
            )));
        }
        Ok(())
    }
}
