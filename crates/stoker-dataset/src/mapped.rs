//! Tensors read in place from memory-mapped files: an uncompressed `.npz` (NumPy's `np.savez`),
//! a `.safetensors` file, or a folder of such files (shards, concatenated along the samples axis
//! in file-name order). Nothing is read until a batch asks for its rows; the operating system
//! pages the file in and out, so a data set larger than memory trains with the memory of the
//! batches in flight.

use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use stoker::data::ElementKind;

use crate::host::{HostData, HostTensor};

/// The margin released around rows read. A fault maps more than the page touched: Linux's
/// fault-around maps 64 KiB, and since 6.10 a fault on a large page-cache folio maps the whole
/// folio, up to 2 MiB.
const FAULT_AROUND: usize = 2 << 20;

/// How one element is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dtype {
    /// `f` float, `i` signed, `u` unsigned, `b` bool.
    pub code: char,
    /// Bytes per element.
    pub size: usize,
    /// Big-endian.
    pub big: bool,
}

impl Dtype {
    /// A NumPy `descr` (`<f4`, `|u1`, `>i8`).
    pub fn from_descr(descr: &str) -> Option<Dtype> {
        let mut chars = descr.chars();
        let order = chars.next()?;
        let code = chars.next()?;
        let size: usize = chars.as_str().parse().ok()?;
        let dtype = Dtype {
            code,
            size,
            big: order == '>',
        };
        dtype.supported().then_some(dtype)
    }

    /// A safetensors dtype.
    pub fn from_safetensors(dtype: safetensors::tensor::Dtype) -> Option<Dtype> {
        use safetensors::tensor::Dtype as S;
        let (code, size) = match dtype {
            S::F32 => ('f', 4),
            S::F64 => ('f', 8),
            S::I64 => ('i', 8),
            S::I32 => ('i', 4),
            S::I16 => ('i', 2),
            S::I8 => ('i', 1),
            S::U8 => ('u', 1),
            S::BOOL => ('b', 1),
            _ => return None,
        };
        Some(Dtype {
            code,
            size,
            big: false,
        })
    }

    fn supported(&self) -> bool {
        matches!(
            (self.code, self.size),
            ('f', 4 | 8) | ('i', 1 | 2 | 4 | 8) | ('u', 1 | 2 | 4) | ('b', 1)
        )
    }

    /// Float or int, as stoker holds it (f32 or i64).
    pub fn kind(&self) -> ElementKind {
        if self.code == 'f' {
            ElementKind::Float
        } else {
            ElementKind::Int
        }
    }

    /// float32 in this machine's byte order: its bytes are the values.
    fn is_native_f32(&self) -> bool {
        self.code == 'f' && self.size == 4 && self.big == cfg!(target_endian = "big")
    }

    fn bytes<const N: usize>(&self, raw: &[u8]) -> [u8; N] {
        let mut b = [0u8; N];
        b.copy_from_slice(&raw[..N]);
        if self.big {
            b.reverse();
        }
        b
    }

    /// Decodes floats into `out`.
    fn floats(&self, raw: &[u8], out: &mut Vec<f32>) {
        match self.size {
            4 => out.extend(
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes(self.bytes(c))),
            ),
            _ => out.extend(
                raw.chunks_exact(8)
                    .map(|c| f64::from_le_bytes(self.bytes(c)) as f32),
            ),
        }
    }

    /// Decodes integers into `out`.
    fn ints(&self, raw: &[u8], out: &mut Vec<i64>) {
        let n = self.size;
        out.extend(raw.chunks_exact(n).map(|c| match (self.code, n) {
            ('i', 1) => c[0] as i8 as i64,
            ('i', 2) => i16::from_le_bytes(self.bytes(c)) as i64,
            ('i', 4) => i32::from_le_bytes(self.bytes(c)) as i64,
            ('i', 8) => i64::from_le_bytes(self.bytes(c)),
            ('u', 2) => u16::from_le_bytes(self.bytes(c)) as i64,
            ('u', 4) => u32::from_le_bytes(self.bytes(c)) as i64,
            _ => c[0] as i64,
        }));
    }
}

/// One tensor of one mapped file.
#[derive(Debug, Clone)]
pub struct MappedTensor {
    /// The file.
    pub file: PathBuf,
    /// The tensor's name.
    pub name: String,
    /// Its full shape, samples first.
    pub shape: Vec<usize>,
    /// How its elements are stored.
    pub dtype: Dtype,
    map: Arc<Mmap>,
    /// The open file, for reading scattered rows without mapping them.
    handle: Arc<std::fs::File>,
    /// Where its data starts in the file.
    offset: usize,
}

impl MappedTensor {
    /// Its number of samples.
    pub fn samples(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// The shape of one sample.
    pub fn sample_shape(&self) -> &[usize] {
        self.shape.get(1..).unwrap_or(&[])
    }

    fn row_bytes(&self) -> usize {
        self.sample_shape().iter().product::<usize>() * self.dtype.size
    }

    /// Lets the system take the pages of rows `first..first + count` out of this process's
    /// memory: they stay in the page cache (a later read is a minor fault, no I/O), but no
    /// longer count towards the process's resident memory, which would otherwise grow to the
    /// size of every file read.
    fn release_rows(&self, first: usize, count: usize) {
        let n = self.row_bytes();
        if count == 0 || n == 0 {
            return;
        }
        // A fault maps the file's pages around the one touched too (see FAULT_AROUND):
        // release that margin on both sides, or reading scattered rows would leave most of the
        // file mapped.
        let start = (self.offset + first * n).saturating_sub(FAULT_AROUND);
        let end = (self.offset + (first + count) * n + FAULT_AROUND).min(self.map.len());
        // SAFETY: MADV_DONTNEED on a read-only file mapping only drops page-table entries; the
        // next access maps the same file pages again, so no value read through it changes.
        let _ = unsafe {
            self.map
                .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
        };
    }

    /// Rows `first..first + count` into `buffer` (replacing what it held), with `pread`.
    fn read_rows(&self, first: usize, count: usize, buffer: &mut Vec<u8>) -> Result<(), String> {
        let len = count * self.row_bytes();
        buffer.clear();
        buffer.reserve(len);
        self.read_into(first, &mut buffer.spare_capacity_mut()[..len])?;
        // SAFETY: read_into initialized the first `len` bytes.
        unsafe { buffer.set_len(len) };
        Ok(())
    }

    /// The bytes of the rows from `first` on into `into` (a whole number of rows), which it
    /// initializes, with `pread`.
    fn read_into(&self, first: usize, into: &mut [MaybeUninit<u8>]) -> Result<(), String> {
        use std::os::fd::AsRawFd;
        let offset = self.offset + first * self.row_bytes();
        let mut done = 0;
        while done < into.len() {
            let rest = &mut into[done..];
            // SAFETY: pread writes at most `rest.len()` bytes, into `rest`.
            let n = unsafe {
                libc::pread(
                    self.handle.as_raw_fd(),
                    rest.as_mut_ptr().cast(),
                    rest.len(),
                    (offset + done) as libc::off_t,
                )
            };
            if n > 0 {
                done += n as usize;
                continue;
            }
            let error = match n {
                0 => "the file ended early (was it truncated while training?)".to_string(),
                _ => {
                    let e = std::io::Error::last_os_error();
                    if e.kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    e.to_string()
                }
            };
            return Err(format!(
                "{}: cannot read `{}` at sample {first}: {error}",
                self.file.display(),
                self.name
            ));
        }
        Ok(())
    }

    fn checked(self) -> Result<MappedTensor, String> {
        let needed = self.offset + self.samples() * self.row_bytes();
        if needed > self.map.len() {
            return Err(format!(
                "{}: `{}` is truncated: its header promises {} bytes of data ({:?} of {}-byte elements), the file ends {} bytes short",
                self.file.display(),
                self.name,
                self.samples() * self.row_bytes(),
                self.shape,
                self.dtype.size,
                needed - self.map.len()
            ));
        }
        Ok(self)
    }
}

fn map(path: &Path) -> Result<(Arc<Mmap>, Arc<std::fs::File>), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: the mapping is read-only; a file changed by another process while training reads
    // it would give wrong values, as it would to NumPy's mmap_mode="r".
    let map =
        unsafe { Mmap::map(&file) }.map_err(|e| format!("{}: cannot map: {e}", path.display()))?;
    Ok((Arc::new(map), Arc::new(file)))
}

/// The header of a `.npy` array at `bytes`: (dtype, shape, data offset within `bytes`).
fn npy_header(bytes: &[u8]) -> Result<(Dtype, Vec<usize>, usize), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy array (bad magic)".into());
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = bytes
        .get(start..start + len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("truncated .npy header")?;
    let field = |key: &str| -> Result<&str, String> {
        let at = header
            .find(&format!("'{key}'"))
            .ok_or_else(|| format!("the .npy header has no '{key}'"))?;
        Ok(header[at + key.len() + 2..]
            .trim_start()
            .trim_start_matches(':')
            .trim_start())
    };
    let descr = field("descr")?
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or("cannot read the dtype")?;
    let dtype = Dtype::from_descr(descr)
        .ok_or_else(|| format!("unsupported dtype {descr} (use float32/64 or an integer type)"))?;
    if field("fortran_order")?.starts_with("True") {
        return Err("the array is stored in Fortran order, which cannot be read row by row; save it with np.ascontiguousarray".into());
    }
    let shape_text = field("shape")?
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or("cannot read the shape")?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("cannot read the shape ({shape_text})"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((dtype, shape, start + len))
}

/// Maps the arrays `names` of an uncompressed `.npz` archive.
pub fn open_npz(path: &Path, names: &[&str]) -> Result<Vec<MappedTensor>, String> {
    let (map, handle) = map(path)?;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| format!("{}: not an .npz archive ({e})", path.display()))?;
    names
        .iter()
        .map(|name| {
            let entry = archive
                .by_name(&format!("{name}.npy"))
                .map_err(|_| format!("{}: no array `{name}`", path.display()))?;
            if entry.compression() != zip::CompressionMethod::Stored {
                return Err(format!(
                    "{}: `{name}` is compressed (np.savez_compressed), so it cannot be read in place; save it with np.savez, or convert it with `cargo xtask data shard`",
                    path.display()
                ));
            }
            let start = entry.data_start() as usize;
            let end = start + entry.size() as usize;
            let (dtype, shape, data) = npy_header(map.get(start..end.min(map.len())).unwrap_or(&[]))
                .map_err(|e| format!("{}: `{name}`: {e}", path.display()))?;
            let tensor = MappedTensor {
                file: path.to_path_buf(),
                name: name.to_string(),
                shape,
                dtype,
                map: Arc::clone(&map),
                handle: Arc::clone(&handle),
                offset: start + data,
            };
            // The array must fit in its own entry of the archive, not run into the next one.
            let promised = tensor.samples() * tensor.row_bytes();
            if tensor.offset + promised > end {
                return Err(format!(
                    "{}: `{name}` is truncated: its header promises {promised} bytes of data ({:?} of {}-byte elements), its entry in the archive holds {}",
                    path.display(),
                    tensor.shape,
                    dtype.size,
                    end.saturating_sub(tensor.offset)
                ));
            }
            tensor.checked()
        })
        .collect()
}

/// Maps the `.npy` array at `path` (what `np.save` writes) as the tensor `name`.
pub fn open_npy(path: &Path, name: &str) -> Result<MappedTensor, String> {
    let (map, handle) = map(path)?;
    let (dtype, shape, data) =
        npy_header(&map[..]).map_err(|e| format!("{}: {e}", path.display()))?;
    MappedTensor {
        file: path.to_path_buf(),
        name: name.to_string(),
        shape,
        dtype,
        map,
        handle,
        offset: data,
    }
    .checked()
}

/// Maps the arrays `names` of a folder of `.npy` files, one file per array: `<name>.npy`.
fn open_npy_folder(dir: &Path, names: &[&str]) -> Result<Vec<MappedTensor>, String> {
    names
        .iter()
        .map(|name| {
            let file = dir.join(format!("{name}.npy"));
            if !file.is_file() {
                return Err(format!(
                    "{}: no array `{name}`: a folder of .npy arrays holds one file per array, named after it ({name}.npy)",
                    dir.display()
                ));
            }
            open_npy(&file, name)
        })
        .collect()
}

/// Maps the tensors `names` of a `.safetensors` file.
pub fn open_safetensors(path: &Path, names: &[&str]) -> Result<Vec<MappedTensor>, String> {
    let (map, handle) = map(path)?;
    let (header_len, metadata) = safetensors::SafeTensors::read_metadata(&map[..])
        .map_err(|e| format!("{}: not a safetensors file ({e})", path.display()))?;
    let tensors = metadata.tensors();
    names
        .iter()
        .map(|name| {
            let info = tensors
                .get(*name)
                .ok_or_else(|| format!("{}: no tensor `{name}`", path.display()))?;
            let dtype = Dtype::from_safetensors(info.dtype).ok_or_else(|| {
                format!(
                    "{}: `{name}` has dtype {:?}; use F32, F64 or an integer type",
                    path.display(),
                    info.dtype
                )
            })?;
            MappedTensor {
                file: path.to_path_buf(),
                name: name.to_string(),
                shape: info.shape.clone(),
                dtype,
                map: Arc::clone(&map),
                handle: Arc::clone(&handle),
                offset: 8 + header_len + info.data_offsets.0,
            }
            .checked()
        })
        .collect()
}

/// Whether `path` can be read in place: a folder (of shards, or of `.npy` arrays), a
/// `.safetensors` file, or an `.npz` file (whose arrays must also be uncompressed).
pub fn mappable(path: &Path) -> bool {
    path.is_dir()
        || matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("npz" | "safetensors")
        )
}

/// Whether a folder holds `.npy` arrays (one file per array) rather than shards.
fn holds_npy(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(|e| e.ok())
            .any(|e| e.path().extension().is_some_and(|x| x == "npy"))
    })
}

/// The shard files of a folder: its `.npz` and `.safetensors` files, by name.
pub fn shard_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("npz" | "safetensors")
            )
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "{}: the folder holds no .npz or .safetensors shards, nor .npy arrays",
            dir.display()
        ));
    }
    Ok(files)
}

/// A tensor over one or more mapped files, concatenated along the samples axis.
#[derive(Debug, Clone)]
pub struct Sharded {
    /// The pieces, in order.
    pub shards: Vec<MappedTensor>,
    /// The first sample of each piece, and the total at the end.
    starts: Vec<usize>,
}

impl Sharded {
    /// The tensors `names` of `path` (a file, a folder of shard files, or a folder of `.npy`
    /// arrays), each checked to agree across shards in element type and sample shape.
    pub fn open(path: &Path, names: &[&str]) -> Result<Vec<Sharded>, String> {
        if path.is_dir() && holds_npy(path) {
            if let Ok(shards) = shard_files(path) {
                return Err(format!(
                    "{}: the folder holds both .npy arrays and shards ({}): keep one layout per folder",
                    path.display(),
                    shards[0].display()
                ));
            }
            let tensors = open_npy_folder(path, names)?;
            return Ok(tensors
                .into_iter()
                .map(|t| Sharded::whole(vec![t]))
                .collect());
        }
        let files = if path.is_dir() {
            shard_files(path)?
        } else {
            vec![path.to_path_buf()]
        };
        let mut per_file = Vec::new();
        for file in &files {
            let tensors = match file.extension().and_then(|e| e.to_str()) {
                Some("npz") => open_npz(file, names)?,
                Some("safetensors") => open_safetensors(file, names)?,
                _ => {
                    return Err(format!(
                        "{}: cannot be read in place; use .npz (np.savez) or .safetensors",
                        file.display()
                    ));
                }
            };
            per_file.push(tensors);
        }
        (0..names.len())
            .map(|i| {
                let shards: Vec<MappedTensor> = per_file.iter().map(|t| t[i].clone()).collect();
                let first = &shards[0];
                for s in &shards[1..] {
                    if s.dtype.kind() != first.dtype.kind() || s.sample_shape() != first.sample_shape() {
                        return Err(format!(
                            "{}: `{}` has samples of shape {:?} ({:?}), but {} has {:?} ({:?}): every shard must hold the same element type and sample shape",
                            s.file.display(),
                            s.name,
                            s.sample_shape(),
                            s.dtype.kind(),
                            first.file.display(),
                            first.sample_shape(),
                            first.dtype.kind()
                        ));
                    }
                }
                Ok(Sharded::whole(shards))
            })
            .collect()
    }

    /// The tensor made of `shards`, in order.
    fn whole(shards: Vec<MappedTensor>) -> Sharded {
        let mut starts = vec![0];
        for s in &shards {
            starts.push(starts.last().copied().unwrap_or(0) + s.samples());
        }
        Sharded { shards, starts }
    }

    /// The tensor's name.
    pub fn name(&self) -> &str {
        &self.shards[0].name
    }

    /// Its samples, over every shard.
    pub fn samples(&self) -> usize {
        self.starts.last().copied().unwrap_or(0)
    }

    /// The shape of one sample.
    pub fn sample_shape(&self) -> &[usize] {
        self.shards[0].sample_shape()
    }

    /// Float or int.
    pub fn kind(&self) -> ElementKind {
        self.shards[0].dtype.kind()
    }

    /// Its name, sample shape and element kind.
    pub fn info(&self) -> stoker::data::TensorInfo {
        stoker::data::TensorInfo {
            name: self.name().to_string(),
            sample_shape: self.sample_shape().to_vec(),
            kind: self.kind(),
        }
    }

    /// Bytes it takes as stoker holds it (f32 or i64 elements).
    pub fn held_bytes(&self) -> usize {
        let per = match self.kind() {
            ElementKind::Float => 4,
            ElementKind::Int => 8,
        };
        self.samples() * self.sample_shape().iter().product::<usize>() * per
    }

    /// Where sample `row` is stored: its file, and its sample there.
    pub fn location(&self, row: usize) -> (&Path, usize) {
        let (shard, local) = self.locate(row);
        (&shard.file, local)
    }

    fn locate(&self, row: usize) -> (&MappedTensor, usize) {
        let shard = self.starts.partition_point(|&s| s <= row) - 1;
        (&self.shards[shard], row - self.starts[shard])
    }

    /// Every sample, in order, as a host tensor (read in pieces, each released once decoded).
    pub fn read_all(&self) -> HostTensor {
        let mut shape = vec![self.samples()];
        shape.extend_from_slice(self.sample_shape());
        let total: usize = shape.iter().product();
        let mut floats = Vec::new();
        let mut ints = Vec::new();
        match self.kind() {
            ElementKind::Float => floats.reserve_exact(total),
            ElementKind::Int => ints.reserve_exact(total),
        }
        for s in &self.shards {
            let n = s.row_bytes().max(1);
            let per_piece = ((16 << 20) / n).max(1);
            let mut first = 0;
            while first < s.samples() {
                let count = per_piece.min(s.samples() - first);
                let bytes = &s.map[s.offset + first * n..s.offset + (first + count) * n];
                match self.kind() {
                    ElementKind::Float => s.dtype.floats(bytes, &mut floats),
                    ElementKind::Int => s.dtype.ints(bytes, &mut ints),
                }
                s.release_rows(first, count);
                first += count;
            }
        }
        let data = match self.kind() {
            ElementKind::Float => HostData::F32(floats),
            ElementKind::Int => HostData::I64(ints),
        };
        HostTensor {
            name: self.name().to_string(),
            shape,
            data,
        }
    }

    /// The stored bytes of samples `start..end` as a safetensors dtype, when every shard stores
    /// the tensor little-endian in a dtype safetensors has (a shard converter copies them
    /// without decoding); `None` otherwise.
    pub fn raw_rows(
        &self,
        start: usize,
        end: usize,
    ) -> Option<(safetensors::tensor::Dtype, Vec<u8>)> {
        use safetensors::tensor::Dtype as S;
        let dtype = self.shards[0].dtype;
        if self.shards.iter().any(|s| s.dtype != dtype) || dtype.big {
            return None;
        }
        let st = match (dtype.code, dtype.size) {
            ('f', 4) => S::F32,
            ('f', 8) => S::F64,
            ('i', 1) => S::I8,
            ('i', 2) => S::I16,
            ('i', 4) => S::I32,
            ('i', 8) => S::I64,
            ('u', 1) => S::U8,
            ('b', 1) => S::BOOL,
            _ => return None,
        };
        let mut bytes = Vec::with_capacity((end - start) * self.shards[0].row_bytes());
        let mut row = start;
        while row < end {
            let (shard, local) = self.locate(row);
            let count = (end - row).min(shard.samples() - local);
            let n = shard.row_bytes();
            bytes.extend_from_slice(
                &shard.map[shard.offset + local * n..shard.offset + (local + count) * n],
            );
            shard.release_rows(local, count);
            row += count;
        }
        Some((st, bytes))
    }

    /// The samples `rows`, in that order, as a host tensor (floats by [`Self::gather_f32_into`]).
    pub fn gather(&self, rows: &[usize]) -> Result<HostTensor, String> {
        let mut shape = vec![rows.len()];
        shape.extend_from_slice(self.sample_shape());
        let total: usize = shape.iter().product();
        let data = match self.kind() {
            ElementKind::Float => {
                let mut values = Vec::with_capacity(total);
                self.gather_f32_into(rows, &mut values.spare_capacity_mut()[..total])?;
                // SAFETY: gather_f32_into initialized the first `total` values.
                unsafe { values.set_len(total) };
                HostData::F32(values)
            }
            ElementKind::Int => {
                let mut values = Vec::with_capacity(total);
                let mut buffer = Vec::new();
                for (shard, local, count) in self.runs(rows) {
                    shard.read_rows(local, count, &mut buffer)?;
                    shard.dtype.ints(&buffer, &mut values);
                }
                HostData::I64(values)
            }
        };
        Ok(HostTensor {
            name: self.name().to_string(),
            shape,
            data,
        })
    }

    /// The samples `rows` of a float tensor, in that order, written into `out` (every value of
    /// it: `out` holds `rows.len()` samples), which is returned initialized. Scattered rows are
    /// read with `pread`, one call per run of consecutive rows, not through the map: a fault on
    /// a mapped page maps a whole large folio (up to 2 MiB) and costs a TLB flush to release,
    /// which made reading a batch of scattered rows three times slower than reading them.
    /// Little-endian float32 is read straight into `out`; other float types are decoded.
    pub fn gather_f32_into<'a>(
        &self,
        rows: &[usize],
        out: &'a mut [MaybeUninit<f32>],
    ) -> Result<&'a mut [f32], String> {
        let width: usize = self.sample_shape().iter().product();
        assert_eq!(
            out.len(),
            rows.len() * width,
            "`{}`: the output holds {} values, {} samples of {width} were asked for",
            self.name(),
            out.len(),
            rows.len()
        );
        let (mut buffer, mut decoded) = (Vec::new(), Vec::new());
        let mut at = 0;
        for (shard, local, count) in self.runs(rows) {
            let piece = &mut out[at..at + count * width];
            if shard.dtype.is_native_f32() {
                // SAFETY: the same memory as bytes; every byte pattern is a valid f32.
                let bytes = unsafe {
                    std::slice::from_raw_parts_mut(
                        piece.as_mut_ptr().cast::<MaybeUninit<u8>>(),
                        std::mem::size_of_val(piece),
                    )
                };
                shard.read_into(local, bytes)?;
            } else {
                shard.read_rows(local, count, &mut buffer)?;
                decoded.clear();
                shard.dtype.floats(&buffer, &mut decoded);
                assert_eq!(
                    decoded.len(),
                    piece.len(),
                    "`{}`: decoded values",
                    shard.name
                );
                for (slot, &value) in piece.iter_mut().zip(&decoded) {
                    slot.write(value);
                }
            }
            at += count * width;
        }
        debug_assert_eq!(at, out.len());
        // SAFETY: the runs cover `rows`, so every value of `out` was written above.
        Ok(unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) })
    }

    /// `rows` as runs of consecutive rows within one shard: the shard, the run's first row in
    /// it, and the run's length.
    fn runs<'a>(
        &'a self,
        rows: &'a [usize],
    ) -> impl Iterator<Item = (&'a MappedTensor, usize, usize)> + 'a {
        let mut i = 0;
        std::iter::from_fn(move || {
            let &first = rows.get(i)?;
            let (shard, local) = self.locate(first);
            let mut count = 1;
            while rows.get(i + count) == Some(&(first + count)) && local + count < shard.samples() {
                count += 1;
            }
            i += count;
            Some((shard, local, count))
        })
    }
}
