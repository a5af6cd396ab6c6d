//! stoker's data modules.
//!
//! - `TensorFile`: tensors chosen by name from `.npz`, `.safetensors` or `.csv` files, optionally
//!   normalized with statistics fitted on the training split (`stoker::dataset::normalize`),
//!   with named validation and test sets ([`named_sets`]).
//! - `SyntheticRegression`, `SyntheticClassification`: generated from the seed.
//! - Augmentations of training batches ([`augment`]): `gaussian_noise`, `amplitude_scale`,
//!   `time_shift`, `time_masking`; [`patch`]: `patch_dropout`, `patch_shuffle`, `cutout`,
//!   `patch_jitter` for sequence models; [`rand_augment`]: `rand_augment`, N of them per batch at
//!   a shared magnitude; and [`mix`]: `mixup`, `cutmix`, which turn class labels into class
//!   probabilities.
//!
//! All of them hold their splits on the training device (`stoker::dataset::in_memory`, the
//! building blocks plugins' data modules use too); a training batch is a seeded row selection
//! whose order depends only on the seed and the epoch, so that resuming reproduces it.

pub mod augment;
pub mod mix;
pub mod named_sets;
pub mod patch;
pub mod rand_augment;
pub mod synthetic;
pub mod tensor_file;
mod tensor_file_mapped;
