//! The callback connector: the configured callbacks plus the implicit ones the loop's arguments
//! ask for (Lightning's `_CallbackConnector`), in the order hooks run, and one dispatch of a
//! hook to all of them.
//!
//! Implicit callbacks: the model summary (first, `enable_model_summary`), a `ModelCheckpoint`
//! when checkpointing is on and no configured callback writes the run's checkpoints, a `Timer`
//! for `max_time`, and the progress bar with the epoch line (last).

use stoker::callback::{BestCheckpoint, Callback, HookContext};
use stoker::console;
use stoker::error::{Result, StokerError};

use crate::args::LoopArgs;
use crate::callbacks::model_checkpoint::ModelCheckpoint;
use crate::callbacks::model_summary::ModelSummary;
use crate::callbacks::progress_bar::ProgressBar;
use crate::callbacks::timer::Timer;

/// One callback and whether the loop added it.
struct Slot {
    name: String,
    callback: Box<dyn Callback>,
    implicit: bool,
}

/// Every callback of the fit, in the order hooks run.
pub struct CallbackConnector {
    slots: Vec<Slot>,
}

/// The callbacks' states, as a checkpoint keeps them.
#[derive(Clone)]
pub struct CallbackStates {
    /// The configured callbacks' names and states, in the order they run.
    pub configured: Vec<(String, serde_json::Value)>,
    /// The implicit callbacks' names and states.
    pub implicit: Vec<(String, serde_json::Value)>,
}

impl CallbackConnector {
    /// The configured callbacks with the implicit ones `args` asks for; `has_val` says whether
    /// the implicit checkpoint can monitor `val_loss`.
    pub fn configure(
        configured: Vec<(String, Box<dyn Callback>)>,
        args: &LoopArgs,
        has_val: bool,
    ) -> Self {
        let implicit = |name: &str, callback: Box<dyn Callback>| Slot {
            name: name.to_string(),
            callback,
            implicit: true,
        };
        let mut slots = Vec::new();
        if args.enable_model_summary {
            slots.push(implicit("ModelSummary", Box::new(ModelSummary)));
        }
        let checkpointing = configured.iter().any(|(_, c)| c.writes_checkpoints());
        slots.extend(configured.into_iter().map(|(name, callback)| Slot {
            name,
            callback,
            implicit: false,
        }));
        if args.enable_checkpointing && !args.dev_run() && !checkpointing {
            let monitor = has_val.then(|| "val_loss".to_string());
            slots.push(implicit(
                "ModelCheckpoint",
                Box::new(ModelCheckpoint::implicit(monitor)),
            ));
        }
        // Checkpointing callbacks run after the others (they see what the others logged).
        slots.sort_by_key(|s| s.callback.runs_last());
        // The time budget after them: a stop another callback asks for in the same hook keeps
        // its reason.
        if let Some(budget) = args.max_time {
            slots.push(implicit("Timer", Box::new(Timer::max_time(budget))));
        }
        slots.push(implicit(
            "ProgressBar",
            Box::new(ProgressBar::new(
                args.enable_progress_bar,
                args.epochs(),
                args.progress_bar_metrics.clone(),
            )),
        ));
        CallbackConnector { slots }
    }

    /// Runs `f` on every callback with `ctx` (whose `control` collects what they ask for).
    /// The notes a callback asks to print are printed as soon as it returns, so that they come
    /// before what a later one prints (the epoch line last).
    pub fn call(
        &mut self,
        ctx: &mut HookContext<'_>,
        mut f: impl FnMut(&mut dyn Callback, &mut HookContext<'_>) -> Result<()>,
    ) -> Result<()> {
        for slot in self.slots.iter_mut() {
            let result = f(slot.callback.as_mut(), ctx);
            for note in std::mem::take(&mut ctx.control.notes) {
                console::note(note);
            }
            result.map_err(|e| StokerError::msg(format!("callback {}: {e}", slot.name)))?;
        }
        Ok(())
    }

    /// The best checkpoint a callback has written.
    pub fn best_checkpoint(&self) -> Option<BestCheckpoint> {
        self.slots.iter().find_map(|s| s.callback.best_checkpoint())
    }

    /// Every callback's state.
    pub fn states(&mut self) -> Result<CallbackStates> {
        let mut states = CallbackStates {
            configured: Vec::new(),
            implicit: Vec::new(),
        };
        for slot in self.slots.iter_mut() {
            let state = (slot.name.clone(), slot.callback.on_save_checkpoint()?);
            match slot.implicit {
                true => states.implicit.push(state),
                false => states.configured.push(state),
            }
        }
        Ok(states)
    }

    /// Restores the states a checkpoint (`path`) kept: the configured callbacks must be those
    /// it was written with; an implicit one takes the saved state of its name, if any.
    pub fn restore(&mut self, saved: &CallbackStates, path: &str) -> Result<()> {
        let names = |list: &[(String, serde_json::Value)]| {
            list.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
        };
        let ours: Vec<String> = self
            .slots
            .iter()
            .filter(|s| !s.implicit)
            .map(|s| s.name.clone())
            .collect();
        let saved = &self.legacy_layout(saved, &ours);
        if names(&saved.configured) != ours {
            return Err(StokerError::msg(format!(
                "{path}: it was written with callbacks [{}], the config has [{}]",
                names(&saved.configured).join(", "),
                ours.join(", ")
            )));
        }
        let mut configured = saved.configured.iter();
        for slot in self.slots.iter_mut() {
            let state = if slot.implicit {
                saved.implicit.iter().find(|(n, _)| *n == slot.name)
            } else {
                configured.next()
            };
            if let Some((_, state)) = state {
                slot.callback.on_load_checkpoint(state)?;
            }
        }
        Ok(())
    }

    /// A checkpoint written before implicit callbacks were kept apart listed them with the
    /// configured ones: those of an implicit callback's name that no configured callback has
    /// are taken as implicit.
    fn legacy_layout(&self, saved: &CallbackStates, ours: &[String]) -> CallbackStates {
        if !saved.implicit.is_empty() {
            return saved.clone();
        }
        let implicit_names: Vec<&str> = self
            .slots
            .iter()
            .filter(|s| s.implicit)
            .map(|s| s.name.as_str())
            .collect();
        let (implicit, configured) =
            saved.configured.iter().cloned().partition(|(name, _)| {
                implicit_names.contains(&name.as_str()) && !ours.contains(name)
            });
        CallbackStates {
            configured,
            implicit,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Keeps the state it is given.
    struct Keeper(Arc<Mutex<Option<serde_json::Value>>>);

    impl Callback for Keeper {
        fn on_load_checkpoint(&mut self, state: &serde_json::Value) -> Result<()> {
            *self.0.lock().unwrap() = Some(state.clone());
            Ok(())
        }
    }

    fn connector(loaded: &Arc<Mutex<Option<serde_json::Value>>>) -> CallbackConnector {
        let args: LoopArgs = stoker::__private::serde_yaml::from_str("max_epochs: 1").unwrap();
        let keeper: Box<dyn Callback> = Box::new(Keeper(Arc::clone(loaded)));
        CallbackConnector::configure(vec![("Keeper".into(), keeper)], &args, true)
    }

    #[test]
    fn states_keep_implicit_callbacks_apart_and_older_checkpoints_still_restore() {
        let loaded = Arc::new(Mutex::new(None));
        let mut callbacks = connector(&loaded);
        let states = callbacks.states().unwrap();
        let names = |list: &[(String, serde_json::Value)]| -> Vec<String> {
            list.iter().map(|(n, _)| n.clone()).collect()
        };
        assert_eq!(names(&states.configured), ["Keeper"]);
        assert_eq!(
            names(&states.implicit),
            ["ModelSummary", "ModelCheckpoint", "ProgressBar"]
        );

        // Written before implicit callbacks were kept apart: the implicit checkpoint among the
        // configured ones.
        let legacy = CallbackStates {
            configured: vec![
                ("Keeper".into(), serde_json::json!(7)),
                (
                    "ModelCheckpoint".into(),
                    serde_json::json!({"kept": [], "last_check_step": 3}),
                ),
            ],
            implicit: Vec::new(),
        };
        connector(&loaded)
            .restore(&legacy, "old.safetensors")
            .unwrap();
        assert_eq!(*loaded.lock().unwrap(), Some(serde_json::json!(7)));

        // Other configured callbacks than the checkpoint's are refused, naming both lists.
        let other = CallbackStates {
            configured: vec![("EarlyStopping".into(), serde_json::Value::Null)],
            implicit: Vec::new(),
        };
        let error = connector(&loaded)
            .restore(&other, "x.safetensors")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("written with callbacks [EarlyStopping], the config has [Keeper]"),
            "{error}"
        );
    }
}
