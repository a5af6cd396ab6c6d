//! Training from Rust rather than from the command line (the fluid seed's `setup_training` /
//! `run_training`): an experiment given as a YAML string, trained, and its per-epoch history
//! read back.
//!
//! ```sh
//! cargo xtask example train_from_yaml
//! ```

use stoker_run::{TrainOptions, setup_from_yaml};

const EXPERIMENT: &str = "
name: from_rust
environment: {seed: 0, device: cpu, output_dir: runs}
data: {name: SyntheticRegression, args: {n_samples: 2048, n_features: 8, batch_size: 64}}
model: {name: MLP, args: {sizes: [8, 32, 1], activation: gelu}}
loss: mse
metrics: [mse]
optimizer: {name: adam, args: {lr: 3.0e-3}}
trainer: {name: Default_trainer, args: {max_epochs: 5, enable_progress_bar: false}}
";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Set up: every component built and checked, one trial batch through the model.
    let run = setup_from_yaml(EXPERIMENT, &["trainer.args.max_epochs=4".into()])?;
    // Train: the run directory, checkpoints, loggers, summary and report, as `stoker train`.
    let trained = run.train(&TrainOptions::default())?;
    println!("run directory: {}", trained.run_dir.display());
    for (epoch, values) in trained.report.history.iter().enumerate() {
        println!(
            "epoch {epoch}: train_loss {:.4}  val_loss {:.4}",
            values["train_loss"], values["val_loss"]
        );
    }
    Ok(())
}
