//! Resolving a loaded config into an [`Experiment`]: every section checked, every component
//! name looked up in the registry, every argument parsed, defaults filled in.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

use crate::config::{ConfigError, PathStep, RawConfig, parse_path};
use crate::device::DeviceChoice;
use crate::registry::{self, ArgsError, Registration, closest, closest_of};
use crate::spec::{
    AugmentationSpec, CallbackSpec, DataSpec, LoggerSpec, LossSpec, MetricSpec, ModelSpec,
    OptimizerSpec, SchedulerSpec, TrainerSpec,
};

/// `environment:`: where and how the run happens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// The seed of everything random: initialization, data order, dropout.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// `auto | cpu | cuda | cuda:N | flex`.
    #[serde(default)]
    pub device: DeviceChoice,
    /// Runs go to `<output_dir>/<name>/version_<N>/`.
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
}

fn default_seed() -> u64 {
    42
}

fn default_output_dir() -> PathBuf {
    PathBuf::from("runs")
}

pub use crate::registry::SpecKind;

/// A component selected by the experiment file.
pub struct Component<S: ?Sized> {
    /// The registered name.
    pub name: String,
    /// Where it is in the file (`model`, `metrics[1]`).
    pub path: Vec<PathStep>,
    /// The parsed spec.
    pub spec: Box<S>,
    /// Its args with defaults filled in.
    pub resolved_args: Value,
}

impl<S: ?Sized> Component<S> {
    fn resolved(&self) -> Value {
        let mut mapping = Mapping::new();
        mapping.insert("name".into(), self.name.clone().into());
        mapping.insert("args".into(), self.resolved_args.clone());
        Value::Mapping(mapping)
    }
}

/// [`Experiment`] with one field per top-level section, and
/// [`TOP_LEVEL_KEYS`], from the table of kinds (`kinds.in.rs`).
macro_rules! kinds {
    ($( $(#[$doc:meta])* $variant:ident $name:literal $spec:ident [$($section:tt)*] ),* $(,)?) => {
        kinds!(@sections [] $( $spec [$($section)*] )*);
    };
    // Collects the top-level sections (`FIELD "key" Spec (shape)`), leaving out nested kinds.
    (@sections [$($acc:tt)*] $spec:ident [nested $where:literal] $($rest:tt)*) => {
        kinds!(@sections [$($acc)*] $($rest)*);
    };
    (@sections [$($acc:tt)*] $spec:ident [$shape:ident $field:ident $key:literal $($default:tt)*] $($rest:tt)*) => {
        kinds!(@sections [$($acc)* $field $key $spec ($shape $($default)*)] $($rest)*);
    };
    (@sections [$($field:ident $key:literal $spec:ident ($($shape:tt)*))*]) => {
        /// A fully resolved experiment.
        pub struct Experiment {
            /// The loaded file, for attributing later errors.
            pub raw: RawConfig,
            /// `name:` (defaults to the file's stem).
            pub name: String,
            /// `environment:`.
            pub environment: Environment,
            /// How keys written in another framework's spelling were translated (PHM-Vibench's
            /// trainer block, [`crate::spellings`]), one line each, for the run log.
            pub spellings: Vec<String>,
            $(
                #[doc = concat!("`", $key, ":`")]
                pub $field: kinds!(@type $spec $($shape)*),
            )*
        }

        /// The top-level keys an experiment file may have.
        pub const TOP_LEVEL_KEYS: &[&str] = &["extends", "name", "environment", $($key),*];

        impl Experiment {
            /// Resolves every section of `raw`, in the order of the table of kinds.
            fn with_sections(
                raw: RawConfig,
                name: String,
                environment: Environment,
            ) -> Result<Experiment, ConfigError> {
                $( let $field = kinds!(@resolve raw $key $spec $($shape)*)?; )*
                Ok(Experiment { raw, name, environment, spellings: Vec::new(), $($field),* })
            }

            /// Writes every section, resolved, into `root`.
            fn write_sections(&self, root: &mut Mapping) {
                $( kinds!(@write root, &self.$field, $key, $($shape)*); )*
            }
        }
    };
    (@type $spec:ident one) => { Component<dyn $spec> };
    (@type $spec:ident default $d:literal) => { Component<dyn $spec> };
    (@type $spec:ident list [$($d:literal),*]) => { Vec<Component<dyn $spec>> };
    (@type $spec:ident optional_list) => { Vec<Component<dyn $spec>> };
    (@resolve $raw:ident $key:literal $spec:ident one) => {
        component::<dyn $spec>(&$raw, $key, None)
    };
    (@resolve $raw:ident $key:literal $spec:ident default $d:literal) => {
        component::<dyn $spec>(&$raw, $key, Some($d))
    };
    (@resolve $raw:ident $key:literal $spec:ident list [$($d:literal),*]) => {
        component_list::<dyn $spec>(&$raw, $key, &[$($d),*])
    };
    (@resolve $raw:ident $key:literal $spec:ident optional_list) => {
        component_list::<dyn $spec>(&$raw, $key, &[])
    };
    (@write $root:ident, $value:expr, $key:literal, one) => {
        $root.insert($key.into(), $value.resolved())
    };
    (@write $root:ident, $value:expr, $key:literal, default $d:literal) => {
        $root.insert($key.into(), $value.resolved())
    };
    (@write $root:ident, $value:expr, $key:literal, list [$($d:literal),*]) => {
        $root.insert(
            $key.into(),
            Value::Sequence($value.iter().map(Component::resolved).collect()),
        )
    };
    (@write $root:ident, $value:expr, $key:literal, optional_list) => {
        if !$value.is_empty() {
            $root.insert(
                $key.into(),
                Value::Sequence($value.iter().map(Component::resolved).collect()),
            );
        }
    };
}

include!("kinds.in.rs");

fn key(name: &str) -> Vec<PathStep> {
    vec![PathStep::Key(name.to_string())]
}

fn with(path: &[PathStep], step: PathStep) -> Vec<PathStep> {
    let mut out = path.to_vec();
    out.push(step);
    out
}

fn args_hint(registration: &Registration, error: &ArgsError) -> String {
    let args = (registration.args)();
    let listing = || {
        args.iter()
            .map(|a| match &a.default {
                Some(d) => format!("{} ({}, default {d})", a.name, a.ty),
                None => format!("{} ({}, required)", a.name, a.ty),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let quoted = |text: &str| text.split('`').nth(1).map(str::to_string);
    if error.message.starts_with("unknown field") {
        let field = quoted(&error.message).unwrap_or_default();
        let close = closest_of(&field, args.iter().map(|a| a.name));
        let did_you_mean = close
            .first()
            .map(|c| format!("did you mean `{c}`? "))
            .unwrap_or_default();
        if args.is_empty() {
            format!("{did_you_mean}`{}` takes no arguments", registration.name)
        } else {
            format!("{did_you_mean}`{}` takes: {}", registration.name, listing())
        }
    } else if error.message.starts_with("missing field") {
        let field = quoted(&error.message).unwrap_or_default();
        match args.iter().find(|a| a.name == field) {
            Some(a) => format!("add `{}: <{}>` under args ({})", a.name, a.ty, a.doc),
            None => format!("`{}` takes: {}", registration.name, listing()),
        }
    } else {
        let top = error.path.split(['.', '[']).next().unwrap_or("");
        match args.iter().find(|a| a.name == top) {
            Some(a) => format!("`{}` is {}: {}", a.name, a.ty, a.doc),
            None => format!("`{}` takes: {}", registration.name, listing()),
        }
    }
}

impl Experiment {
    /// Resolves `raw`: checks every key, looks up every component and parses its arguments.
    pub fn resolve(mut raw: RawConfig) -> Result<Experiment, ConfigError> {
        let spellings = crate::spellings::translate(&mut raw)?;
        for key_value in raw.root.keys() {
            let key_text = key_value.as_str().unwrap_or("");
            if !TOP_LEVEL_KEYS.contains(&key_text) {
                let close = closest_of(key_text, TOP_LEVEL_KEYS.iter().copied());
                let hint = match close.first() {
                    Some(c) => format!(
                        "did you mean `{c}`? top-level keys are: {}",
                        TOP_LEVEL_KEYS.join(", ")
                    ),
                    None => format!("top-level keys are: {}", TOP_LEVEL_KEYS.join(", ")),
                };
                return Err(raw
                    .error_at(
                        &key(key_text),
                        format!("unknown top-level key `{key_text}`"),
                    )
                    .hint(hint));
            }
        }

        let name = match raw.root.get("name") {
            None | Some(Value::Null) => raw
                .file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "experiment".into()),
            Some(Value::String(s)) => s.clone(),
            Some(other) => serde_yaml::to_string(other)
                .unwrap_or_default()
                .trim()
                .to_string(),
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || name.starts_with('.')
        {
            return Err(raw
                .error_at(
                    &key("name"),
                    format!("`{name}` cannot name a run directory"),
                )
                .hint("use letters, digits, `-`, `_` and `.` (e.g. `darcy-fno`)"));
        }

        let environment = {
            let value = raw.root.get("environment").cloned().unwrap_or(Value::Null);
            let value = if value.is_null() {
                Value::Mapping(Mapping::new())
            } else {
                value
            };
            registry::parse_args::<Environment>(value)
                .map_err(|e| {
                    let path = environment_path(&e);
                    let hint = if e.message.starts_with("unknown field") {
                        "environment has: seed (u64), device (auto | cpu | cuda | cuda:N | flex), output_dir (path)".to_string()
                    } else if e.path == "device" {
                        "set environment.device to one of auto, cpu, cuda, cuda:N, flex".to_string()
                    } else {
                        "environment has: seed (u64), device (auto | cpu | cuda | cuda:N | flex), output_dir (path)".to_string()
                    };
                    raw.error_at(&path, e.message).hint(hint)
                })?
                .0
        };

        let mut experiment = Experiment::with_sections(raw, name, environment)?;
        experiment.spellings = spellings;
        let (raw, metrics) = (&experiment.raw, &mut experiment.metrics);
        if !metrics.iter().any(|m| m.name == "loss") {
            // The loss is always tracked: it is what the progress line and `best` report.
            metrics.insert(
                0,
                parse_component::<dyn MetricSpec>(raw, key("metrics"), &Value::from("loss"))?,
            );
        }
        for (i, metric) in metrics.iter().enumerate() {
            if metrics[..i]
                .iter()
                .any(|m| m.name == metric.name && m.resolved_args == metric.resolved_args)
            {
                return Err(raw
                    .error_at(
                        &metric.path,
                        format!(
                            "metric `{}` is listed twice with the same arguments",
                            metric.name
                        ),
                    )
                    .hint("list each metric once"));
            }
        }
        Ok(experiment)
    }

    /// The resolved config (every default filled in), as YAML: what `config.yaml` records and
    /// what reproduces the run.
    pub fn resolved_yaml(&self) -> String {
        let mut root = Mapping::new();
        root.insert("name".into(), self.name.clone().into());
        root.insert(
            "environment".into(),
            serde_yaml::to_value(&self.environment).unwrap_or(Value::Null),
        );
        self.write_sections(&mut root);
        serde_yaml::to_string(&Value::Mapping(root)).unwrap_or_default()
    }

    /// An error about a component's build (`arg` relative to its `args`), attributed to the file
    /// that set it.
    pub fn build_error<S: ?Sized + SpecKind>(
        &self,
        component: &Component<S>,
        error: &crate::error::BuildError,
    ) -> ConfigError {
        let mut path = component.path.clone();
        if let Some(arg) = &error.arg {
            path.push(PathStep::Key("args".into()));
            path.extend(parse_path(arg).unwrap_or_else(|_| vec![PathStep::Key(arg.clone())]));
        }
        let message = format!("{} `{}`: {}", S::KIND, component.name, error.message);
        let mut out = self.raw.error_at(&path, message);
        out.hint = error.hint.clone();
        out
    }
}

fn environment_path(error: &ArgsError) -> Vec<PathStep> {
    let mut path = key("environment");
    if let Some(field) = unknown_field(error) {
        path.push(PathStep::Key(field));
    } else if !error.path.is_empty() {
        path.extend(parse_path(&error.path).unwrap_or_default());
    }
    path
}

/// The field an "unknown field `x`" message names.
fn unknown_field(error: &ArgsError) -> Option<String> {
    error
        .message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
        .map(str::to_string)
}

fn component<S: ?Sized + SpecKind>(
    raw: &RawConfig,
    section: &str,
    default: Option<&str>,
) -> Result<Component<S>, ConfigError> {
    let path = key(section);
    match raw.root.get(section) {
        None | Some(Value::Null) => match default {
            Some(name) => parse_component::<S>(raw, path, &Value::from(name)),
            None => {
                let names = registry::names(S::KIND);
                Err(raw
                    .error_at(&[], format!("the config has no `{section}:` section"))
                    .hint(format!(
                        "add `{section}: {{name: ..., args: {{...}}}}`; registered: {}",
                        names.join(", ")
                    )))
            }
        },
        Some(value) => parse_component::<S>(raw, path, value),
    }
}

fn component_list<S: ?Sized + SpecKind>(
    raw: &RawConfig,
    section: &str,
    default: &[&str],
) -> Result<Vec<Component<S>>, ConfigError> {
    let path = key(section);
    match raw.root.get(section) {
        None => default
            .iter()
            .map(|name| parse_component::<S>(raw, path.clone(), &Value::from(*name)))
            .collect(),
        Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_component::<S>(raw, with(&path, PathStep::Index(i)), item))
            .collect(),
        Some(_) => Err(raw
            .error_at(&path, format!("`{section}:` must be a list"))
            .hint(format!("write `{section}: [{{name: ...}}, ...]`"))),
    }
}

/// Parses one `{name, args}` entry (or a bare name) at `path`.
pub fn parse_component<S: ?Sized + SpecKind>(
    raw: &RawConfig,
    path: Vec<PathStep>,
    value: &Value,
) -> Result<Component<S>, ConfigError> {
    let kind = S::KIND;
    let shape_hint = format!("a {kind} is `{{name: NAME, args: {{...}}}}` (or just `NAME`)");
    let (name, args) = match value {
        Value::String(name) => (name.clone(), Value::Null),
        Value::Mapping(mapping) => {
            for k in mapping.keys() {
                let k = k.as_str().unwrap_or("");
                if k != "name" && k != "args" {
                    return Err(raw
                        .error_at(
                            &with(&path, PathStep::Key(k.into())),
                            format!("unknown key `{k}` in a {kind} entry"),
                        )
                        .hint(format!("{shape_hint}; put arguments under `args:`")));
                }
            }
            let name = match mapping.get("name") {
                Some(Value::String(name)) => name.clone(),
                _ => {
                    return Err(raw
                        .error_at(
                            &with(&path, PathStep::Key("name".into())),
                            format!("the {kind} has no `name`"),
                        )
                        .hint(format!(
                            "{shape_hint}; registered: {}",
                            registry::names(kind).join(", ")
                        )));
                }
            };
            (name, mapping.get("args").cloned().unwrap_or(Value::Null))
        }
        _ => {
            return Err(raw
                .error_at(&path, format!("expected a {kind}"))
                .hint(shape_hint));
        }
    };
    let name_path = if matches!(value, Value::Mapping(_)) {
        with(&path, PathStep::Key("name".into()))
    } else {
        path.clone()
    };
    let registration = registry::find(kind, &name).ok_or_else(|| {
        let close = closest(kind, &name);
        let registered = registry::names(kind);
        let hint = match close.as_slice() {
            [] => format!(
                "registered {}: {} (see `cargo xtask list {kind}`)",
                kind.plural(),
                registered.join(", ")
            ),
            _ => format!(
                "did you mean {}? registered {}: {}",
                close
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(" or "),
                kind.plural(),
                registered.join(", ")
            ),
        };
        raw.error_at(&name_path, format!("unknown {kind} `{name}`"))
            .hint(hint)
    })?;
    let args_path = with(&path, PathStep::Key("args".into()));
    let args = match args {
        Value::Null => Value::Mapping(Mapping::new()),
        mapping @ Value::Mapping(_) => mapping,
        _ => {
            return Err(raw
                .error_at(
                    &args_path,
                    format!("the args of {kind} `{name}` must be a mapping"),
                )
                .hint(format!(
                    "write `args: {{key: value, ...}}`; {}",
                    args_hint(
                        registration,
                        &ArgsError {
                            path: String::new(),
                            message: String::new()
                        }
                    )
                )));
        }
    };
    let parsed = (registration.parse)(args).map_err(|error| {
        let mut at = args_path.clone();
        if !error.path.is_empty() {
            at.extend(parse_path(&error.path).unwrap_or_default());
        }
        if let Some(field) = unknown_field(&error)
            && at.last() != Some(&PathStep::Key(field.clone()))
        {
            at.push(PathStep::Key(field));
        }
        let message = format!("{kind} `{name}`: {}", error.message);
        raw.error_at(&at, message)
            .hint(args_hint(registration, &error))
    })?;
    let spec = S::from_any(parsed.spec).ok_or_else(|| {
        raw.error_at(
            &name_path,
            format!("`{name}` is registered as a {kind} but its spec is of another kind"),
        )
        .hint(format!(
            "the crate `{}` registers it wrongly",
            registration.crate_name
        ))
    })?;
    Ok(Component {
        name,
        path,
        spec,
        resolved_args: parsed.resolved,
    })
}
