//! Errors that tell the operator which file, which field and what is wrong, so a bad
//! deploy is fixed from the log line alone.

use std::fmt;
use std::path::{Path, PathBuf};

/// One thing wrong with a file. Validation collects all of them so one edit-and-retry
/// cycle fixes everything instead of one problem per restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// Path of the offending field as written in the file, e.g. `clusters[1].id`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.file.display(),
            self.field,
            self.message
        )
    }
}

/// Why a configuration or tokens file was refused. `Display` is meant to be shown as is:
/// every line names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file itself could not be read. The I/O error is part of the message rather than a
    /// `source()` so that reporters which print the chain do not repeat it.
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The YAML is malformed or does not fit the schema (unknown field, wrong type, bad
    /// duration...). Parsing stops there, so there is only one message; it carries the field
    /// path and `at line L column C` from the YAML parser.
    #[error("{}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        message: String,
        /// 1-based line and column, when the parser knows them.
        location: Option<(usize, usize)>,
    },
    /// The file parsed but its values are inconsistent; every problem found is listed.
    #[error("{}", Lines(problems))]
    Invalid { problems: Vec<Problem> },
}

impl ConfigError {
    /// A YAML error against `path`, with the parser's location.
    pub fn syntax(path: &Path, error: &serde_norway::Error) -> Self {
        ConfigError::Syntax {
            path: path.to_path_buf(),
            message: error.to_string(),
            location: error.location().map(|l| (l.line(), l.column())),
        }
    }
}

struct Lines<'a>(&'a [Problem]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// Collects problems against one file while checks keep going.
pub struct Problems<'a> {
    file: &'a Path,
    list: Vec<Problem>,
}

impl<'a> Problems<'a> {
    pub fn new(file: &'a Path) -> Self {
        Problems {
            file,
            list: Vec::new(),
        }
    }

    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.list.push(Problem {
            file: self.file.to_path_buf(),
            field: field.into(),
            message: message.into(),
        });
    }

    pub fn finish(self) -> Result<(), ConfigError> {
        if self.list.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                problems: self.list,
            })
        }
    }
}
