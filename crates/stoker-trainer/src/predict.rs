//! Predictions for a split, written to a safetensors file.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use stoker::batch::TensorMap;
use stoker::data::{DataModule, Order, Shard, Split};
use stoker::error::{Result, StokerError};
use stoker::fs::write_atomic;
use stoker::model::DynModel;

/// Values gathered for one tensor across batches.
enum Column {
    Float(Vec<f32>),
    Int(Vec<i64>),
}

struct Gathered {
    name: String,
    sample_shape: Vec<usize>,
    rows: usize,
    values: Column,
}

fn gather(into: &mut Vec<Gathered>, prefix: &str, map: &TensorMap) -> Result<()> {
    let names: Vec<String> = map.names().map(str::to_string).collect();
    for name in names {
        let shape = map.shape(&name)?;
        let rows = shape.first().copied().unwrap_or(1);
        let key = format!("{prefix}{name}");
        let read_err = |e| StokerError::msg(format!("predict: `{name}`: {e:?}"));
        let column = if map.is_int(&name)? {
            Column::Int(
                map.int_flat(&name)?
                    .into_data()
                    .convert::<i64>()
                    .try_to_vec::<i64>()
                    .map_err(read_err)?,
            )
        } else {
            Column::Float(
                map.float_flat(&name)?
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .map_err(read_err)?,
            )
        };
        match into.iter_mut().find(|g| g.name == key) {
            Some(g) => {
                g.rows += rows;
                match (&mut g.values, column) {
                    (Column::Float(all), Column::Float(new)) => all.extend(new),
                    (Column::Int(all), Column::Int(new)) => all.extend(new),
                    _ => {
                        return Err(StokerError::msg(format!(
                            "predict: `{key}` changed its element type between batches"
                        )));
                    }
                }
            }
            None => into.push(Gathered {
                name: key,
                sample_shape: shape[1..].to_vec(),
                rows,
                values: column,
            }),
        }
    }
    Ok(())
}

/// Runs every batch of `split` (stored order) through `model` (an evaluation copy) and writes
/// each model output under its name, and each batch tensor as `batch.<name>`, to `path`
/// (safetensors; floats as F32, integers as I64). Returns the number of samples.
pub fn predict(
    model: &dyn DynModel,
    data: &dyn DataModule,
    split: Split,
    path: &Path,
) -> Result<usize> {
    let mut gathered = Vec::new();
    let mut batches = data.epoch(split, 0, Order::Sequential, Shard::WHOLE)?;
    let mut samples = 0;
    for index in 0..batches.len() {
        let batch = batches.batch(index)?;
        let output = model.forward(&batch)?;
        // Predictions in physical units when the data is normalized.
        let (batch, output) = data.decode(&batch, &output)?.unwrap_or((batch, output));
        samples += batch.batch_size();
        gather(&mut gathered, "", &output)?;
        gather(&mut gathered, "batch.", &batch)?;
    }
    let bytes: Vec<(String, Vec<usize>, Dtype, Vec<u8>)> = gathered
        .into_iter()
        .map(|g| {
            let mut shape = vec![g.rows];
            shape.extend(g.sample_shape);
            match g.values {
                Column::Float(v) => (
                    g.name,
                    shape,
                    Dtype::F32,
                    v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                ),
                Column::Int(v) => (
                    g.name,
                    shape,
                    Dtype::I64,
                    v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                ),
            }
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, shape, dtype, data)| {
            TensorView::new(*dtype, shape.clone(), data).map(|v| (name.clone(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| StokerError::msg(format!("predict: {e}")))?;
    let metadata = HashMap::from([("stoker.split".to_string(), split.as_str().to_string())]);
    let file = safetensors::serialize(views, Some(metadata))
        .map_err(|e| StokerError::msg(format!("predict: {e}")))?;
    write_atomic(path, &file)?;
    Ok(samples)
}
