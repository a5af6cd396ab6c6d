//! stoker's data modules.
//!
//! - `TensorFile`: tensors chosen by name from `.npz`, `.safetensors` or `.csv` files, optionally
//!   normalized with statistics fitted on the training split ([`normalize`]).
//! - `SyntheticRegression`, `SyntheticClassification`: generated from the seed.
//! - Augmentations of training batches ([`augment`]): `gaussian_noise`, `amplitude_scale`,
//!   `time_shift`, `time_masking`; and [`mix`]: `mixup`, `cutmix`, which turn class labels into
//!   class probabilities.
//!
//! All of them hold their splits on the training device ([`in_memory::InMemoryData`]); a
//! training batch is a seeded row selection whose order depends only on the seed and the
//! epoch, so that resuming reproduces it.

pub mod host;
#[macro_use]
pub mod in_memory;
pub mod augment;
pub mod csv_file;
pub mod mix;
pub mod normalize;
pub mod npy;
pub mod safetensors_file;
pub mod synthetic;
pub mod tensor_file;
