//! Uploading a mapped tensor to the device in pieces: the device tensor is allocated first and
//! filled piece by piece (in place on LibTorch), so loading a split costs about its own size,
//! not the file's bytes, a decoded copy and a device copy at once.

use stoker::burn::tensor::kind::BridgeTensor;
use stoker::burn::tensor::{Device, Int, Tensor, s};
use stoker::data::ElementKind;

use crate::host::{HostData, HostTensor};
use crate::in_memory::{MAX_RANK, upload};
use crate::mapped::Sharded;
use crate::normalize::Stats;

/// The host bytes a piece holds.
const PIECE_BYTES: usize = 16 << 20;

/// What each piece goes through on the host before it is uploaded.
#[derive(Clone, Copy)]
pub struct Pieces<'a> {
    /// Statistics to encode it with.
    pub stats: Option<&'a Stats>,
    /// Refuse NaN and infinite values, naming the file and sample.
    pub check_finite: bool,
    /// The split's name, for messages.
    pub split: &'a str,
}

/// The first non-finite value of a piece read from `rows` of `tensor`, as a message naming the
/// file, the tensor, the sample in that file and the position in the sample.
pub fn non_finite(tensor: &Sharded, rows: &[usize], host: &HostTensor) -> Option<String> {
    match &host.data {
        HostData::F32(values) => non_finite_value(tensor, rows, values),
        HostData::I64(_) => None,
    }
}

/// [`non_finite`] of the values read from `rows` of `tensor`.
pub fn non_finite_value(tensor: &Sharded, rows: &[usize], values: &[f32]) -> Option<String> {
    let (sample, position, value, _) =
        crate::finite::first_non_finite_value(values, tensor.sample_shape())?;
    let (file, sample) = tensor.location(rows[sample]);
    Some(format!(
        "`{}`: tensor `{}` holds {value} at sample {sample}, position {position:?}",
        file.display(),
        tensor.name(),
    ))
}

/// `tensor`'s samples `rows` (every sample for `None`), in that order, on `device`.
pub fn upload_rows(
    tensor: &Sharded,
    rows: Option<&[usize]>,
    pieces: Pieces<'_>,
    device: &Device,
) -> Result<BridgeTensor, String> {
    let all: Vec<usize>;
    let rows = match rows {
        Some(rows) => rows,
        None => {
            all = (0..tensor.samples()).collect();
            &all
        }
    };
    let mut shape = vec![rows.len()];
    shape.extend_from_slice(tensor.sample_shape());
    let width: usize = tensor.sample_shape().iter().product::<usize>().max(1);
    let per_piece = (PIECE_BYTES / (8 * width)).max(1);
    let int = tensor.kind() == ElementKind::Int;
    let piece = |start: usize, end: usize| -> Result<BridgeTensor, String> {
        let part = &rows[start..end];
        let mut host = tensor.gather(part)?;
        if pieces.check_finite
            && let Some(message) = non_finite(tensor, part, &host)
        {
            return Err(message);
        }
        if let Some(stats) = pieces.stats {
            stats.encode(&mut host, pieces.split)?;
        }
        upload(host, device).map_err(|e| e.to_string())
    };
    crate::by_rank!(shape.len(), R => {
        let dims: [usize; R] = shape.clone().try_into().expect("rank R");
        if int {
            let mut out = Tensor::<R, Int>::empty(dims, device);
            let mut start = 0;
            while start < rows.len() {
                let end = (start + per_piece).min(rows.len());
                let values = Tensor::<R, Int>::from_bridge(piece(start, end)?);
                out = out.slice_assign(s![start..end], values);
                start = end;
            }
            Ok(out.into_bridge())
        } else {
            let mut out = Tensor::<R>::empty(dims, device);
            let mut start = 0;
            while start < rows.len() {
                let end = (start + per_piece).min(rows.len());
                let values = Tensor::<R>::from_bridge(piece(start, end)?);
                out = out.slice_assign(s![start..end], values);
                start = end;
            }
            Ok(out.into_bridge())
        }
    }, Err(format!(
        "tensor `{}` has rank {} (samples included); at most {MAX_RANK} is supported",
        tensor.name(),
        shape.len()
    )))
}
