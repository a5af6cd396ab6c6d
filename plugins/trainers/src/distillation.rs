//! `Distillation_trainer`: knowledge distillation (Hinton, Vinyals & Dean 2015, "Distilling the
//! knowledge in a neural network"). A teacher, loaded from a stoker run (its config and a
//! checkpoint), frozen and in evaluation mode, scores every training and validation batch; its
//! scores join the student's output, where the experiment's loss reads them (the `distillation`
//! loss: alpha T^2 KL(teacher_T || student_T) + (1 - alpha) CE(student, labels)).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stoker::prelude::*;
use stoker::registry::Named;
use stoker::run::latest_version;
use stoker::trainer::Trainer;
use stoker::training::{
    Loop, LoopArgs, StepContext, StepOutput, StepTrainer, TrainingStep, ValidationContext,
};

fn default_teacher_output() -> String {
    "teacher_logits".into()
}

/// Knowledge distillation: a frozen teacher (a stoker run's model, in evaluation mode) scores each batch, and its scores join the student's output as `teacher_output`, which the experiment's loss reads (`{name: distillation, args: {temperature, alpha}}`); validation and `cargo xtask eval` see them too. `teacher` is a checkpoint file, a run's directory (its best checkpoint, else its last) or an experiment's output directory (its newest run); the teacher's model comes from that run's config.yaml.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[component(trainer, name = "Distillation_trainer")]
pub struct DistillationTrainerSpec {
    /// The loop's arguments, as Default_trainer takes them.
    #[serde(flatten)]
    pub loop_args: LoopArgs,
    /// The teacher: a checkpoint (`runs/x/version_0/checkpoints/last.safetensors`), a run directory (`runs/x/version_0`) or an experiment's directory (`runs/x`).
    pub teacher: PathBuf,
    /// The teacher's experiment file, whose `model` is built (default: the config.yaml of the checkpoint's run).
    #[serde(default)]
    pub teacher_config: Option<PathBuf>,
    /// The teacher's output holding its class scores.
    #[serde(default = "stoker::names::prediction")]
    pub teacher_pred: String,
    /// The name the teacher's scores get in the student's output (the distillation loss's `teacher`).
    #[serde(default = "default_teacher_output")]
    pub teacher_output: String,
}

/// Where the teacher's checkpoint and config are.
#[derive(Debug, Clone, PartialEq)]
struct TeacherFiles {
    checkpoint: PathBuf,
    config: PathBuf,
}

fn not_a_teacher(path: &Path, why: &str) -> BuildError {
    BuildError::at("teacher", format!("{}: {why}", path.display())).hint(
        "give a checkpoint file, a run directory (runs/NAME/version_N) or an experiment's directory (runs/NAME) of a finished teacher run",
    )
}

/// The newest `version_N` run directory under an experiment's directory `dir`.
fn newest_version(dir: &Path) -> Option<PathBuf> {
    latest_version(dir).map(|v| dir.join(format!("version_{v}")))
}

/// The run directory's best checkpoint (from its summary.json), else its last.
fn run_checkpoint(run: &Path) -> Option<PathBuf> {
    let best = std::fs::read_to_string(run.join("summary.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|summary| summary["best_checkpoint"].as_str().map(PathBuf::from))
        .filter(|p| p.is_file());
    best.or_else(|| {
        let last = run.join("checkpoints").join("last.safetensors");
        last.is_file().then_some(last)
    })
}

impl DistillationTrainerSpec {
    /// Resolves `teacher` (and `teacher_config`) to the files to load.
    fn files(&self) -> std::result::Result<TeacherFiles, BuildError> {
        let given = &self.teacher;
        let checkpoint = if given.is_file() {
            given.clone()
        } else if given.is_dir() {
            let run = if given.join("summary.json").is_file() || given.join("checkpoints").is_dir()
            {
                given.clone()
            } else {
                newest_version(given)
                    .ok_or_else(|| not_a_teacher(given, "a directory without runs"))?
            };
            run_checkpoint(&run)
                .ok_or_else(|| not_a_teacher(&run, "a run without a best or last checkpoint"))?
        } else {
            return Err(not_a_teacher(given, "no such file or directory"));
        };
        let config = match &self.teacher_config {
            Some(config) => config.clone(),
            None => checkpoint
                .parent()
                .and_then(Path::parent)
                .map(|run| run.join("config.yaml"))
                .filter(|c| c.is_file())
                .ok_or_else(|| {
                    BuildError::at(
                        "teacher_config",
                        format!(
                            "the checkpoint {} is not in a run directory with a config.yaml",
                            checkpoint.display()
                        ),
                    )
                    .hint("name the teacher's experiment file in trainer.args.teacher_config")
                })?,
        };
        Ok(TeacherFiles { checkpoint, config })
    }

    /// The teacher's `model` component, from its experiment file.
    fn teacher_model(config: &Path) -> std::result::Result<Named, BuildError> {
        let at =
            |why: String| BuildError::at("teacher_config", format!("{}: {why}", config.display()));
        let text = std::fs::read_to_string(config).map_err(|e| at(e.to_string()))?;
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&text).map_err(|e| at(format!("not YAML: {e}")))?;
        let model = doc
            .get("model")
            .ok_or_else(|| at("it has no `model`".into()))?;
        let name = model
            .get("name")
            .and_then(|n| n.as_str())
            .or_else(|| model.as_str())
            .ok_or_else(|| at("its `model` has no name".into()))?;
        Ok(Named {
            name: name.to_string(),
            args: model.get("args").cloned(),
        })
    }
}

/// FNV-1a, 64 bits: a fingerprint of the teacher's weights, kept in checkpoints so that a
/// resume with another teacher is refused.
fn fingerprint(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

impl TrainerSpec for DistillationTrainerSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Trainer>, BuildError> {
        let files = self.files()?;
        let named = Self::teacher_model(&files.config)?;
        let mut teacher = named
            .parse::<dyn ModelSpec>("teacher_config model")?
            .build(ctx)
            .map_err(|e| {
                BuildError::at(
                    "teacher_config",
                    format!(
                        "the teacher's model ({}) does not build on this data: {}",
                        files.config.display(),
                        e.message
                    ),
                )
            })?;
        let checkpoint = stoker::checkpoint::load(&files.checkpoint)
            .map_err(|e| BuildError::at("teacher", e.to_string()))?;
        let fingerprint = fingerprint(&checkpoint.weights);
        teacher.load_safetensors(checkpoint.weights).map_err(|e| {
            BuildError::at(
                "teacher",
                format!(
                    "{} does not fit the model of {}: {e}",
                    files.checkpoint.display(),
                    files.config.display()
                ),
            )
        })?;
        let step = DistillationStep {
            teacher: teacher.for_eval(),
            teacher_params: teacher.num_params(),
            fingerprint,
            teacher_pred: self.teacher_pred.clone(),
            teacher_output: self.teacher_output.clone(),
        };
        stoker::console::note(format!(
            "Distillation_trainer: teacher {} ({} parameters) from {}",
            named.name,
            step.teacher_params,
            files.checkpoint.display()
        ));
        Ok(Box::new(StepTrainer::new(
            Loop::build(&self.loop_args, ctx)?,
            step,
        )))
    }

    stoker::training::loop_args_methods!();
}

/// The distillation step: the teacher's scores added to the student's output.
struct DistillationStep {
    /// The teacher, in evaluation mode, without autodiff: frozen.
    teacher: Box<dyn DynModel>,
    teacher_params: usize,
    fingerprint: String,
    teacher_pred: String,
    teacher_output: String,
}

impl DistillationStep {
    /// `output` with the teacher's scores `teacher` added.
    fn with_teacher(&self, mut output: Output, teacher: &Output) -> Result<Output> {
        let scores = teacher.bridge(&self.teacher_pred).map_err(|e| {
            StokerError::msg(format!(
                "Distillation_trainer, the teacher's output (trainer.args.teacher_pred): {e}"
            ))
        })?;
        output.insert_bridge(self.teacher_output.clone(), scores);
        Ok(output)
    }
}

impl TrainingStep for DistillationStep {
    fn training_step(&mut self, ctx: &mut StepContext<'_>) -> Result<StepOutput> {
        let teacher = ctx.forward_with(self.teacher.as_ref(), ctx.batch)?;
        let output = ctx.forward()?;
        let output = self.with_teacher(output, &teacher)?;
        let loss = ctx.compute_loss(&output)?;
        let grads = ctx.backward(loss.total.clone());
        Ok(StepOutput {
            output,
            loss,
            grads,
            batch: None,
        })
    }

    fn validation_step(&mut self, ctx: &ValidationContext<'_>) -> Result<(Output, LossValue)> {
        let teacher = self.teacher.forward(ctx.batch)?;
        let output = self.with_teacher(ctx.model.forward(ctx.batch)?, &teacher)?;
        let loss = ctx.loss.forward(&output, ctx.batch)?;
        Ok((output, loss))
    }

    fn state(&self) -> Result<serde_json::Value> {
        Ok(serde_json::json!({ "teacher_weights": self.fingerprint }))
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        match state["teacher_weights"].as_str() {
            Some(kept) if kept == self.fingerprint => Ok(()),
            Some(_) => Err(StokerError::msg(
                "Distillation_trainer: the teacher's weights differ from the ones this run started with; resume with the same teacher checkpoint (trainer.args.teacher), or start a new run",
            )),
            None => Err(StokerError::msg(
                "Distillation_trainer: the checkpoint holds no teacher fingerprint; it was not written by Distillation_trainer",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_fnv1a() {
        // The published FNV-1a 64 test vectors.
        assert_eq!(fingerprint(b""), "cbf29ce484222325");
        assert_eq!(fingerprint(b"a"), "af63dc4c8601ec8c");
        assert_eq!(fingerprint(b"foobar"), "85944171f73967e8");
    }

    #[test]
    fn a_teacher_resolves_from_a_file_a_run_or_an_experiment() {
        let root = std::env::temp_dir().join(format!("stoker-teacher-{}", std::process::id()));
        let run = root.join("teacher").join("version_3");
        std::fs::create_dir_all(run.join("checkpoints")).unwrap();
        std::fs::create_dir_all(root.join("teacher").join("version_1")).unwrap();
        std::fs::write(run.join("config.yaml"), "model: {name: MLP}\n").unwrap();
        let last = run.join("checkpoints").join("last.safetensors");
        let best = run.join("checkpoints").join("epoch=2-step=9.safetensors");
        std::fs::write(&last, b"").unwrap();
        let spec = |teacher: &Path| DistillationTrainerSpec {
            loop_args: serde_json::from_str("{}").unwrap(),
            teacher: teacher.to_path_buf(),
            teacher_config: None,
            teacher_pred: "pred".into(),
            teacher_output: "teacher_logits".into(),
        };
        let expected = TeacherFiles {
            checkpoint: last.clone(),
            config: run.join("config.yaml"),
        };
        // Without a summary: the last checkpoint, from the run or the experiment directory.
        assert_eq!(spec(&run).files().unwrap(), expected);
        assert_eq!(spec(&root.join("teacher")).files().unwrap(), expected);
        assert_eq!(spec(&last).files().unwrap(), expected);
        // With a summary naming a best checkpoint: that one.
        std::fs::write(&best, b"").unwrap();
        let summary = serde_json::json!({ "best_checkpoint": best });
        std::fs::write(run.join("summary.json"), summary.to_string()).unwrap();
        assert_eq!(spec(&run).files().unwrap().checkpoint, best);
        // The teacher's model from its config.
        let named = DistillationTrainerSpec::teacher_model(&run.join("config.yaml")).unwrap();
        assert_eq!(named.name, "MLP");
        // Errors name the argument.
        let missing = spec(&root.join("nowhere")).files().unwrap_err();
        assert_eq!(missing.arg.as_deref(), Some("teacher"));
        assert!(
            missing.message.contains("no such file"),
            "{}",
            missing.message
        );
        let empty = root.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let no_runs = spec(&empty).files().unwrap_err();
        assert!(
            no_runs.message.contains("without runs"),
            "{}",
            no_runs.message
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
