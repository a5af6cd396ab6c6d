//! Experiment files: loading (with `extends:`), command-line overrides (`--set a.b=VALUE`), and
//! errors that name the file, the YAML path and a fix.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

/// A problem with the experiment file: where it is and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The file the offending key came from (or `--set KEY=VALUE` for a command-line override).
    pub source: String,
    /// The YAML path of the offending key (`model.args.sizes[0]`), if there is one.
    pub yaml_path: Option<String>,
    /// Line and column (1-based) in `source`, when known.
    pub location: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl ConfigError {
    /// An error about `source` as a whole.
    pub fn new(source: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            source: source.into(),
            yaml_path: None,
            location: None,
            message: message.into(),
            hint: None,
        }
    }

    /// Sets the YAML path.
    pub fn at(mut self, yaml_path: impl Into<String>) -> Self {
        self.yaml_path = Some(yaml_path.into());
        self
    }

    /// Sets the hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        match self.location {
            Some((line, column)) => write!(f, "  --> {}:{line}:{column}", self.source)?,
            None => write!(f, "  --> {}", self.source)?,
        }
        if self.yaml_path.is_some() || self.hint.is_some() {
            writeln!(f)?;
        }
        if let Some(path) = &self.yaml_path {
            write!(f, "   at: {path}")?;
            if self.hint.is_some() {
                writeln!(f)?;
            }
        }
        match &self.hint {
            Some(hint) => write!(f, " hint: {hint}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for ConfigError {}

/// One step of a YAML path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathStep {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// Formats a YAML path as `a.b[0].c`.
pub fn format_path(steps: &[PathStep]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            PathStep::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            PathStep::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// Parses `a.b[0].c` (or `a.b.0.c`) into path steps.
pub fn parse_path(text: &str) -> Result<Vec<PathStep>, String> {
    let mut steps = Vec::new();
    for part in text.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if key.is_empty() && rest.is_empty() {
            return Err(format!("`{text}` has an empty key"));
        }
        if !key.is_empty() {
            match key.parse::<usize>() {
                Ok(index) if !steps.is_empty() => steps.push(PathStep::Index(index)),
                _ => steps.push(PathStep::Key(key.to_string())),
            }
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped
                .find(']')
                .ok_or_else(|| format!("`{text}` has an unclosed `[`"))?;
            let index = stripped[..end]
                .parse::<usize>()
                .map_err(|_| format!("`{text}`: `[{}]` is not an index", &stripped[..end]))?;
            steps.push(PathStep::Index(index));
            rest = &stripped[end + 1..];
        }
        if !rest.is_empty() {
            return Err(format!("`{text}` is not a YAML path like `a.b[0].c`"));
        }
    }
    Ok(steps)
}

/// An experiment file as loaded: its `extends:` chain merged, command-line overrides applied,
/// and where every key came from.
#[derive(Debug, Clone)]
pub struct RawConfig {
    /// The merged document.
    pub root: Mapping,
    /// The file given on the command line.
    pub file: PathBuf,
    /// For each path that was set, the file (or `--set ...`) that set it last.
    origins: BTreeMap<Vec<PathStep>, String>,
}

fn display_path(path: &Path) -> String {
    path.display().to_string()
}

fn read_yaml(path: &Path, referenced_from: Option<&str>) -> Result<Mapping, ConfigError> {
    let label = display_path(path);
    let text = std::fs::read_to_string(path).map_err(|e| {
        let error = ConfigError::new(&label, format!("cannot read the config file: {e}"));
        match referenced_from {
            Some(parent) => error.at("extends").hint(format!(
                "`extends:` in {parent} names it; paths there are relative to that file"
            )),
            None => error.hint("check the path; configs live in `configs/`"),
        }
    })?;
    parse_yaml(&text, label)
}

fn parse_yaml(text: &str, label: String) -> Result<Mapping, ConfigError> {
    let value: Value = serde_yaml::from_str(text).map_err(|e| ConfigError {
        source: label.clone(),
        yaml_path: None,
        location: e.location().map(|l| (l.line(), l.column())),
        message: format!("YAML syntax error: {e}"),
        hint: Some("fix the YAML syntax at that line (indentation, a missing `:` or quote)".into()),
    })?;
    match value {
        Value::Mapping(mapping) => Ok(mapping),
        Value::Null => Ok(Mapping::new()),
        _ => Err(
            ConfigError::new(label, "the config file is not a YAML mapping")
                .hint("an experiment file is a mapping: `name: ...`, `data: ...`, `model: ...`"),
        ),
    }
}

fn component_name(value: &Value) -> Option<&str> {
    match value {
        Value::Mapping(m) => m.get("name").and_then(Value::as_str),
        Value::String(s) => Some(s),
        _ => None,
    }
}

impl RawConfig {
    /// Loads `file` and the files it `extends:` (recursively; paths relative to the file that
    /// names them). Keys of the extending file override the base; mappings merge key by key,
    /// and a component whose `name` changes replaces the base's component whole.
    pub fn load(file: &Path) -> Result<RawConfig, ConfigError> {
        let mut config = RawConfig {
            root: Mapping::new(),
            file: file.to_path_buf(),
            origins: BTreeMap::new(),
        };
        let mut chain = Vec::new();
        config.load_into(file, None, &mut chain)?;
        Ok(config)
    }

    /// An experiment given as YAML text rather than a file: `file` stands for it in messages
    /// and for the run's default name (its stem), and `extends:` paths are relative to its
    /// directory.
    pub fn from_text(text: &str, file: &Path) -> Result<RawConfig, ConfigError> {
        let mut config = RawConfig {
            root: Mapping::new(),
            file: file.to_path_buf(),
            origins: BTreeMap::new(),
        };
        let mapping = parse_yaml(text, display_path(file))?;
        config.merge_file(file, mapping, &mut Vec::new())?;
        Ok(config)
    }

    fn load_into(
        &mut self,
        file: &Path,
        referenced_from: Option<&str>,
        chain: &mut Vec<PathBuf>,
    ) -> Result<(), ConfigError> {
        let label = display_path(file);
        let canonical = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
        if chain.contains(&canonical) {
            return Err(ConfigError::new(&label, "`extends:` makes a cycle")
                .at("extends")
                .hint(format!(
                    "the chain is {} -> {label}; remove one of the `extends:`",
                    chain
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(" -> ")
                )));
        }
        chain.push(canonical);
        let mapping = read_yaml(file, referenced_from)?;
        self.merge_file(file, mapping, chain)?;
        chain.pop();
        Ok(())
    }

    /// Merges the mapping of `file` over what is loaded, after the files it `extends:`.
    fn merge_file(
        &mut self,
        file: &Path,
        mut mapping: Mapping,
        chain: &mut Vec<PathBuf>,
    ) -> Result<(), ConfigError> {
        let label = display_path(file);
        if let Some(extends) = mapping.remove("extends") {
            let bases = match extends {
                Value::String(s) => vec![s],
                Value::Sequence(items) => items
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s),
                        _ => Err(()),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        ConfigError::new(&label, "`extends:` must name files")
                            .at("extends")
                            .hint("write `extends: base.yaml` or `extends: [a.yaml, b.yaml]`")
                    })?,
                _ => {
                    return Err(ConfigError::new(&label, "`extends:` must name a file")
                        .at("extends")
                        .hint("write `extends: base.yaml` (relative to this file)"));
                }
            };
            let dir = file.parent().unwrap_or(Path::new("."));
            for base in bases {
                self.load_into(&dir.join(base), Some(&label), chain)?;
            }
        }
        let mut path = Vec::new();
        merge_mapping(
            &mut self.root,
            mapping,
            &mut path,
            &label,
            &mut self.origins,
        );
        Ok(())
    }

    /// Applies a command-line override `a.b.c=VALUE`; VALUE is parsed as YAML (`5`, `1e-3`,
    /// `true`, `[8, 8]`, `{name: adam}`, `text`).
    pub fn set(&mut self, assignment: &str) -> Result<(), ConfigError> {
        let label = format!("--set {assignment}");
        let (key, text) = assignment.split_once('=').ok_or_else(|| {
            ConfigError::new(&label, "an override is KEY=VALUE")
                .hint("for example `--set trainer.args.max_epochs=5`")
        })?;
        let steps = parse_path(key.trim()).map_err(|e| {
            ConfigError::new(&label, e).hint("for example `--set model.args.sizes[1]=64`")
        })?;
        let value: Value = serde_yaml::from_str(text).map_err(|e| {
            ConfigError::new(&label, format!("the value is not valid YAML: {e}"))
                .hint("quote text with spaces: `--set name='my run'`")
        })?;
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            value
        };
        let mut root = Value::Mapping(std::mem::take(&mut self.root));
        let result = assign(&mut root, &steps, 0, value, &label);
        if let Value::Mapping(mapping) = root {
            self.root = mapping;
        }
        result?;
        self.origins.retain(|p, _| !p.starts_with(&steps));
        self.origins.insert(steps, label);
        Ok(())
    }

    /// The file (or `--set`) that set `path` or its nearest set ancestor.
    pub fn origin(&self, path: &[PathStep]) -> String {
        (0..=path.len())
            .rev()
            .find_map(|n| self.origins.get(&path[..n]))
            .cloned()
            .unwrap_or_else(|| display_path(&self.file))
    }

    /// An error at `path`, attributed to the file that set it.
    pub fn error_at(&self, path: &[PathStep], message: impl Into<String>) -> ConfigError {
        let error = ConfigError::new(self.origin(path), message);
        if path.is_empty() {
            error
        } else {
            error.at(format_path(path))
        }
    }

    /// The value at `path`, if present.
    pub fn get(&self, path: &[PathStep]) -> Option<&Value> {
        let mut node = self.root.get(match path.first()? {
            PathStep::Key(k) => k.as_str(),
            PathStep::Index(_) => return None,
        })?;
        for step in &path[1..] {
            node = match (step, node) {
                (PathStep::Key(k), Value::Mapping(m)) => m.get(k.as_str())?,
                (PathStep::Index(i), Value::Sequence(s)) => s.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }
}

/// Sets `steps[depth..]` under `node` to `value`, creating mappings for missing keys; an index
/// equal to a list's length appends.
fn assign(
    node: &mut Value,
    steps: &[PathStep],
    depth: usize,
    value: Value,
    label: &str,
) -> Result<(), ConfigError> {
    let Some(step) = steps.get(depth) else {
        *node = value;
        return Ok(());
    };
    let here = format_path(&steps[..depth + 1]);
    let parent = format_path(&steps[..depth]);
    let child = match step {
        PathStep::Key(key) => {
            if node.is_null() {
                *node = Value::Mapping(Mapping::new());
            }
            // A component given by name alone (`loss: mse`) grows into `{name: mse}`.
            if let Value::String(name) = node {
                let mut mapping = Mapping::new();
                mapping.insert("name".into(), Value::String(name.clone()));
                *node = Value::Mapping(mapping);
            }
            let Value::Mapping(mapping) = node else {
                return Err(ConfigError::new(
                    label,
                    format!("`{parent}` is not a mapping, so it has no key `{key}`"),
                )
                .at(here));
            };
            mapping
                .entry(Value::String(key.clone()))
                .or_insert(Value::Null)
        }
        PathStep::Index(index) => {
            let Value::Sequence(items) = node else {
                return Err(ConfigError::new(
                    label,
                    format!("`{parent}` is not a list, so it has no item [{index}]"),
                )
                .at(here));
            };
            let len = items.len();
            if *index == len {
                items.push(Value::Null);
            }
            items.get_mut(*index).ok_or_else(|| {
                ConfigError::new(
                    label,
                    format!("the list has {len} items; [{index}] is past its end"),
                )
                .at(here.clone())
                .hint(format!("use an index up to {len} (= {len} appends)"))
            })?
        }
    };
    assign(child, steps, depth + 1, value, label)
}

fn mark(origins: &mut BTreeMap<Vec<PathStep>, String>, path: &[PathStep], label: &str) {
    origins.retain(|p, _| !p.starts_with(path));
    origins.insert(path.to_vec(), label.to_string());
}

fn merge_mapping(
    base: &mut Mapping,
    over: Mapping,
    path: &mut Vec<PathStep>,
    label: &str,
    origins: &mut BTreeMap<Vec<PathStep>, String>,
) {
    for (key, value) in over {
        let key_text = match &key {
            Value::String(s) => s.clone(),
            other => serde_yaml::to_string(other)
                .unwrap_or_default()
                .trim()
                .to_string(),
        };
        path.push(PathStep::Key(key_text));
        let replace_whole = match (base.get(&key), &value) {
            (Some(Value::Mapping(_)), Value::Mapping(_)) => {
                // A component that changes its name does not inherit the old one's args.
                let old = base.get(&key).and_then(component_name);
                let new = component_name(&value);
                matches!((old, new), (Some(a), Some(b)) if a != b)
            }
            _ => true,
        };
        if replace_whole {
            mark(origins, path, label);
            base.insert(key, value);
        } else if let (Some(Value::Mapping(b)), Value::Mapping(o)) = (base.get_mut(&key), value) {
            merge_mapping(b, o, path, label, origins);
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("stoker-config-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn paths_round_trip() {
        let steps = parse_path("model.args.sizes[1]").unwrap();
        assert_eq!(format_path(&steps), "model.args.sizes[1]");
        assert_eq!(
            parse_path("metrics.0.name").unwrap(),
            parse_path("metrics[0].name").unwrap()
        );
        assert!(parse_path("a..b").is_err());
        assert!(parse_path("a[x]").is_err());
    }

    #[test]
    fn extends_merges_and_tracks_origins() {
        let dir = temp_dir("extends");
        write(
            &dir,
            "base.yaml",
            "name: base\nmodel: {name: MLP, args: {sizes: [2, 4, 1], dropout: 0.1}}\noptimizer: {name: adam, args: {lr: 0.01}}\n",
        );
        let child = write(
            &dir,
            "child.yaml",
            "extends: base.yaml\nname: child\nmodel: {args: {dropout: 0.2}}\noptimizer: {name: sgd, args: {momentum: 0.9}}\n",
        );
        let config = RawConfig::load(&child).unwrap();
        let model = config.get(&parse_path("model.args").unwrap()).unwrap();
        assert_eq!(model["dropout"], Value::from(0.2));
        assert_eq!(
            model["sizes"],
            serde_yaml::from_str::<Value>("[2, 4, 1]").unwrap()
        );
        // The optimizer changed its name: the base's args are not inherited.
        let optimizer = config.get(&parse_path("optimizer.args").unwrap()).unwrap();
        assert!(optimizer.get("lr").is_none());
        assert!(
            config
                .origin(&parse_path("model.args.sizes").unwrap())
                .ends_with("base.yaml")
        );
        assert!(
            config
                .origin(&parse_path("model.args.dropout").unwrap())
                .ends_with("child.yaml")
        );
    }

    #[test]
    fn set_overrides_with_yaml_values() {
        let dir = temp_dir("set");
        let file = write(
            &dir,
            "x.yaml",
            "trainer: {name: Default_trainer, args: {max_epochs: 3}}\nmetrics: [{name: mse}]\n",
        );
        let mut config = RawConfig::load(&file).unwrap();
        config.set("trainer.args.max_epochs=7").unwrap();
        config.set("model.args.sizes=[3, 8, 1]").unwrap();
        config.set("metrics[1]={name: accuracy}").unwrap();
        assert_eq!(
            config.get(&parse_path("trainer.args.max_epochs").unwrap()),
            Some(&Value::from(7))
        );
        assert_eq!(
            config.get(&parse_path("model.args.sizes[1]").unwrap()),
            Some(&Value::from(8))
        );
        assert_eq!(
            config.get(&parse_path("metrics[1].name").unwrap()),
            Some(&Value::from("accuracy"))
        );
        assert_eq!(
            config.origin(&parse_path("model.args.sizes").unwrap()),
            "--set model.args.sizes=[3, 8, 1]"
        );
        let error = config.set("metrics[5].name=x").unwrap_err();
        assert!(error.message.contains("past its end"), "{error}");
        assert!(config.set("no_equals_sign").is_err());
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let dir = temp_dir("syntax");
        let file = write(
            &dir,
            "bad.yaml",
            "name: x\nmodel:\n  name: MLP\n   args: {}\n",
        );
        let error = RawConfig::load(&file).unwrap_err();
        assert!(error.message.starts_with("YAML syntax error"), "{error}");
        assert_eq!(error.location.map(|l| l.0), Some(4), "{error}");
    }

    #[test]
    fn extends_cycles_are_reported() {
        let dir = temp_dir("cycle");
        write(&dir, "a.yaml", "extends: b.yaml\n");
        let b = write(&dir, "b.yaml", "extends: a.yaml\n");
        let error = RawConfig::load(&b).unwrap_err();
        assert!(error.message.contains("cycle"), "{error}");
    }
}
