//! What every trainer that runs the loop takes from its `LoopArgs`: a trainer spec flattens
//! [`LoopArgs`](crate::LoopArgs) as a field `loop_args`, and
//! [`loop_args_methods!`](crate::loop_args_methods) writes the `TrainerSpec` methods that read
//! them, so that no trainer plugin forgets one (its `precision: bf16-true`, `auto_lr_find` or
//! `auto_scale_batch_size` would be ignored without a word).

#[doc(hidden)]
pub use stoker::burn::tensor::FloatDType;
#[doc(hidden)]
pub use stoker::data::DataInfo;
#[doc(hidden)]
pub use stoker::schedule::Horizon;
#[doc(hidden)]
pub use stoker::tuning::{BatchSizeArgs, LrFindArgs};

/// Inside `impl TrainerSpec for MySpec`, where `MySpec` has `#[serde(flatten)] loop_args:
/// LoopArgs`: the methods `horizon`, `auto_resume`, `float_dtype`, `auto_lr_find` and
/// `auto_scale_batch_size`, each read from `self.loop_args`.
#[macro_export]
macro_rules! loop_args_methods {
    () => {
        fn horizon(&self, data: &$crate::loop_spec::DataInfo) -> $crate::loop_spec::Horizon {
            self.loop_args.horizon(data)
        }

        fn auto_resume(&self) -> bool {
            self.loop_args.auto_resume
        }

        fn float_dtype(&self) -> Option<$crate::loop_spec::FloatDType> {
            self.loop_args.float_dtype()
        }

        fn auto_lr_find(&self) -> Option<$crate::loop_spec::LrFindArgs> {
            self.loop_args.auto_lr_find.args()
        }

        fn auto_scale_batch_size(&self) -> Option<$crate::loop_spec::BatchSizeArgs> {
            self.loop_args.auto_scale_batch_size.args()
        }
    };
}
