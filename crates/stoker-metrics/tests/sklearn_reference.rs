//! Every metric against scikit-learn (`fixtures/make_metric_fixtures.py`), fed three batches of
//! different sizes: the values must be the whole epoch's, not a mean of batch means.

use std::collections::BTreeMap;

use serde_json::Value;
use stoker::burn::tensor::{Int, TensorData};
use stoker::prelude::*;
use stoker::registry::{self, AnySpec, Kind};
use stoker_metrics as _;

#[allow(deprecated)]
fn device() -> Device {
    Device::libtorch()
}

fn matrix(v: &Value) -> (Vec<f32>, [usize; 2]) {
    let rows = v.as_array().unwrap();
    let width = rows[0].as_array().unwrap().len();
    let values = rows
        .iter()
        .flat_map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
        })
        .collect();
    (values, [rows.len(), width])
}

fn metric(name: &str, args: &str, label_kind: ElementKind, width: usize) -> Box<dyn Metric> {
    let ctx = BuildContext {
        device: device(),
        seed: 0,
        data: Some(DataInfo {
            tensors: vec![TensorInfo {
                name: "y".into(),
                sample_shape: if label_kind == ElementKind::Int {
                    vec![]
                } else {
                    vec![width]
                },
                kind: label_kind,
            }],
            split_sizes: [1, 0, 0],
            batch_size: 1,
        }),
        parameters: None,
        base_lr: None,
        horizon: None,
    };
    let registration = registry::find(Kind::Metric, name).unwrap();
    let AnySpec::Metric(spec) = (registration.parse)(serde_yaml::from_str(args).unwrap())
        .unwrap()
        .spec
    else {
        panic!()
    };
    spec.build(&ctx).unwrap()
}

/// Feeds the batches to `metric` and returns what it computes.
fn run(metric: &mut dyn Metric, batches: &[(Batch, Output)]) -> BTreeMap<String, f64> {
    metric.reset();
    for (batch, output) in batches {
        let loss = LossValue::single(Tensor::<1>::zeros([1], &device()));
        metric
            .update(&StepView {
                batch,
                output,
                loss: &loss,
            })
            .unwrap();
    }
    metric.compute().unwrap().into_iter().collect()
}

fn assert_close(name: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-5 * want.abs().max(1e-3),
        "{name}: {got} vs {want}"
    );
}

#[test]
fn regression_metrics_match_sklearn() {
    let fixture: Value = serde_json::from_str(include_str!("fixtures/metrics.json")).unwrap();
    let r = &fixture["regression"];
    let batches = |columns: Option<usize>| -> Vec<(Batch, Output)> {
        r["pred"]
            .as_array()
            .unwrap()
            .iter()
            .zip(r["target"].as_array().unwrap())
            .map(|(p, t)| {
                let (mut p, mut ps) = matrix(p);
                let (mut t, mut ts) = matrix(t);
                if let Some(c) = columns {
                    p = p.chunks(ps[1]).map(|row| row[c]).collect();
                    t = t.chunks(ts[1]).map(|row| row[c]).collect();
                    ps[1] = 1;
                    ts[1] = 1;
                }
                let batch = Batch::batch().with_float(
                    "y",
                    Tensor::<2>::from_data(TensorData::new(t, ts), &device()),
                );
                let output = Output::output().with_float(
                    "pred",
                    Tensor::<2>::from_data(TensorData::new(p, ps), &device()),
                );
                (batch, output)
            })
            .collect()
    };
    let two = batches(None);
    for (name, key) in [
        ("mse", "mse"),
        ("mae", "mae"),
        ("rmse", "rmse"),
        ("r2", "r2"),
        ("rel_l2", "rel_l2"),
    ] {
        let got = run(metric(name, "{}", ElementKind::Float, 2).as_mut(), &two);
        assert_close(name, got[key], r["expected"][key].as_f64().unwrap());
    }
    let one = batches(Some(0));
    for name in ["max_error", "r2"] {
        let got = run(metric(name, "{}", ElementKind::Float, 1).as_mut(), &one);
        assert_close(
            name,
            got[name],
            r["expected_single"][name].as_f64().unwrap(),
        );
    }
}

#[test]
fn classification_metrics_match_sklearn() {
    let fixture: Value = serde_json::from_str(include_str!("fixtures/metrics.json")).unwrap();
    let c = &fixture["classification"];
    let expected = &c["expected"];
    let batches: Vec<(Batch, Output)> = c["scores"]
        .as_array()
        .unwrap()
        .iter()
        .zip(c["labels"].as_array().unwrap())
        .map(|(s, l)| {
            let (s, shape) = matrix(s);
            let labels: Vec<i64> = l
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            let n = labels.len();
            let batch = Batch::batch();
            let mut batch = batch;
            batch.insert_int(
                "y",
                Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), &device()),
            );
            (
                batch,
                Output::output().with_float(
                    "pred",
                    Tensor::<2>::from_data(TensorData::new(s, shape), &device()),
                ),
            )
        })
        .collect();
    let single =
        |name: &str, args: &str| run(metric(name, args, ElementKind::Int, 1).as_mut(), &batches);
    assert_close(
        "accuracy",
        single("accuracy", "{}")["accuracy"],
        expected["accuracy"].as_f64().unwrap(),
    );
    assert_close(
        "top2",
        single("top_k_accuracy", "{k: 2}")["top2_accuracy"],
        expected["top2_accuracy"].as_f64().unwrap(),
    );
    for name in ["precision", "recall", "f1"] {
        for average in ["macro", "micro", "weighted"] {
            let key = format!("{name}_{average}");
            let got = single(name, &format!("{{average: {average}}}"));
            assert_close(&key, got[&key], expected[&key].as_f64().unwrap());
        }
    }
    let per_class = single("per_class", "{}");
    for name in ["precision", "recall", "f1"] {
        for (i, want) in expected[format!("{name}_class")]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            assert_close(
                &format!("{name}_class{i}"),
                per_class[&format!("{name}_class{i}")],
                want.as_f64().unwrap(),
            );
        }
    }
    let mut confusion = metric("confusion_matrix", "{}", ElementKind::Int, 1);
    assert!(run(confusion.as_mut(), &batches).is_empty());
    let artifacts = confusion.artifacts().unwrap();
    assert_eq!(artifacts[0].0, "confusion_matrix");
    let rows: Vec<Vec<u64>> = artifacts[0]
        .1
        .lines()
        .skip(1)
        .map(|l| l.split(',').skip(1).map(|v| v.parse().unwrap()).collect())
        .collect();
    let want: Vec<Vec<u64>> = serde_json::from_value(expected["confusion_matrix"].clone()).unwrap();
    assert_eq!(rows, want);
}
