//! Config errors: a parse error with its place, or every semantic violation.

use std::fmt;

/// Why a config was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The text is not valid YAML or does not fit the schema.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The text fits the schema but breaks rules; every violation is listed.
    #[error("{}", SemanticList(.0))]
    Semantic(Vec<SemanticError>),
}

impl ConfigError {
    /// The errors one per line, as `maglevd --check` prints them.
    pub fn lines(&self) -> Vec<String> {
        match self {
            ConfigError::Parse(e) => vec![e.to_string()],
            ConfigError::Semantic(list) => list.iter().map(ToString::to_string).collect(),
        }
    }
}

struct SemanticList<'a>(&'a [SemanticError]);

impl fmt::Display for SemanticList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A structural error: bad YAML, an unknown key or a wrong type.
///
/// Displays as `origin:line:column: key.path: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}:{column}: {path}: {message}")]
pub struct ParseError {
    /// The input's name, usually the file path.
    pub origin: String,
    /// 1-based line of the offending text (0 when unknown).
    pub line: usize,
    /// 1-based column of the offending text (0 when unknown).
    pub column: usize,
    /// The key path, such as `maglev.frontends.web.pools[0].backends.a.weight`.
    pub path: String,
    /// What was wrong.
    pub message: String,
}

/// One semantic rule broken, at one key path.
///
/// Displays as `key.path: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SemanticError {
    /// The key path of the offending value.
    pub path: String,
    /// What rule it breaks.
    pub message: String,
}
