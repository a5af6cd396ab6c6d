//! The progress bar and the epoch line (implicit, always last). The bar (step / total, it/s,
//! ETA, the live loss, chosen metrics and the LR) is drawn only when `enable_progress_bar` is on
//! and stdout is a terminal; the line `epoch 3/20  step 156  train_loss ...  lr ...  1.23s` is
//! printed at every epoch's end either way, with no control codes.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressDrawTarget, ProgressState, ProgressStyle};
use stoker::callback::{Callback, HookContext};
use stoker::console;
use stoker::error::Result;
use stoker::metric::StepView;

/// How often the bar's message (which reads the loss off the device) is refreshed at most.
const MESSAGE_EVERY: Duration = Duration::from_millis(250);

/// The progress bar and epoch line.
pub struct ProgressBar {
    enabled: bool,
    max_epochs: Option<usize>,
    chosen: Vec<String>,
    bar: Option<indicatif::ProgressBar>,
    last_message: Option<Instant>,
    epoch_started: Instant,
    epoch_lr: f64,
}

impl ProgressBar {
    /// A bar (when `enabled` and stdout is a terminal) labelled out of `max_epochs`, whose
    /// message shows `chosen` logged values (the latest `val_*` ones when empty).
    pub fn new(enabled: bool, max_epochs: Option<usize>, chosen: Vec<String>) -> Self {
        ProgressBar {
            enabled: enabled && std::io::stdout().is_terminal(),
            max_epochs,
            chosen,
            bar: None,
            last_message: None,
            epoch_started: Instant::now(),
            epoch_lr: 0.0,
        }
    }

    /// `epoch 3/20` (or `epoch 3` when only steps or time bound training).
    fn label(&self, epoch: usize) -> String {
        match self.max_epochs {
            Some(max) => {
                let width = max.to_string().len();
                format!("epoch {:>width$}/{max}", epoch + 1)
            }
            None => format!("epoch {}", epoch + 1),
        }
    }

    /// The bar's message: the live loss, the chosen metrics, the LR.
    fn message(&self, ctx: &HookContext<'_>, loss: f64) -> String {
        let mut parts = vec![format!("loss {}", format_value(loss))];
        let chosen: Vec<&String> = if self.chosen.is_empty() {
            ctx.metrics
                .keys()
                .filter(|k| k.starts_with("val_"))
                .collect()
        } else {
            self.chosen.iter().collect()
        };
        for name in chosen {
            if let Some(value) = ctx.metrics.get(name) {
                parts.push(format!("{name} {}", format_value(*value)));
            }
        }
        parts.push(format!("lr {:.2e}", ctx.lr));
        parts.join("  ")
    }

    fn start_epoch(&mut self, ctx: &HookContext<'_>) {
        self.epoch_started = Instant::now();
        self.epoch_lr = ctx.lr;
    }

    fn finish_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            console::set_progress_bar(None);
        }
    }
}

impl Callback for ProgressBar {
    fn on_fit_start(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        self.start_epoch(ctx);
        Ok(())
    }

    fn on_train_epoch_start(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        self.start_epoch(ctx);
        Ok(())
    }

    fn on_train_batch_end(
        &mut self,
        ctx: &mut HookContext<'_>,
        step: &StepView<'_>,
        _stepped: bool,
    ) -> Result<()> {
        if !self.enabled || !ctx.is_global_zero {
            return Ok(());
        }
        let position = ctx.position;
        if self.bar.is_none() {
            let label = self.label(position.epoch);
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(position.batches_in_epoch as u64),
                ProgressDrawTarget::stdout(),
            )
            .with_style(style())
            .with_prefix(label)
            .with_position(position.batch.saturating_sub(1) as u64);
            bar.reset_eta();
            console::set_progress_bar(Some(bar.clone()));
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(position.batch as u64);
        }
        if self
            .last_message
            .is_none_or(|at| at.elapsed() >= MESSAGE_EVERY)
        {
            let loss = step.loss.total.clone().into_scalar::<f64>();
            let message = self.message(ctx, loss);
            if let Some(bar) = &self.bar {
                bar.set_message(message);
            }
            self.last_message = Some(Instant::now());
        }
        Ok(())
    }

    fn on_validation_start(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        // The epoch line replaces the bar after the epoch's last validation; one inside the
        // epoch leaves it.
        if ctx.position.batch >= ctx.position.batches_in_epoch {
            self.finish_bar();
        }
        Ok(())
    }

    fn on_train_epoch_end(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        self.finish_bar();
        let mut line = self.label(ctx.position.epoch);
        line.push_str(&format!("  step {}", ctx.position.global_step));
        for (name, value) in ctx.epoch_metrics {
            line.push_str(&format!("  {name} {}", format_value(*value)));
        }
        let seconds = self.epoch_started.elapsed().as_secs_f64();
        line.push_str(&format!("  lr {:.2e}  {seconds:.2}s", self.epoch_lr));
        console::line(line);
        Ok(())
    }

    fn on_exception(&mut self, _ctx: &mut HookContext<'_>, _error: &str) -> Result<()> {
        self.finish_bar();
        Ok(())
    }
}

impl Drop for ProgressBar {
    fn drop(&mut self) {
        self.finish_bar();
    }
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix} {bar:25.cyan/blue} {pos}/{len} [{elapsed_precise}<{eta_precise}, {rate}] {msg}",
    )
    .expect("the template is valid")
    .with_key(
        "rate",
        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.1} it/s", state.per_sec());
        },
    )
    .progress_chars("=> ")
}

/// A value as the epoch line prints it.
pub fn format_value(value: f64) -> String {
    let magnitude = value.abs();
    if value == 0.0 || (1e-3..1e4).contains(&magnitude) {
        format!("{value:.4}")
    } else {
        format!("{value:.3e}")
    }
}
