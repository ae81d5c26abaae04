//! Configuration errors that point at the file, line, column and field.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A configuration problem, located as precisely as the input allows. It reads as one sentence:
/// `zones/k8s.toml:12:3: pool.api.members[1]: "192.0.2.300" is not a member address (...)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {}{message}", .file.display(), Position(.position), Field(.field))]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub position: Option<(usize, usize)>,
    /// Dotted path of the offending key, e.g. `pool.api.members[1]`.
    pub field: Option<String>,
    pub message: String,
}

impl ConfigError {
    /// An error about the file as a whole (unreadable, missing directory, ...).
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            position: None,
            field: None,
            message: message.into(),
        }
    }
}

/// `:line:column` after the file name, or nothing.
struct Position<'a>(&'a Option<(usize, usize)>);

impl fmt::Display for Position<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((line, column)) => write!(f, ":{line}:{column}"),
            None => Ok(()),
        }
    }
}

/// `field: ` before the message, or nothing.
struct Field<'a>(&'a Option<String>);

impl fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(field) => write!(f, "{field}: "),
            None => Ok(()),
        }
    }
}

/// One file's text, kept so that byte spans can become line and column numbers.
pub(crate) struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    /// An error at `span` about `field`.
    pub fn error(
        &self,
        span: Range<usize>,
        field: impl Into<String>,
        message: impl fmt::Display,
    ) -> ConfigError {
        ConfigError {
            file: self.path.to_path_buf(),
            position: Some(self.line_column(span.start)),
            field: Some(field.into()),
            message: message.to_string(),
        }
    }

    /// Converts a TOML syntax or shape error, which carries its own span.
    pub fn toml_error(&self, error: &toml::de::Error) -> ConfigError {
        ConfigError {
            file: self.path.to_path_buf(),
            position: error.span().map(|span| self.line_column(span.start)),
            field: None,
            message: error.message().trim_end().to_string(),
        }
    }

    fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let source = Source {
            path: Path::new("z.toml"),
            text: "a = 1\nbb = 2\n",
        };
        assert_eq!(source.line_column(0), (1, 1));
        assert_eq!(source.line_column(6), (2, 1));
        assert_eq!(source.line_column(9), (2, 4));
        let error = source.error(9..10, "bb", "bad");
        assert_eq!(error.to_string(), "z.toml:2:4: bb: bad");
        let error = ConfigError::file(Path::new("zones"), "cannot read the zones directory");
        assert_eq!(error.to_string(), "zones: cannot read the zones directory");
    }
}
