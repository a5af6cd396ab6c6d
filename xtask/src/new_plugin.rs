//! `cargo xtask new-plugin NAME`: a new plugin crate under `plugins/`, ready to build.

use crate::env::workspace_root;

/// The snake_case of a plugin name (`my-plugin` -> `my_plugin`).
fn snake(name: &str) -> String {
    name.replace('-', "_")
}

/// The files of a new plugin: `(relative path, content)`.
pub fn template(name: &str) -> Vec<(String, String)> {
    let snake = snake(name);
    let manifest = format!(
        "[package]\nname = \"{name}\"\ndescription = \"A stoker plugin.\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\nstoker = {{ path = \"../../crates/stoker\" }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\n"
    );
    let lib = format!(
        r#"//! The `{name}` stoker plugin. `cargo xtask list loss` shows what it registers; see
//! docs/writing-a-plugin.md for models, metrics and the rest.

use serde::{{Deserialize, Serialize}};
use stoker::prelude::*;

/// Mean absolute error between a prediction and its target.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(loss, name = "{snake}_mae")]
pub struct MaeSpec {{
    /// The model output compared.
    #[serde(default = "default_pred")]
    pub pred: String,
    /// The batch tensor it is compared with.
    #[serde(default = "default_target")]
    pub target: String,
}}

fn default_pred() -> String {{
    "pred".into()
}}

fn default_target() -> String {{
    "y".into()
}}

/// The built loss.
pub struct Mae(MaeSpec);

impl Loss for Mae {{
    fn forward(&self, output: &Output, batch: &Batch) -> Result<LossValue> {{
        let pred = output.float_flat(&self.0.pred)?;
        let target = batch.float_flat(&self.0.target)?;
        Ok(LossValue::single((pred - target).abs().mean()))
    }}
}}

impl LossSpec for MaeSpec {{
    fn build(&self, _ctx: &BuildContext) -> std::result::Result<Box<dyn Loss>, BuildError> {{
        Ok(Box::new(Mae(self.clone())))
    }}
}}
"#
    );
    vec![("Cargo.toml".into(), manifest), ("src/lib.rs".into(), lib)]
}

/// Creates `plugins/NAME`.
pub fn create(args: &[String]) -> Result<i32, String> {
    let [name] = args else {
        return Err(
            "usage: cargo xtask new-plugin NAME (lowercase letters, digits and `-`)".into(),
        );
    };
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !valid {
        return Err(format!(
            "`{name}` is not a crate name: use lowercase letters, digits and `-`, starting with a letter"
        ));
    }
    let dir = workspace_root().join("plugins").join(name);
    if dir.exists() {
        return Err(format!("{} already exists", dir.display()));
    }
    for (path, content) in template(name) {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).map_err(|e| e.to_string())?;
        std::fs::write(&file, content).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    crate::runner::generate()?;
    println!("created {}", dir.display());
    println!(
        "next: `cargo xtask list loss` shows `{}_mae`; edit src/lib.rs to add your components",
        snake(name)
    );
    Ok(0)
}
