//! Two processes in one Gloo group through libtorch's c10d: all-reduce, broadcast, a model's
//! gradients averaged and barrier give the values PyTorch's `dist.all_reduce`/`dist.broadcast`
//! and DDP's averaging would (hand-derived: rank r contributes r + 1), over a file and over a TCP rendezvous; a process whose peer never comes
//! fails within the timeout instead of hanging.
//!
//! The test binary runs itself once per rank (`STOKER_TEST_RANK`), one LibTorch thread each.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor as BurnTensor, TensorData};
use stoker_core::device::DeviceChoice;
use stoker_core::model::{Model, boxed};
use stoker_core::prelude::{Batch, Output};
use stoker_native::collective::{ProcessGroup, Rendezvous};
use stoker_native::device::resolve;
use tch::Tensor;

const RANK: &str = "STOKER_TEST_RANK";
const STORE: &str = "STOKER_TEST_STORE";

fn rendezvous_from_env() -> Rendezvous {
    let store = std::env::var(STORE).unwrap();
    match store.strip_prefix("tcp:") {
        Some(port) => Rendezvous::Tcp {
            host: "127.0.0.1".into(),
            port: port.parse().unwrap(),
        },
        None => Rendezvous::File(PathBuf::from(store)),
    }
}

/// What one rank does: its checks panic (a non-zero exit) on a wrong value.
fn run_rank(rank: usize) {
    let group =
        ProcessGroup::gloo(&rendezvous_from_env(), rank, 2, Duration::from_secs(60)).unwrap();
    assert_eq!((group.rank(), group.world_size()), (rank, 2));
    let r = rank as f32;
    let tensors = [
        Tensor::from_slice(&[r + 1.0, 10.0 * (r + 1.0), -r]),
        Tensor::from_slice(&[r; 2]),
    ];
    group.all_reduce_sum(&tensors).unwrap();
    assert_eq!(
        Vec::<f32>::try_from(&tensors[0]).unwrap(),
        [3.0, 30.0, -1.0]
    );
    assert_eq!(Vec::<f32>::try_from(&tensors[1]).unwrap(), [1.0, 1.0]);
    // Rank 0 holds [1, -2, 5], rank 1 [-1, 3, 5]: the maxima are [1, 3, 5].
    let r64 = f64::from(r);
    let mixed = [Tensor::from_slice(&[
        1.0 - 2.0 * r64,
        -2.0 + 5.0 * r64,
        5.0,
    ])];
    group.all_reduce_max(&mixed).unwrap();
    assert_eq!(Vec::<f64>::try_from(&mixed[0]).unwrap(), [1.0, 3.0, 5.0]);
    let from_root = [Tensor::from_slice(&[100.0 + r, 7.0 * r])];
    group.broadcast(&from_root, 0).unwrap();
    assert_eq!(Vec::<f32>::try_from(&from_root[0]).unwrap(), [100.0, 0.0]);
    average_gradients(&group, r);
    broadcast_model(&group, rank);
    group.barrier().unwrap();
    println!("rank {rank} ok");
}

#[derive(Module, Debug)]
struct Two {
    a: Linear,
    b: Linear,
}

impl Model for Two {
    fn forward(&self, _batch: &Batch) -> stoker_core::Result<Output> {
        Ok(Output::output())
    }
}

/// Each rank initializes its model from its own seed; after the broadcast every rank holds rank
/// 0's weights (those of seed 0), with its own parameter ids kept.
fn broadcast_model(group: &ProcessGroup, rank: usize) {
    let device = resolve(DeviceChoice::Cpu).unwrap();
    let init = |seed: u64| {
        device.seed(seed);
        boxed(Two {
            a: LinearConfig::new(2, 2).init(&device.clone().autodiff()),
            b: LinearConfig::new(2, 1).init(&device.clone().autodiff()),
        })
    };
    // The tensors' bytes of a safetensors file (its header's metadata order may vary).
    let weights = |bytes: Vec<u8>| {
        let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        bytes[8 + header..].to_vec()
    };
    let rank_zero = weights(init(0).to_safetensors().unwrap());
    let mut model = init(if rank == 0 { 0 } else { 8 });
    if rank != 0 {
        let own = weights(model.to_safetensors().unwrap());
        assert_ne!(own, rank_zero, "other seeds, other weights");
    }
    let ids = model.param_ids();
    group.broadcast_model(model.as_mut(), 0).unwrap();
    assert_eq!(
        weights(model.to_safetensors().unwrap()),
        rank_zero,
        "rank {rank}"
    );
    assert_eq!(model.param_ids(), ids);
}

/// Rank r's gradients: a.weight = [r + 1, 2 (r + 1), 3, 4 r], a.bias = [r, -r], b.weight =
/// [[10 r], [1]], b.bias = [r]. Averaged over ranks 0 and 1: [1.5, 3, 3, 2], [0.5, -0.5],
/// [5, 1], [0.5]. The values carried along, [r, 1], come back summed: [1, 2].
fn average_gradients(group: &ProcessGroup, r: f32) {
    let device = resolve(DeviceChoice::Cpu).unwrap();
    let model = boxed(Two {
        a: LinearConfig::new(2, 2).init(&device.clone().autodiff()),
        b: LinearConfig::new(2, 1).init(&device.clone().autodiff()),
    });
    let ids = model.param_ids();
    let mut grads = GradientsParams::new();
    let mut register = |path: &str, values: Vec<f32>, shape: Vec<usize>| {
        let data = TensorData::new(values, shape.clone());
        match shape.len() {
            1 => grads.register(ids[path].into(), BurnTensor::<1>::from_data(data, &device)),
            _ => grads.register(ids[path].into(), BurnTensor::<2>::from_data(data, &device)),
        }
    };
    register(
        "a.weight",
        vec![r + 1.0, 2.0 * (r + 1.0), 3.0, 4.0 * r],
        vec![2, 2],
    );
    register("a.bias", vec![r, -r], vec![2]);
    register("b.weight", vec![10.0 * r, 1.0], vec![2, 1]);
    register("b.bias", vec![r], vec![1]);
    let mut carried = [r, 1.0];
    let grads = group
        .average_gradients(model.as_ref(), grads, &mut carried)
        .unwrap();
    assert_eq!(carried, [1.0, 2.0]);
    let values = |path: &str| -> Vec<f32> {
        let flat = model.gradients_flat(&grads);
        let g = flat.into_iter().find(|(p, _)| p == path).unwrap().1;
        g.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    };
    assert_eq!(values("a.weight"), [1.5, 3.0, 3.0, 2.0]);
    assert_eq!(values("a.bias"), [0.5, -0.5]);
    assert_eq!(values("b.weight"), [5.0, 1.0]);
    assert_eq!(values("b.bias"), [0.5]);
}

/// Runs this test as both ranks with `store`, and checks both ended well.
fn two_ranks(test: &str, store: &str) {
    let children: Vec<_> = (0..2)
        .map(|rank| {
            Command::new(std::env::current_exe().unwrap())
                .args([test, "--exact", "--nocapture", "--test-threads", "1"])
                .env(RANK, rank.to_string())
                .env(STORE, store)
                .env("OMP_NUM_THREADS", "1")
                .spawn()
                .unwrap()
        })
        .collect();
    for (rank, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "rank {rank} failed: {:?}",
            output.status
        );
    }
}

#[test]
fn two_ranks_reduce_and_broadcast_over_a_file_store() {
    if let Ok(rank) = std::env::var(RANK) {
        return run_rank(rank.parse().unwrap());
    }
    let store = std::env::temp_dir().join(format!("stoker-c10d-file-{}", std::process::id()));
    let _ = std::fs::remove_file(&store);
    two_ranks(
        "two_ranks_reduce_and_broadcast_over_a_file_store",
        store.to_str().unwrap(),
    );
    let _ = std::fs::remove_file(&store);
}

#[test]
fn two_ranks_reduce_and_broadcast_over_tcp() {
    if let Ok(rank) = std::env::var(RANK) {
        return run_rank(rank.parse().unwrap());
    }
    // A free port: bind to 0, read it, release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    two_ranks(
        "two_ranks_reduce_and_broadcast_over_tcp",
        &format!("tcp:{port}"),
    );
}

#[test]
fn a_missing_peer_is_an_error_within_the_timeout() {
    if std::env::var(RANK).is_ok() {
        return;
    }
    let store = std::env::temp_dir().join(format!("stoker-c10d-alone-{}", std::process::id()));
    let _ = std::fs::remove_file(&store);
    // Returning at all is the point: the rendezvous gives up after its 2 s instead of waiting.
    let joined = ProcessGroup::gloo(
        &Rendezvous::File(store.clone()),
        0,
        2,
        Duration::from_secs(2),
    );
    let error = joined
        .err()
        .expect("a group of two with one process cannot form");
    assert!(
        error.starts_with("joining the Gloo process group: "),
        "{error}"
    );
    let _ = std::fs::remove_file(&store);
}

/// The NCCL process group is built in (the set-up installs the headers it needs), and on a
/// machine without a GPU joining it is libtorch's clear error, not a crash. On a GPU machine the
/// GPU check trains through it instead.
#[test]
fn the_nccl_group_is_built_in_and_refuses_a_machine_without_a_gpu() {
    if std::env::var(RANK).is_ok() || stoker_native::device::cuda_device_count() > 0 {
        return;
    }
    assert!(stoker_native::collective::nccl_available());
    let store = std::env::temp_dir().join(format!("stoker-c10d-nccl-{}", std::process::id()));
    let _ = std::fs::remove_file(&store);
    let error = ProcessGroup::nccl(
        &Rendezvous::File(store.clone()),
        0,
        1,
        Duration::from_secs(5),
        0,
    )
    .err()
    .expect("NCCL without a GPU");
    assert!(
        error.starts_with("joining the NCCL process group: ") && error.contains("GPU"),
        "{error}"
    );
    let _ = std::fs::remove_file(&store);
}
