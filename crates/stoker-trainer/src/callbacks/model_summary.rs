//! The model summary (implicit with `enable_model_summary`, first): each layer's parameters, the
//! total, the trainable count and the size, printed when training starts.

use stoker::callback::{Callback, HookContext};
use stoker::console;
use stoker::error::Result;

use crate::summary::model_summary;

/// Prints the model summary at the start of the fit.
pub struct ModelSummary;

impl Callback for ModelSummary {
    fn on_fit_start(&mut self, ctx: &mut HookContext<'_>) -> Result<()> {
        console::line(format!(
            "model summary\n{}",
            model_summary(&ctx.model.parameters())
        ));
        Ok(())
    }
}
