//! Models: the small trait a plugin implements on a Burn `Module`, and the object-safe
//! [`DynModel`] the loop drives.

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::Tensor;

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
}

/// What one parameter is, for summaries.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamInfo {
    /// Its path in the module tree (`layers.0.weight`).
    pub path: String,
    /// Its shape.
    pub shape: Vec<usize>,
}

/// The object-safe model the training loop drives. [`ModelHandle`] implements it for any
/// [`Model`]; plugin authors do not implement it themselves.
pub trait DynModel: Send {
    /// The forward pass.
    fn forward(&self, batch: &Batch) -> Result<Output>;

    /// Back-propagates `loss` and collects the gradients of this model's parameters.
    fn backward(&self, loss: Tensor<1>) -> GradientsParams;

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
}

/// Wraps a [`Model`] into a [`DynModel`].
pub struct ModelHandle<M: Model> {
    // `None` only for the instant an optimizer step moves the module through the optimizer.
    module: Option<M>,
}

impl<M: Model> ModelHandle<M> {
    /// Wraps `module`.
    pub fn new(module: M) -> Self {
        ModelHandle {
            module: Some(module),
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
        });
    }
}

impl<M: Model> DynModel for ModelHandle<M> {
    fn forward(&self, batch: &Batch) -> Result<Output> {
        self.module().forward(batch)
    }

    fn backward(&self, loss: Tensor<1>) -> GradientsParams {
        GradientsParams::from_grads(loss.backward(), self.module())
    }

    fn optimizer_step(&mut self, optimizer: &mut ModuleOptimizer, lr: f64, grads: GradientsParams) {
        let module = self.module.take().expect("the module is present");
        self.module = Some(optimizer.step(lr, module, grads));
    }

    fn for_eval(&self) -> Box<dyn DynModel> {
        Box::new(ModelHandle::new(self.module().valid()))
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
        let mut store = SafetensorsStore::from_bytes(None).with_to_adapter(BurnToPyTorchAdapter);
        self.module()
            .save_into(&mut store)
            .map_err(|e| StokerError::msg(format!("could not serialize the model: {e}")))?;
        store
            .get_bytes()
            .map_err(|e| StokerError::msg(format!("could not serialize the model: {e}")))
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
