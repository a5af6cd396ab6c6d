//! The run lifecycle as a library (`stoker-run`), in-process: an experiment from a YAML string,
//! trained, with the per-epoch history handed back equal to what `metrics.csv` holds.

mod common;

use common::{Scratch, csv_rows};

#[test]
fn an_experiment_given_as_yaml_trains_and_hands_back_its_history() {
    let scratch = Scratch::new("api");
    let yaml = format!(
        "name: api
environment: {{seed: 5, device: cpu, output_dir: {}}}
data: {{name: SyntheticRegression, args: {{n_samples: 256, n_features: 4, batch_size: 32}}}}
model: {{name: MLP, args: {{sizes: [4, 8, 1]}}}}
loss: mse
metrics: [mse]
optimizer: {{name: adam, args: {{lr: 0.01}}}}
trainer: {{name: Default_trainer, args: {{max_epochs: 5, enable_progress_bar: false}}}}
",
        scratch.path("out").display()
    );
    let run = stoker_run::setup_from_yaml(&yaml, &["trainer.args.max_epochs=3".into()]).unwrap();
    let trained = run.train(&stoker_run::TrainOptions::default()).unwrap();
    assert_eq!(trained.report.epochs, 3);
    let history = &trained.report.history;
    assert_eq!(history.len(), 3);
    // The history is what metrics.csv holds at each epoch's end.
    let rows: Vec<_> = csv_rows(&trained.run_dir)
        .into_iter()
        .filter(|r| r.contains_key("val_loss"))
        .collect();
    assert_eq!(rows.len(), 3);
    for (values, row) in history.iter().zip(&rows) {
        for key in ["train_loss", "train_mse", "val_loss", "val_mse"] {
            let logged: f64 = row[key].parse().unwrap();
            assert!(
                (values[key] - logged).abs() <= 1e-6 * logged.abs().max(1.0),
                "{key}"
            );
        }
    }
    assert!(trained.run_dir.join("summary.json").is_file());
    assert!(trained.run_dir.join("run.log").is_file());

    // A mistake in the text is a config error naming its YAML path.
    let broken = yaml.replace("max_epochs: 5", "max_epoch: 5");
    let error = stoker_run::setup_from_yaml(&broken, &[]).err().unwrap();
    assert_eq!(error.yaml_path.as_deref(), Some("trainer.args.max_epoch"));
}
