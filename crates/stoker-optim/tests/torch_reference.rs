//! Every optimizer and option against PyTorch's `torch.optim` (AdaBound against its authors'
//! reference implementation): 100 steps on a small tanh network, parameters compared at 8
//! points of the trajectory to 1e-5 relative. The reference values come from
//! `fixtures/make_optimizer_fixtures.py`.

use std::collections::BTreeMap;

use serde_json::Value;
use stoker::burn;
use stoker::burn::module::Module;
use stoker::burn::nn::{Linear, LinearConfig};
use stoker::burn::tensor::{Device, Tensor, TensorData};
use stoker::prelude::*;
use stoker::registry::{self, AnySpec, Kind};
use stoker_optim as _;

#[derive(Module, Debug)]
struct Net {
    l1: Linear,
    l2: Linear,
}

impl Model for Net {
    fn forward(&self, batch: &Batch) -> Result<Output> {
        let x = batch.float::<2>("x")?;
        Ok(Output::output().with_float("pred", self.l2.forward(self.l1.forward(x).tanh())))
    }
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

/// PyTorch's [out, in] weight as burn's [in, out], or a bias as it is.
fn transpose_if_weight(path: &str, values: &[f32], torch_shape: &[usize]) -> Vec<f32> {
    if !path.ends_with("weight") {
        return values.to_vec();
    }
    let (rows, cols) = (torch_shape[0], torch_shape[1]);
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

#[allow(deprecated)]
fn device() -> Device {
    Device::libtorch()
}

fn run_case(fixture: &Value, case: &Value) {
    let name = case["case"].as_str().unwrap();
    let device = device();
    let train = device.clone().autodiff();
    let mut model = boxed(Net {
        l1: LinearConfig::new(4, 5).init(&train),
        l2: LinearConfig::new(5, 3).init(&train),
    });
    let shapes: BTreeMap<String, Vec<usize>> = fixture["init"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap() as usize)
                    .collect(),
            )
        })
        .collect();
    let init: BTreeMap<String, Vec<f32>> = fixture["init"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                transpose_if_weight(k, &floats(&v["values"]), &shapes[k]),
            )
        })
        .collect();
    model.map_parameters(&mut |path, value| {
        let n = value.dims()[0];
        Tensor::from_data(TensorData::new(init[path].clone(), [n]), &value.device())
    });

    let registration =
        registry::find(Kind::Optimizer, case["optimizer"].as_str().unwrap()).unwrap();
    let args: serde_yaml::Value = serde_yaml::to_value(&case["args"]).unwrap();
    let AnySpec::Optimizer(spec) = (registration.parse)(args)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .spec
    else {
        panic!("not an optimizer")
    };
    let ctx = BuildContext {
        device: device.clone(),
        seed: 0,
        data: None,
        parameters: Some(shapes.keys().cloned().collect()),
        base_lr: None,
        horizon: None,
    };
    let mut optimizer = spec.build(&ctx).unwrap();
    let x = Tensor::<2>::from_data(TensorData::new(floats(&fixture["x"]), [8, 4]), &device);
    let y = Tensor::<2>::from_data(TensorData::new(floats(&fixture["y"]), [8, 3]), &device);
    let batch = Batch::batch().with_float("x", x);

    let checkpoints = case["checkpoints"].as_object().unwrap();
    for step in 1..=100 {
        let pred = model.forward(&batch).unwrap().float::<2>("pred").unwrap();
        let loss = (pred - y.clone()).square().mean();
        let grads = model.backward(loss);
        model.optimizer_step(&mut optimizer, spec.lr(), grads);
        let Some(expected) = checkpoints.get(&step.to_string()) else {
            continue;
        };
        let ours: BTreeMap<String, Vec<f32>> = model
            .parameters_flat()
            .into_iter()
            .map(|(path, t)| {
                (
                    path,
                    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap(),
                )
            })
            .collect();
        for (path, values) in expected.as_object().unwrap() {
            let want = transpose_if_weight(path, &floats(values), &shapes[path]);
            let got = &ours[path];
            let scale = want
                .iter()
                .map(|v| v.abs())
                .fold(0.0f32, f32::max)
                .max(1e-3);
            let diff = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            if std::env::var("SHOW_ERRORS").is_ok() && path == "l1.weight" {
                eprintln!("{name} step {step}: relative {:.2e}", diff / scale);
            }
            assert!(
                diff <= 1e-5 * scale,
                "{name}: {path} after step {step} differs by {diff} (relative {})\n ours  {got:?}\n torch {want:?}",
                diff / scale
            );
        }
    }
}

#[test]
fn optimizers_follow_the_torch_trajectories() {
    let fixture: Value = serde_json::from_str(include_str!("fixtures/optimizers.json")).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 19);
    for case in cases {
        run_case(&fixture, case);
    }
}
