//! `stoker stats CONFIG`: statistics of the training split's tensors, in physical units, and the
//! normalization statistics the config fits (the fluid seed's `--compute_normalization_stats`).

use std::path::Path;

use stoker::batch::Output;
use stoker::burn::tensor::Tensor;
use stoker::data::{Order, Shard, Split};

use crate::commands::prepare;
use crate::{EXIT_BAD_INPUT, EXIT_FAILED};

/// Running sums of one float tensor.
struct Running {
    name: String,
    count: f64,
    sum: f64,
    squares: f64,
    min: f64,
    max: f64,
}

fn host(t: Tensor<1>) -> f64 {
    t.into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .map(|v| v[0])
        .unwrap_or(f64::NAN)
}

/// Prints the statistics; with `output`, also writes the normalization file there.
pub fn stats(config: &Path, sets: &[String], output: Option<&Path>) -> i32 {
    let assembled = match prepare(config, sets) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let data = assembled.parts.data.as_ref();
    let mut running: Vec<Running> = Vec::new();
    let result = (|| -> stoker::Result<()> {
        let mut batches = data.epoch(Split::Train, 0, Order::Sequential, Shard::WHOLE)?;
        for index in 0..batches.len() {
            let batch = batches.batch(index)?;
            let batch = data
                .decode(&batch, &Output::output())?
                .map_or(batch, |(b, _)| b);
            for (name, _) in batch.iter() {
                if batch.is_int(name)? {
                    continue;
                }
                let flat = batch.float_flat(name)?;
                let n = flat.dims().iter().product::<usize>();
                let flat: Tensor<1> = flat.reshape([n]);
                let entry = match running.iter_mut().position(|r| r.name == name) {
                    Some(i) => &mut running[i],
                    None => {
                        running.push(Running {
                            name: name.to_string(),
                            count: 0.0,
                            sum: 0.0,
                            squares: 0.0,
                            min: f64::INFINITY,
                            max: f64::NEG_INFINITY,
                        });
                        running.last_mut().expect("just pushed")
                    }
                };
                entry.count += n as f64;
                entry.sum += host(flat.clone().sum());
                entry.squares += host(flat.clone().square().sum());
                entry.min = entry.min.min(host(flat.clone().min().reshape([1])));
                entry.max = entry.max.max(host(flat.max().reshape([1])));
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        eprintln!("error: reading the training split failed: {e}");
        return EXIT_FAILED;
    }
    let train = data.info().len(Split::Train);
    println!("training split: {train} samples (physical units)");
    println!(
        "  {:<16} {:>12} {:>12} {:>12} {:>12}",
        "tensor", "mean", "std", "min", "max"
    );
    for r in &running {
        let mean = r.sum / r.count;
        let var = (r.squares / r.count - mean * mean).max(0.0) * r.count / (r.count - 1.0).max(1.0);
        println!(
            "  {:<16} {:>12.6} {:>12.6} {:>12.6} {:>12.6}",
            r.name,
            mean,
            var.sqrt(),
            r.min,
            r.max
        );
    }
    match data.normalization() {
        Some(report) => {
            println!("normalization (data.args.normalize), fitted on the training split:");
            for line in report.summary.lines() {
                println!("  {line}");
            }
            if let Some(path) = output {
                let written =
                    stoker_run::normalization::to_safetensors(&report).and_then(|bytes| {
                        stoker::fs::write_atomic(path, &bytes).map_err(|e| e.to_string())
                    });
                if let Err(e) = written {
                    eprintln!("error: cannot write {}: {e}", path.display());
                    return EXIT_FAILED;
                }
                println!("{}", path.display());
            }
        }
        None => {
            println!(
                "no normalization configured; add e.g. `data.args.normalize: {{x: gaussian_pixel, y: gaussian_pixel}}` (TensorFile)"
            );
            if output.is_some() {
                eprintln!("error: --output needs a normalization to write");
                return EXIT_BAD_INPUT;
            }
        }
    }
    0
}
