//! Mapped files against the same data read whole: rows, shards, statistics and batches.

use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use stoker::burn::tensor::Device;
use stoker::data::{DataModule, Order, Shard, Split};

use super::{MappedData, MappedSplit, fit_streaming};
use crate::host::{HostData, HostTensor};
use crate::in_memory::{BatchOptions, InMemoryData};
use crate::mapped::Sharded;
use crate::normalize::{Method, Stats};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stoker-mapped-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A safetensors file with `x` f32 [n, 3] (values 10 r + c + first) and `y` i64 [n] (r + first).
fn write(path: &Path, first: usize, n: usize) {
    let x: Vec<u8> = (0..n * 3)
        .flat_map(|i| ((10 * (first + i / 3) + i % 3) as f32 * 0.5).to_le_bytes())
        .collect();
    let y: Vec<u8> = (0..n)
        .flat_map(|r| ((first + r) as i64).to_le_bytes())
        .collect();
    let tensors = vec![
        ("x", TensorView::new(Dtype::F32, vec![n, 3], &x).unwrap()),
        ("y", TensorView::new(Dtype::I64, vec![n], &y).unwrap()),
    ];
    safetensors::serialize_to_file(tensors, None, path).unwrap();
}

fn floats(t: &HostTensor) -> Vec<f32> {
    match &t.data {
        HostData::F32(v) => v.clone(),
        HostData::I64(_) => panic!("floats"),
    }
}

#[test]
fn shards_read_as_one_tensor_in_any_row_order() {
    let dir = scratch("shards");
    write(&dir.join("part_0.safetensors"), 0, 4);
    write(&dir.join("part_1.safetensors"), 4, 3);
    let whole = scratch("whole");
    write(&whole.join("all.safetensors"), 0, 7);
    let sharded = Sharded::open(&dir, &["x", "y"]).unwrap();
    let single = Sharded::open(&whole.join("all.safetensors"), &["x", "y"]).unwrap();
    assert_eq!(sharded[0].samples(), 7);
    // The same values stored as float64, decoded.
    let wide = scratch("wide").join("w.safetensors");
    let x64: Vec<u8> = (0..7 * 3)
        .flat_map(|i| ((10 * (i / 3) + i % 3) as f64 * 0.5).to_le_bytes())
        .collect();
    let x64 = vec![("x", TensorView::new(Dtype::F64, vec![7, 3], &x64).unwrap())];
    safetensors::serialize_to_file(x64, None, &wide).unwrap();
    let wide = Sharded::open(&wide, &["x"]).unwrap();
    for rows in [vec![6, 0, 3, 4], vec![2], (0..7).collect()] {
        assert_eq!(
            sharded[0].gather(&rows).unwrap(),
            single[0].gather(&rows).unwrap()
        );
        assert_eq!(
            wide[0].gather(&rows).unwrap(),
            single[0].gather(&rows).unwrap()
        );
        assert_eq!(
            sharded[1].gather(&rows).unwrap(),
            single[1].gather(&rows).unwrap()
        );
    }
    assert_eq!(
        floats(&sharded[0].gather(&[4]).unwrap())[..],
        [20.0, 20.5, 21.0]
    );
    // A run of consecutive rows across the two shards, read straight into the values, then a
    // row before them.
    assert_eq!(
        floats(&sharded[0].gather(&[3, 4, 5, 1]).unwrap())[..],
        [
            15.0, 15.5, 16.0, 20.0, 20.5, 21.0, 25.0, 25.5, 26.0, 5.0, 5.5, 6.0
        ]
    );
    assert_eq!(sharded[0].read_all(), single[0].read_all());
    assert_eq!(
        sharded[0].location(5),
        (dir.join("part_1.safetensors").as_path(), 1)
    );
}

#[test]
fn a_truncated_file_or_disagreeing_shards_are_refused_naming_the_file() {
    let dir = scratch("bad");
    let file = dir.join("a.safetensors");
    write(&file, 0, 4);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 5]).unwrap();
    let error = Sharded::open(&file, &["x", "y"]).unwrap_err();
    assert!(error.contains("a.safetensors"), "{error}");

    let shards = scratch("disagree");
    write(&shards.join("0.safetensors"), 0, 2);
    let x: Vec<u8> = [0f32; 4].iter().flat_map(|v| v.to_le_bytes()).collect();
    let y: Vec<u8> = [0i64; 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    let tensors = vec![
        ("x", TensorView::new(Dtype::F32, vec![2, 2], &x).unwrap()),
        ("y", TensorView::new(Dtype::I64, vec![2], &y).unwrap()),
    ];
    safetensors::serialize_to_file(tensors, None, &shards.join("1.safetensors")).unwrap();
    let error = Sharded::open(&shards, &["x", "y"]).unwrap_err();
    assert!(
        error.contains("1.safetensors") && error.contains("0.safetensors") && error.contains("[2]"),
        "{error}"
    );
}

#[test]
fn statistics_streamed_in_pieces_equal_those_of_the_whole_tensor() {
    let dir = scratch("stats");
    write(&dir.join("all.safetensors"), 0, 9);
    let tensors = Sharded::open(&dir.join("all.safetensors"), &["x", "y"]).unwrap();
    let split = MappedSplit {
        tensors: tensors.clone(),
        rows: Some(vec![0, 2, 3, 5, 8]),
    };
    let whole = tensors[0].gather(&[0, 2, 3, 5, 8]).unwrap();
    for method in [
        Method::Gaussian,
        Method::GaussianPixel,
        Method::GaussianChannel,
        Method::MinMax,
    ] {
        let expected = Stats::fit(method, &whole).unwrap();
        // One row at a time and all at once: the same sums in the same order.
        for chunk in [12, 1 << 20] {
            assert_eq!(
                fit_streaming(method, &split, 0, chunk).unwrap(),
                expected,
                "{method:?}"
            );
        }
    }
    assert!(
        fit_streaming(Method::Gaussian, &split, 1, 64)
            .unwrap_err()
            .contains("integers")
    );
}

/// Burn's pure-Rust device (batches read into host memory, then uploaded) and LibTorch's CPU
/// (batches read straight into LibTorch's tensors).
#[allow(deprecated)] // burn-tch is deprecated upstream but is the backend this project targets
fn devices() -> [(&'static str, Device); 2] {
    [("flex", Device::flex()), ("libtorch", Device::libtorch())]
}

#[test]
fn mapped_batches_equal_in_memory_batches_shuffled_and_sharded() {
    for (name, device) in devices() {
        batches_equal_in_memory_batches(name, device);
    }
}

fn batches_equal_in_memory_batches(name: &str, device: Device) {
    let dir = scratch(&format!("batches-{name}"));
    write(&dir.join("a.safetensors"), 0, 6);
    write(&dir.join("b.safetensors"), 6, 5);
    let tensors = Sharded::open(&dir, &["x", "y"]).unwrap();
    let train_rows = vec![0, 1, 3, 4, 6, 7, 9, 10];
    let val_rows = vec![2, 5, 8];
    let stats =
        vec![Stats::fit(Method::Gaussian, &tensors[0].gather(&train_rows).unwrap()).unwrap()];
    let options = BatchOptions {
        batch_size: 3,
        shuffle: true,
        drop_last: false,
        seed: 5,
        eval_batch_size: Some(2),
    };
    let split = |rows: &Vec<usize>| MappedSplit {
        tensors: tensors.clone(),
        rows: Some(rows.clone()),
    };
    let empty = MappedSplit {
        tensors: Vec::new(),
        rows: None,
    };
    let mapped = MappedData::new(
        [split(&train_rows), split(&val_rows), empty],
        options,
        &device,
        stats.clone(),
        false,
    )
    .unwrap();
    let host = |rows: &Vec<usize>| {
        let mut x = tensors[0].gather(rows).unwrap();
        stats[0].encode(&mut x, "any").unwrap();
        vec![x, tensors[1].gather(rows).unwrap()]
    };
    let memory = InMemoryData::new(
        [host(&train_rows), host(&val_rows), Vec::new()],
        options,
        &device,
    )
    .unwrap();
    assert_eq!(mapped.info().split_sizes, memory.info().split_sizes);
    // Training batches of 3, evaluation batches of eval_batch_size 2.
    let lens = |data: &dyn DataModule| {
        [Split::Train, Split::Val].map(|s| {
            data.epoch(s, 0, Order::Configured, Shard::WHOLE)
                .unwrap()
                .len()
        })
    };
    assert_eq!(lens(&mapped), [3, 2]);
    assert_eq!(lens(&memory), [3, 2]);
    let values = |batch: &stoker::batch::Batch| {
        (
            batch
                .float::<2>("x")
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
            batch
                .int::<1>("y")
                .unwrap()
                .into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .unwrap(),
        )
    };
    for (split, shard) in [
        (Split::Train, Shard::WHOLE),
        (Split::Val, Shard::WHOLE),
        (Split::Train, Shard { rank: 1, world: 2 }),
        (Split::Val, Shard { rank: 0, world: 2 }),
    ] {
        for epoch in 0..2 {
            let mut a = mapped
                .epoch(split, epoch, Order::Configured, shard)
                .unwrap();
            let mut b = memory
                .epoch(split, epoch, Order::Configured, shard)
                .unwrap();
            assert_eq!(a.len(), b.len());
            for i in 0..a.len() {
                assert_eq!(
                    values(&a.batch(i).unwrap()),
                    values(&b.batch(i).unwrap()),
                    "{name}: {split} epoch {epoch} batch {i}"
                );
            }
        }
    }
}

#[test]
fn a_non_finite_value_is_refused_naming_the_file_and_sample() {
    for (name, device) in devices() {
        non_finite_is_refused(name, device);
    }
}

fn non_finite_is_refused(name: &str, device: Device) {
    let dir = scratch(&format!("nan-{name}"));
    let x: Vec<u8> = [1.0f32, 2.0, f32::NAN, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let tensors = vec![("x", TensorView::new(Dtype::F32, vec![4, 1], &x).unwrap())];
    safetensors::serialize_to_file(tensors, None, &dir.join("n.safetensors")).unwrap();
    let x = Sharded::open(&dir.join("n.safetensors"), &["x"]).unwrap();
    let options = BatchOptions {
        batch_size: 4,
        shuffle: false,
        drop_last: false,
        seed: 0,
        eval_batch_size: None,
    };
    let empty = || MappedSplit {
        tensors: Vec::new(),
        rows: None,
    };
    let data = MappedData::new(
        [MappedSplit::whole(x), empty(), empty()],
        options,
        &device,
        Vec::new(),
        false,
    )
    .unwrap();
    let error = data
        .epoch(Split::Train, 0, Order::Configured, Shard::WHOLE)
        .unwrap()
        .batch(0)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("n.safetensors") && error.contains("NaN at sample 2, position [0]"),
        "{name}: {error}"
    );
}
