//! `stoker data shard SRC OUT [--shard-size 256MB]`: converts a tensor file (`.npz`, compressed
//! or not, or `.safetensors`) into a folder of `.safetensors` shards that `TensorFile` reads in
//! place (`train: OUT`), so a data set that was one big archive can be trained out of core.
//! Each shard holds every tensor's samples for a run of rows, in the source's order; an array
//! stored little-endian in a dtype safetensors has is copied byte for byte, others are written
//! as float32 or int64.

use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use stoker::dataset::files::{names_in, read};
use stoker::dataset::host::{HostData, HostTensor};
use stoker::dataset::mapped::Sharded;

use crate::{EXIT_BAD_INPUT, EXIT_FAILED};

/// Parses `256MB`, `1GB`, `500KB` or a number of bytes (MB = 2^20 bytes).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim().to_ascii_uppercase();
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t.as_str(), ""),
    };
    let scale: f64 = match unit {
        "" | "B" => 1.0,
        "KB" | "K" | "KIB" => 1024.0,
        "MB" | "M" | "MIB" => (1u64 << 20) as f64,
        "GB" | "G" | "GIB" => (1u64 << 30) as f64,
        _ => {
            return Err(format!(
                "`{text}`: a size such as 256MB, 1GB or a number of bytes"
            ));
        }
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}`: a size such as 256MB, 1GB or a number of bytes"))?;
    if value.is_nan() || value <= 0.0 {
        return Err(format!("`{text}`: the size must be positive"));
    }
    Ok((value * scale) as usize)
}

/// One tensor to write: either mapped (copied in its stored dtype) or read whole.
enum Source {
    Mapped(Sharded),
    Read(HostTensor),
}

impl Source {
    fn name(&self) -> &str {
        match self {
            Source::Mapped(t) => t.name(),
            Source::Read(t) => &t.name,
        }
    }

    fn samples(&self) -> usize {
        match self {
            Source::Mapped(t) => t.samples(),
            Source::Read(t) => t.samples(),
        }
    }

    fn sample_shape(&self) -> Vec<usize> {
        match self {
            Source::Mapped(t) => t.sample_shape().to_vec(),
            Source::Read(t) => t.sample_shape().to_vec(),
        }
    }

    fn row_bytes(&self) -> usize {
        self.sample_shape().iter().product::<usize>().max(1) * 8
    }

    /// Samples `start..end` as (dtype, little-endian bytes).
    fn rows(&self, start: usize, end: usize) -> Result<(Dtype, Vec<u8>), String> {
        let host = match self {
            Source::Mapped(t) => match t.raw_rows(start, end) {
                Some(raw) => return Ok(raw),
                None => t.gather(&(start..end).collect::<Vec<_>>())?,
            },
            Source::Read(t) => t.rows(&(start..end).collect::<Vec<_>>()),
        };
        Ok(match host.data {
            HostData::F32(v) => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            HostData::I64(v) => (Dtype::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        })
    }
}

/// `stoker data shard SRC OUT --shard-size SIZE`.
pub fn shard(source: &Path, out: &Path, shard_size: &str) -> i32 {
    let fail = |code: i32, message: String| {
        eprintln!("error: {message}");
        code
    };
    let shard_bytes = match parse_size(shard_size) {
        Ok(n) => n,
        Err(e) => return fail(EXIT_BAD_INPUT, format!("--shard-size {e}")),
    };
    let names = match names_in(source) {
        Ok(names) => names,
        Err(e) => return fail(EXIT_BAD_INPUT, format!("{}: {e}", source.display())),
    };
    if matches!(source.extension().and_then(|e| e.to_str()), Some("csv")) {
        return fail(
            EXIT_BAD_INPUT,
            format!(
                "{}: a .csv file is read in memory; shard .npz or .safetensors files",
                source.display()
            ),
        );
    }
    if out.exists() && std::fs::read_dir(out).map_or(true, |mut d| d.next().is_some()) {
        return fail(
            EXIT_BAD_INPUT,
            format!(
                "{} exists and is not empty: shards are written to a new folder, nothing is overwritten",
                out.display()
            ),
        );
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let sources: Vec<Source> = match Sharded::open(source, &refs) {
        Ok(mapped) => mapped.into_iter().map(Source::Mapped).collect(),
        Err(_) => {
            stoker::console::note(format!(
                "{} cannot be read in place (compressed): it is read whole first",
                source.display()
            ));
            match read(source, &refs) {
                Ok(tensors) => tensors.into_iter().map(Source::Read).collect(),
                Err(e) => return fail(EXIT_BAD_INPUT, format!("{}: {e}", source.display())),
            }
        }
    };
    let samples = sources.first().map_or(0, Source::samples);
    if let Some(other) = sources.iter().find(|s| s.samples() != samples) {
        return fail(
            EXIT_BAD_INPUT,
            format!(
                "{}: `{}` has {} samples and `{}` {samples}: the tensors of a file must share their first axis",
                source.display(),
                other.name(),
                other.samples(),
                sources[0].name()
            ),
        );
    }
    if let Err(e) = std::fs::create_dir_all(out) {
        return fail(EXIT_FAILED, format!("cannot create {}: {e}", out.display()));
    }
    let per_row: usize = sources.iter().map(Source::row_bytes).sum::<usize>().max(1);
    let rows_per_shard = (shard_bytes / per_row).max(1);
    let shards = samples.div_ceil(rows_per_shard).max(1);
    for k in 0..shards {
        let (start, end) = (k * rows_per_shard, ((k + 1) * rows_per_shard).min(samples));
        let parts: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = match sources
            .iter()
            .map(|s| {
                let (dtype, bytes) = s.rows(start, end)?;
                let mut shape = vec![end - start];
                shape.extend(s.sample_shape());
                Ok((s.name().to_string(), dtype, shape, bytes))
            })
            .collect::<Result<_, String>>()
        {
            Ok(parts) => parts,
            Err(e) => return fail(EXIT_FAILED, e),
        };
        let views: Vec<(&str, TensorView<'_>)> = match parts
            .iter()
            .map(|(n, d, shape, b)| TensorView::new(*d, shape.clone(), b).map(|v| (n.as_str(), v)))
            .collect::<Result<_, _>>()
        {
            Ok(views) => views,
            Err(e) => return fail(EXIT_FAILED, format!("cannot build shard {k}: {e}")),
        };
        let path = out.join(format!("shard_{k:05}.safetensors"));
        let tmp = path.with_extension("safetensors.tmp");
        if let Err(e) = safetensors::serialize_to_file(views, None, &tmp)
            .map_err(|e| e.to_string())
            .and_then(|()| std::fs::rename(&tmp, &path).map_err(|e| e.to_string()))
        {
            return fail(EXIT_FAILED, format!("cannot write {}: {e}", path.display()));
        }
    }
    println!(
        "{}: {samples} samples of {} in {shards} shard(s) of up to {rows_per_shard} samples in {}",
        source.display(),
        names.join(", "),
        out.display()
    );
    println!(
        "train on it with `data.args.train: {}` (and in_memory: false to read it in place)",
        out.display()
    );
    0
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_read_as_written() {
        assert_eq!(parse_size("256MB"), Ok(256 << 20));
        assert_eq!(parse_size("1.5gb"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("0MB").is_err());
    }
}
