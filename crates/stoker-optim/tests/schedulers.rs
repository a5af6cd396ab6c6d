//! Every scheduler against `torch.optim.lr_scheduler` or the `transformers` schedule functions
//! (`fixtures/make_scheduler_fixtures.py`): the rate at each of 60 advances, to 1e-6 relative;
//! and a scheduler restored from its saved state halfway continues identically.

use std::collections::BTreeMap;

use serde_json::Value;
use stoker::prelude::*;
use stoker::registry::{self, AnySpec, Kind};
use stoker_optim as _;

fn context(base_lr: f64, length: usize) -> BuildContext {
    #[allow(deprecated)]
    let device = Device::libtorch();
    BuildContext {
        device,
        seed: 0,
        data: None,
        parameters: None,
        base_lr: Some(base_lr),
        horizon: Some(Horizon {
            epochs: Some(length),
            steps_per_epoch: 1,
            total_steps: Some(length),
        }),
    }
}

fn build(case: &Value, ctx: &BuildContext) -> Box<dyn LrScheduler> {
    let name = case["case"].as_str().unwrap();
    let registration =
        registry::find(Kind::Scheduler, case["scheduler"].as_str().unwrap()).unwrap();
    let args: serde_yaml::Value = serde_yaml::to_value(&case["args"]).unwrap();
    let AnySpec::Scheduler(spec) = (registration.parse)(args)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .spec
    else {
        panic!("not a scheduler")
    };
    spec.build(ctx).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// One advance, whatever the schedule's interval: an optimizer step and an epoch's end (a
/// schedule reacts to its own interval's event only).
fn advance(scheduler: &mut dyn LrScheduler, metric: Option<f64>) {
    scheduler.on_optimizer_step();
    let metrics: BTreeMap<String, f64> = metric
        .map(|m| ("val_loss".to_string(), m))
        .into_iter()
        .collect();
    scheduler.on_epoch_end(&metrics).unwrap();
}

#[test]
fn schedulers_follow_torch_and_transformers() {
    let fixture: Value = serde_json::from_str(include_str!("fixtures/schedulers.json")).unwrap();
    let base = fixture["base_lr"].as_f64().unwrap();
    let length = fixture["length"].as_u64().unwrap() as usize;
    let ctx = context(base, length);
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 20);
    for case in cases {
        let name = case["case"].as_str().unwrap();
        let expected: Vec<f64> = case["lrs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let metric: Vec<f64> = case["metric"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let mut scheduler = build(case, &ctx);
        let mut restored = None;
        for (t, want) in expected.iter().enumerate() {
            let got = scheduler.lr();
            assert!(
                (got - want).abs() <= 1e-6 * want.abs().max(1e-12),
                "{name}: advance {t}: {got} vs {want}"
            );
            if let Some(other) = restored.as_mut() {
                let other: &mut Box<dyn LrScheduler> = other;
                assert_eq!(
                    other.lr(),
                    got,
                    "{name}: the restored scheduler differs at advance {t}"
                );
                advance(other.as_mut(), metric.get(t).copied());
            }
            advance(scheduler.as_mut(), metric.get(t).copied());
            if t == 29 {
                let mut fresh = build(case, &ctx);
                fresh.load_state(&scheduler.state()).unwrap();
                restored = Some(fresh);
            }
        }
    }
}

#[test]
fn warmup_reports_errors_inside_its_nested_schedule() {
    let ctx = context(0.1, 60);
    let registration = registry::find(Kind::Scheduler, "warmup").unwrap();
    let parse = |yaml: &str| {
        let AnySpec::Scheduler(spec) = (registration.parse)(serde_yaml::from_str(yaml).unwrap())
            .unwrap()
            .spec
        else {
            panic!()
        };
        spec.build(&ctx).err().unwrap()
    };
    let error = parse("{warmup_steps: 5, after: {name: cosin}}");
    assert_eq!(error.arg.as_deref(), Some("after.name"));
    assert!(error.hint.unwrap().contains("cosine"));
    let error = parse("{warmup_steps: 5, after: {name: step, args: {step_sise: 3}}}");
    assert_eq!(error.arg.as_deref(), Some("after.args.step_sise"));
    assert!(
        error.message.contains("unknown field `step_sise`"),
        "{}",
        error.message
    );
    let error = parse("{warmup_steps: 5, after: {name: cosine, args: {t_max: 0}}}");
    assert_eq!(error.arg.as_deref(), Some("after.args.t_max"));
}

/// `limit_train_batches` or `overfit_batches` can make a run shorter than its warm-up: the
/// warm-up then runs over the whole run (linearly, as configured), and what follows it has one
/// step, where it used to be refused ("must be at least 1").
#[test]
fn a_warmup_longer_than_a_shortened_run_fills_it() {
    let ctx = context(0.1, 4);
    let registration = registry::find(Kind::Scheduler, "warmup").unwrap();
    let yaml = "{warmup_steps: 10, interval: step, after: {name: cosine, args: {eta_min: 0.0}}}";
    let AnySpec::Scheduler(spec) = (registration.parse)(serde_yaml::from_str(yaml).unwrap())
        .unwrap()
        .spec
    else {
        panic!()
    };
    let mut scheduler = spec.build(&ctx).unwrap();
    let mut rates = Vec::new();
    for _ in 0..4 {
        rates.push(scheduler.lr());
        scheduler.on_optimizer_step();
    }
    // torch's LinearLR(start_factor=0, total_iters=10) over the first 4 steps: 0.1 * k / 10.
    let expected = [0.0, 0.01, 0.02, 0.03];
    for (got, want) in rates.iter().zip(expected) {
        assert!((got - want).abs() < 1e-12, "{rates:?}");
    }
}
