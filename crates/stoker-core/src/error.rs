//! Error types shared by every crate.

use std::fmt;
use std::path::PathBuf;

/// An error while running: loading data, a forward pass, writing a file.
#[derive(Debug, thiserror::Error)]
pub enum StokerError {
    /// A batch lacks a tensor, or it has another kind or rank than asked for.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Anything else, said in words.
    #[error("{0}")]
    Message(String),
}

impl StokerError {
    /// An error said in words.
    pub fn msg(message: impl Into<String>) -> Self {
        StokerError::Message(message.into())
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StokerError::Io {
            path: path.into(),
            source,
        }
    }
}

/// `Result` with [`StokerError`].
pub type Result<T, E = StokerError> = std::result::Result<T, E>;

/// A tensor asked of a batch or model output is missing or is not what the caller expects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// No tensor has that name.
    #[error("no tensor named `{name}` in the {what} (it has: {available})")]
    Missing {
        /// The name asked for.
        name: String,
        /// "batch" or "model output".
        what: &'static str,
        /// The names it has, comma-separated.
        available: String,
    },
    /// The tensor has another rank.
    #[error("tensor `{name}` has rank {actual} (shape {shape:?}), expected rank {expected}")]
    Rank {
        /// The tensor's name.
        name: String,
        /// The rank asked for.
        expected: usize,
        /// Its rank.
        actual: usize,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// The tensor holds another kind of element (float, int, bool).
    #[error("tensor `{name}` holds {actual} values, expected {expected}")]
    Kind {
        /// The tensor's name.
        name: String,
        /// The kind asked for.
        expected: &'static str,
        /// Its kind.
        actual: &'static str,
    },
}

/// A component could not be built from its spec: a bad argument value, a shape that does not fit
/// the data. The runner adds the file and the YAML path of the component.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildError {
    /// The argument at fault, relative to the component's `args` (`sizes[0]`), if one is.
    pub arg: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl BuildError {
    /// An error about the component as a whole.
    pub fn new(message: impl Into<String>) -> Self {
        BuildError {
            arg: None,
            message: message.into(),
            hint: None,
        }
    }

    /// An error about one argument (`arg` relative to `args`, e.g. `sizes[0]`).
    pub fn at(arg: impl Into<String>, message: impl Into<String>) -> Self {
        BuildError {
            arg: Some(arg.into()),
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint saying how to fix it.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The same error for a component built inside another one's args, at `prefix` there
    /// (`residual.args`): its argument's path is put below `prefix`.
    pub fn under(mut self, prefix: &str) -> Self {
        self.arg = Some(match self.arg {
            Some(arg) => format!("{prefix}.{arg}"),
            None => prefix.to_string(),
        });
        self
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.arg {
            Some(arg) => write!(f, "{arg}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for BuildError {}
