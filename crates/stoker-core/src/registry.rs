//! The name -> component registry.
//!
//! Every component (data, model, loss, ...) is a *spec* struct deserialized from the `args` of a
//! `{name, args}` entry in the experiment file. `#[derive(Component)]` submits one
//! [`Registration`] per spec to this registry through `inventory`, from whichever crate defines
//! it; the runner looks names up here, and `cargo xtask list` prints them.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_yaml::Value;

use crate::error::BuildError;
use crate::spec::{
    AugmentationSpec, CallbackSpec, DataSpec, LoggerSpec, LossSpec, MetricSpec, ModelSpec,
    OptimizerSpec, PhysicsSpec, PrecisionSpec, PrunerSpec, SamplerSpec, SchedulerSpec, SpaceSpec,
    StrategySpec, TrainerSpec, TransformSpec,
};

/// Joins string literals with `, ` into one literal.
macro_rules! join {
    ($first:literal $(, $rest:literal)*) => {
        concat!($first $(, ", ", $rest)*)
    };
}

/// `Kind` and `AnySpec` from the table of kinds (`kinds.in.rs`).
macro_rules! kinds {
    ($( $(#[$doc:meta])* $variant:ident $name:literal $spec:ident [$($section:tt)*] ),* $(,)?) => {
        /// The kinds of component an experiment selects by name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Kind {
            $( $(#[$doc])* $variant, )*
        }

        impl Kind {
            /// Every kind, in the order an experiment file lists them.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),*];

            /// Every kind's name, comma-separated (for help texts).
            pub const NAMES: &'static str = join!($($name),*);

            /// The kind's name as the CLI and error messages spell it (`model`, `metric`, ...).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Kind::$variant => $name,)*
                }
            }

            /// Where an experiment names a component of this kind (`metrics:`,
            /// `trainer.args.strategy`).
            pub fn selected_at(self) -> &'static str {
                match self {
                    $(Kind::$variant => kinds!(@at $($section)*),)*
                }
            }
        }

        /// A parsed spec, boxed as the trait object of its kind.
        pub enum AnySpec {
            $( $(#[$doc])* $variant(Box<dyn $spec>), )*
        }

        $(
            impl SpecKind for dyn $spec {
                const KIND: Kind = Kind::$variant;
                fn from_any(spec: AnySpec) -> Option<Box<Self>> {
                    match spec {
                        AnySpec::$variant(spec) => Some(spec),
                        _ => None,
                    }
                }
            }
        )*
    };
    (@at nested $where:literal) => { $where };
    (@at $shape:ident $field:ident $key:literal $($default:tt)*) => { concat!("`", $key, ":`") };
}

include!("kinds.in.rs");

/// Ties a spec trait object to its [`Kind`].
pub trait SpecKind {
    /// The kind.
    const KIND: Kind;
    /// Takes the spec out of an [`AnySpec`] of this kind.
    fn from_any(spec: AnySpec) -> Option<Box<Self>>;
}

impl Kind {
    /// Parses a kind name; plurals (`metrics`, `loggers`) are accepted too.
    pub fn parse(text: &str) -> Option<Kind> {
        let text = text.trim().to_ascii_lowercase();
        let singular = text.strip_suffix('s').unwrap_or(&text);
        Kind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == text || k.as_str() == singular)
    }
}

impl Kind {
    /// The kind's name in the plural (`models`, `strategies`, `physics terms`).
    pub fn plural(self) -> String {
        let name = self.as_str();
        if let Some(stem) = name.strip_suffix('y') {
            format!("{stem}ies")
        } else if name.ends_with('s') {
            format!("{name} terms")
        } else {
            format!("{name}s")
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One argument of a component, as `cargo xtask list` prints it.
#[derive(Debug, Clone)]
pub struct ArgInfo {
    /// The key under `args:`.
    pub name: &'static str,
    /// The Rust type, as written in the spec struct (`Vec<usize>`, `Option<f64>`).
    pub ty: &'static str,
    /// The first paragraph of the field's doc comment.
    pub doc: &'static str,
    /// The default as YAML/JSON text, or `None` when the argument is required.
    pub default: Option<String>,
}

/// The result of parsing a component's `args`: the spec, and the args with every default
/// filled in (what `config.yaml` in the run directory records).
pub struct ParsedSpec {
    /// The spec object.
    pub spec: AnySpec,
    /// The args as resolved, defaults included.
    pub resolved: Value,
}

/// A component registration, submitted by `#[derive(Component)]`.
pub struct Registration {
    /// The component's kind.
    pub kind: Kind,
    /// The name an experiment file selects it by.
    pub name: &'static str,
    /// The crate that registered it.
    pub crate_name: &'static str,
    /// The source file of its spec (`plugins/bearing-fault/src/cnn1d.rs`).
    pub file: &'static str,
    /// The line of its spec in `file`.
    pub line: u32,
    /// One line saying what it is.
    pub description: &'static str,
    /// Its arguments.
    pub args: fn() -> Vec<ArgInfo>,
    /// Parses the `args` value into the spec.
    pub parse: fn(Value) -> Result<ParsedSpec, ArgsError>,
}

inventory::collect!(Registration);

/// What went wrong parsing a component's `args`.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgsError {
    /// Where, relative to `args` (`sizes[1]`, `beta`), empty for `args` itself.
    pub path: String,
    /// serde's message (`unknown field ...`, `missing field ...`, `invalid type ...`).
    pub message: String,
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Deserializes a spec from its `args` value, recording where in `args` a failure happened,
/// and serializes it back with every default filled in.
pub fn parse_args<T: DeserializeOwned + Serialize>(args: Value) -> Result<(T, Value), ArgsError> {
    let spec: T = serde_path_to_error::deserialize(args).map_err(|error| {
        let path = error.path().to_string();
        ArgsError {
            path: if path == "." { String::new() } else { path },
            message: error.into_inner().to_string(),
        }
    })?;
    let resolved = serde_yaml::to_value(&spec).map_err(|error| ArgsError {
        path: String::new(),
        message: format!("the spec could not be written back as YAML: {error}"),
    })?;
    Ok((spec, resolved))
}

/// What `#[derive(Component)]` and `#[derive(Args)]` know of a spec struct's arguments: the
/// table `list` prints, with the arguments of `#[serde(flatten)]` fields in their place.
pub trait SpecArgs {
    /// The arguments, in declaration order.
    fn args() -> Vec<ArgInfo>;
}

/// Parses the part of a spec's `args` that one `#[serde(flatten)]` field takes.
pub type PartCheck = fn(Value) -> Result<(), ArgsError>;

/// Parses the `args` of a spec with `#[serde(flatten)]` fields (`T`'s arguments are `known`):
/// a key no argument has is refused as serde refuses an unknown field, and an argument of a
/// flattened part that does not parse is reported at its own path, which serde loses through
/// `flatten` (each flattened part is re-parsed alone with `check_parts`).
pub fn parse_flattened<T: DeserializeOwned + Serialize>(
    args: Value,
    known: &[ArgInfo],
    check_parts: &[PartCheck],
) -> Result<(T, Value), ArgsError> {
    if let Value::Mapping(mapping) = &args {
        for key in mapping.keys() {
            let key = key.as_str().unwrap_or("");
            if !known.iter().any(|a| a.name == key) {
                let expected: Vec<String> = known.iter().map(|a| format!("`{}`", a.name)).collect();
                return Err(ArgsError {
                    path: String::new(),
                    message: format!(
                        "unknown field `{key}`, expected one of {}",
                        expected.join(", ")
                    ),
                });
            }
        }
    }
    parse_args::<T>(args.clone()).map_err(|error| {
        if !error.path.is_empty() {
            return error;
        }
        check_parts
            .iter()
            .find_map(|check| check(args.clone()).err())
            .unwrap_or(error)
    })
}

/// Parses the part of `args` that `P` (a `#[serde(flatten)]` field's type) takes, for
/// [`parse_flattened`]'s error paths.
pub fn check_flattened_part<P: DeserializeOwned + Serialize + SpecArgs>(
    args: Value,
) -> Result<(), ArgsError> {
    let names: Vec<&str> = P::args().iter().map(|a| a.name).collect();
    let part = match args {
        Value::Mapping(mapping) => Value::Mapping(
            mapping
                .into_iter()
                .filter(|(k, _)| k.as_str().is_some_and(|k| names.contains(&k)))
                .collect(),
        ),
        other => other,
    };
    parse_args::<P>(part).map(|_| ())
}

/// A component named inside another one's args: `strategy: auto`, or
/// `strategy: {name: ddp, args: {...}}`. Its name is looked up (and its args parsed) when the
/// outer component is built, so a mistake is reported at its path before training starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Named {
    /// The registered name.
    pub name: String,
    /// Its args, if given.
    pub args: Option<Value>,
}

impl Named {
    /// The component `name` with no args.
    pub fn new(name: impl Into<String>) -> Self {
        Named {
            name: name.into(),
            args: None,
        }
    }

    /// Parses it as a component of `S`'s kind: `at` is where it sits in the outer args
    /// (`strategy`), so that errors name the argument below it.
    pub fn parse<S: ?Sized + SpecKind>(&self, at: &str) -> Result<Box<S>, BuildError> {
        let parsed =
            parse_nested(S::KIND, &self.name, self.args.clone(), at).map_err(|mut e| {
                // A bare name (`strategy: ddp`) has no `name:` key to point at.
                if self.args.is_none() && e.arg.as_deref() == Some(&format!("{at}.name")) {
                    e.arg = Some(at.to_string());
                }
                e
            })?;
        S::from_any(parsed.spec).ok_or_else(|| {
            BuildError::at(
                at,
                format!("`{}` is registered as another kind of component", self.name),
            )
        })
    }
}

impl Serialize for Named {
    fn serialize<Ser: serde::Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        match &self.args {
            None => serializer.serialize_str(&self.name),
            Some(args) => {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("name", &self.name)?;
                map.serialize_entry("args", args)?;
                map.end()
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for Named {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(deserializer)? {
            Value::String(name) => Ok(Named::new(name)),
            // `precision: 32` names the component `32`.
            Value::Number(number) => Ok(Named::new(number.to_string())),
            Value::Mapping(mapping) => {
                let mut name = None;
                let mut args = None;
                for (key, value) in mapping {
                    match key.as_str() {
                        Some("name") => match value {
                            Value::String(text) => name = Some(text),
                            _ => return Err(D::Error::custom("`name` must be a string")),
                        },
                        Some("args") => args = Some(value),
                        _ => {
                            return Err(D::Error::custom(format!(
                                "unknown key `{}`: a component is `NAME` or `{{name: NAME, args: {{...}}}}`",
                                key.as_str().unwrap_or("?")
                            )));
                        }
                    }
                }
                let name = name.ok_or_else(|| D::Error::custom("the component has no `name`"))?;
                Ok(Named { name, args })
            }
            _ => Err(D::Error::custom(
                "expected a component: `NAME` or `{name: NAME, args: {...}}`",
            )),
        }
    }
}

/// Renders a default value for `list` (JSON text, which YAML reads as flow style).
pub fn default_text<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| String::from("?"))
}

/// Every registration linked into this binary, sorted by kind and name.
pub fn registrations() -> Vec<&'static Registration> {
    let mut all: Vec<_> = inventory::iter::<Registration>.into_iter().collect();
    all.sort_by(|a, b| (a.kind, a.name).cmp(&(b.kind, b.name)));
    all
}

/// The registration of `name` among components of `kind`.
pub fn find(kind: Kind, name: &str) -> Option<&'static Registration> {
    inventory::iter::<Registration>
        .into_iter()
        .find(|r| r.kind == kind && r.name == name)
}

/// The registered names of one kind, sorted.
pub fn names(kind: Kind) -> Vec<&'static str> {
    registrations()
        .into_iter()
        .filter(|r| r.kind == kind)
        .map(|r| r.name)
        .collect()
}

/// Registered names of `kind` that look like `name` (a typo, another case), closest first.
pub fn closest(kind: Kind, name: &str) -> Vec<&'static str> {
    closest_of(name, names(kind))
}

/// The candidates that look like `name`, closest first (case-insensitive edit distance).
pub fn closest_of<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let lower = name.to_lowercase();
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .map(|c| {
            let cl = c.to_lowercase();
            let mut score = strsim::normalized_damerau_levenshtein(&lower, &cl);
            if cl.contains(&lower) || lower.contains(&cl) {
                score = score.max(0.7);
            }
            (score, c)
        })
        .filter(|(score, _)| *score >= 0.5)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored.into_iter().map(|(_, c)| c).take(3).collect()
}

/// Parses a component named inside another one's args (a scheduler after a warm-up, the terms
/// of a composite loss): `at` is where it sits in the outer args (`after`, `terms[1]`), and an
/// error names the argument below it (`terms[1].args.beta`).
pub fn parse_nested(
    kind: Kind,
    name: &str,
    args: Option<Value>,
    at: &str,
) -> Result<ParsedSpec, crate::error::BuildError> {
    let registration = find(kind, name).ok_or_else(|| {
        let close = closest(kind, name);
        let hint = match close.as_slice() {
            [] => format!("registered {}: {}", kind.plural(), names(kind).join(", ")),
            _ => format!(
                "did you mean `{}`? registered {}: {}",
                close[0],
                kind.plural(),
                names(kind).join(", ")
            ),
        };
        BuildError::at(format!("{at}.name"), format!("unknown {kind} `{name}`")).hint(hint)
    })?;
    let args = match args {
        None | Some(Value::Null) => Value::Mapping(serde_yaml::Mapping::new()),
        Some(mapping @ Value::Mapping(_)) => mapping,
        Some(_) => return Err(BuildError::at(format!("{at}.args"), "must be a mapping")),
    };
    (registration.parse)(args).map_err(|e| {
        let mut path = format!("{at}.args");
        if !e.path.is_empty() {
            path = format!("{path}.{}", e.path);
        }
        if let Some(field) = e
            .message
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
            && !path.ends_with(field)
        {
            path = format!("{path}.{field}");
        }
        BuildError::at(path, format!("{kind} `{name}`: {}", e.message))
    })
}

/// Two crates registering the same name for the same kind: a build problem the runner reports
/// before it does anything else.
pub fn duplicates() -> Vec<String> {
    let all = registrations();
    all.windows(2)
        .filter(|w| w[0].kind == w[1].kind && w[0].name == w[1].name)
        .map(|w| {
            format!(
                "{} `{}` is registered twice: by crate `{}` and by crate `{}`",
                w[0].kind, w[0].name, w[0].crate_name, w[1].crate_name
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_parse_accepts_plural_and_case() {
        assert_eq!(Kind::parse("Metrics"), Some(Kind::Metric));
        assert_eq!(Kind::parse("model"), Some(Kind::Model));
        assert_eq!(Kind::parse("loss"), Some(Kind::Loss));
        assert_eq!(Kind::parse("widget"), None);
    }

    #[test]
    fn closest_ranks_typos_first() {
        let names = ["MLP", "FNO2d", "FNO1d", "CNN1d"];
        assert_eq!(closest_of("MPL", names)[0], "MLP");
        assert_eq!(closest_of("fno2D", names)[0], "FNO2d");
        assert!(closest_of("transformer", names).is_empty());
    }

    #[derive(serde::Deserialize, serde::Serialize)]
    #[serde(deny_unknown_fields)]
    struct Example {
        sizes: Vec<usize>,
        #[serde(default)]
        dropout: f64,
    }

    #[test]
    fn parse_args_reports_path_and_fills_defaults() {
        let ok: Value = serde_yaml::from_str("sizes: [1, 2]").unwrap();
        let (spec, resolved) = parse_args::<Example>(ok).unwrap();
        assert_eq!(spec.sizes, vec![1, 2]);
        assert_eq!(resolved["dropout"], Value::from(0.0));

        let bad: Value = serde_yaml::from_str("sizes: [1, two]").unwrap();
        let error = parse_args::<Example>(bad).err().unwrap();
        assert_eq!(error.path, "sizes[1]");
        assert!(error.message.contains("invalid type"), "{}", error.message);

        let unknown: Value = serde_yaml::from_str("sizes: [1]\ndropot: 0.1").unwrap();
        let error = parse_args::<Example>(unknown).err().unwrap();
        assert!(
            error.message.contains("unknown field `dropot`"),
            "{}",
            error.message
        );

        let missing: Value = serde_yaml::from_str("dropout: 0.1").unwrap();
        let error = parse_args::<Example>(missing).err().unwrap();
        assert!(
            error.message.contains("missing field `sizes`"),
            "{}",
            error.message
        );
    }
}
