//! Every loss against `torch.nn.functional`, neuraloperator's LpLoss/H1Loss, SupContrast's
//! SupConLoss or the formula written in PyTorch (`fixtures/make_loss_fixtures.py`): the value,
//! the gradient with respect to the model output, and the named terms of composite losses.

use std::collections::BTreeMap;

use serde_json::Value;
use stoker::burn::tensor::kind::BridgeTensor;
use stoker::burn::tensor::{Gradients, Int, TensorData};
use stoker::prelude::*;
use stoker::registry::{self, AnySpec, Kind};
use stoker_losses as _;

#[allow(deprecated)]
fn device() -> Device {
    Device::libtorch()
}

struct Encoded {
    shape: Vec<usize>,
    values: Vec<f64>,
    int: bool,
}

fn decode(v: &Value) -> Encoded {
    Encoded {
        shape: v["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect(),
        values: v["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect(),
        int: v["int"].as_bool().unwrap(),
    }
}

/// A float tensor of any rank from 1 to 3 whose gradient can be read back.
enum Leaf {
    R1(Tensor<1>),
    R2(Tensor<2>),
    R3(Tensor<3>),
}

impl Leaf {
    fn new(e: &Encoded, device: &Device, grad: bool) -> Leaf {
        let values: Vec<f32> = e.values.iter().map(|&v| v as f32).collect();
        macro_rules! make {
            ($r:literal, $variant:ident) => {{
                let t = Tensor::<$r>::from_data(
                    TensorData::new(values, <[usize; $r]>::try_from(e.shape.clone()).unwrap()),
                    device,
                );
                Leaf::$variant(if grad { t.require_grad() } else { t })
            }};
        }
        match e.shape.len() {
            1 => make!(1, R1),
            2 => make!(2, R2),
            3 => make!(3, R3),
            r => panic!("rank {r}"),
        }
    }

    fn bridge(&self) -> BridgeTensor {
        match self {
            Leaf::R1(t) => t.clone().into_bridge(),
            Leaf::R2(t) => t.clone().into_bridge(),
            Leaf::R3(t) => t.clone().into_bridge(),
        }
    }

    fn grad(&self, grads: &Gradients) -> Vec<f32> {
        let data = match self {
            Leaf::R1(t) => t.grad(grads).unwrap().into_data(),
            Leaf::R2(t) => t.grad(grads).unwrap().into_data(),
            Leaf::R3(t) => t.grad(grads).unwrap().into_data(),
        };
        data.convert::<f32>().try_to_vec::<f32>().unwrap()
    }
}

fn int_tensor(e: &Encoded, device: &Device) -> BridgeTensor {
    let values: Vec<i64> = e.values.iter().map(|&v| v as i64).collect();
    match e.shape.len() {
        1 => {
            Tensor::<1, Int>::from_data(TensorData::new(values, [e.shape[0]]), device).into_bridge()
        }
        r => panic!("int rank {r}"),
    }
}

fn close(got: f64, want: f64, scale: f64) -> bool {
    (got - want).abs() <= 1e-5 * scale.max(1e-6)
}

#[test]
fn losses_match_their_references() {
    let fixture: Value = serde_json::from_str(include_str!("fixtures/losses.json")).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 28);
    let plain = device();
    let train = plain.clone().autodiff();
    for case in cases {
        let name = case["case"].as_str().unwrap();
        let diff = case["diff"].as_str().unwrap();
        let mut batch = Batch::batch();
        let mut tensors = Vec::new();
        for (key, value) in case["batch"].as_object().unwrap() {
            let e = decode(value);
            let bridge = if e.int {
                int_tensor(&e, &plain)
            } else {
                Leaf::new(&e, &plain, false).bridge()
            };
            batch.insert_bridge(key.clone(), bridge);
            tensors.push(TensorInfo {
                name: key.clone(),
                sample_shape: e.shape[1..].to_vec(),
                kind: if e.int {
                    ElementKind::Int
                } else {
                    ElementKind::Float
                },
            });
        }
        let mut output = Output::output();
        let mut leaf = None;
        for (key, value) in case["output"].as_object().unwrap() {
            let l = Leaf::new(&decode(value), &train, key == diff);
            output.insert_bridge(key.clone(), l.bridge());
            if key == diff {
                leaf = Some(l);
            }
        }
        let leaf = leaf.unwrap();
        let ctx = BuildContext {
            device: plain.clone(),
            seed: 0,
            data: Some(DataInfo {
                tensors,
                split_sizes: [1, 0, 0],
                batch_size: 1,
            }),
            parameters: None,
            base_lr: None,
            horizon: None,
        };
        let registration = registry::find(Kind::Loss, case["loss"].as_str().unwrap()).unwrap();
        let args: stoker::__private::serde_yaml::Value =
            stoker::__private::serde_yaml::to_value(&case["args"]).unwrap();
        let AnySpec::Loss(spec) = (registration.parse)(args)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .spec
        else {
            panic!()
        };
        let loss = spec.build(&ctx).unwrap_or_else(|e| panic!("{name}: {e}"));
        let value = loss
            .forward(&output, &batch)
            .unwrap_or_else(|e| panic!("{name}: {e}"));

        let want = case["value"].as_f64().unwrap();
        let got = value.total.clone().into_scalar::<f64>();
        assert!(
            close(got, want, want.abs()),
            "{name}: value {got} vs {want}"
        );
        let expected_terms: BTreeMap<String, f64> = case["terms"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
            .collect();
        let terms: BTreeMap<String, f64> = value
            .terms
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into_scalar::<f64>()))
            .collect();
        assert_eq!(
            terms.keys().collect::<Vec<_>>(),
            expected_terms.keys().collect::<Vec<_>>(),
            "{name}: terms"
        );
        for (k, want) in &expected_terms {
            assert!(
                close(terms[k], *want, want.abs()),
                "{name}: term {k} {} vs {want}",
                terms[k]
            );
        }

        let grads = value.total.backward();
        let got = leaf.grad(&grads);
        let want: Vec<f64> = case["grad"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let scale = want.iter().map(|v| v.abs()).fold(0.0, f64::max);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                close(*g as f64, *w, scale),
                "{name}: gradient [{i}] {g} vs {w}"
            );
        }
    }
}
