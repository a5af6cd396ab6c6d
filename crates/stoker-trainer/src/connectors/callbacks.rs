//! The callback connector: the configured callbacks plus the implicit ones the loop's arguments
//! ask for (Lightning's `_CallbackConnector`), in the order hooks run, and one dispatch of a
//! hook to all of them.
//!
//! Implicit callbacks: the model summary (first, `enable_model_summary`), a `ModelCheckpoint`
//! when checkpointing is on and no configured callback writes the run's checkpoints, a `Timer`
//! for `max_time`, and the progress bar with the epoch line (last).

use stoker::callback::{BestCheckpoint, Callback, HookContext};
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
        if let Some(budget) = args.max_time {
            slots.push(implicit("Timer", Box::new(Timer::max_time(budget))));
        }
        // Checkpointing callbacks run after the others (they see what the others logged).
        slots.sort_by_key(|s| s.callback.runs_last());
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
    pub fn call(
        &mut self,
        ctx: &mut HookContext<'_>,
        mut f: impl FnMut(&mut dyn Callback, &mut HookContext<'_>) -> Result<()>,
    ) -> Result<()> {
        for slot in self.slots.iter_mut() {
            f(slot.callback.as_mut(), ctx)
                .map_err(|e| StokerError::msg(format!("callback {}: {e}", slot.name)))?;
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
}
