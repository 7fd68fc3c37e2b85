//! The one error type of template processing.

use std::fmt;

/// Why a template could not be read, its parameters resolved, or its objects produced.
///
/// Every message names what went wrong: the parameter, the quoted generator expression, or the
/// object (`objects[3] (Route/frontend)`), so that a user can find the spot in the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    /// The input is larger than [`super::MAX_TEMPLATE_BYTES`].
    #[error("template is {size} bytes, more than the limit of {limit} bytes (8 MiB)")]
    TooLarge { size: usize, limit: usize },

    /// Substitution would make more than [`super::MAX_OUTPUT_BYTES`] of objects.
    #[error(
        "processing would produce more than {limit} bytes (4 MiB) of objects: parameter values are substituted too often or are too long"
    )]
    OutputTooLarge { limit: usize },

    /// The input is neither valid YAML nor valid JSON.
    #[error("template is not valid {format}: {message}")]
    Syntax { format: &'static str, message: String },

    /// The input parsed, but is not a Template (wrong shape, kind or apiVersion) or a field has the
    /// wrong type.
    #[error("not a usable template: {0}")]
    NotATemplate(String),

    /// A parameter name is not made of letters, digits and underscores.
    #[error("parameter name \"{name}\" is invalid: use only letters, digits and underscores")]
    InvalidParameterName { name: String },

    /// Two parameters have the same name.
    #[error("parameter \"{name}\" is declared more than once")]
    DuplicateParameter { name: String },

    /// `generate` names a generator other than `expression`.
    #[error(
        "parameter \"{parameter}\": unknown generator \"{generator}\" (the only generator is \"expression\")"
    )]
    UnknownGenerator { parameter: String, generator: String },

    /// `generate: expression` without a `from`.
    #[error("parameter \"{parameter}\": generate is \"expression\" but from, the expression, is empty")]
    MissingExpression { parameter: String },

    /// A generator expression does not follow the grammar. `parameter` is set when the
    /// expression came from a template parameter.
    #[error("{}invalid generator expression \"{expression}\": {reason}", ParameterPrefix(parameter.as_deref()))]
    InvalidExpression {
        parameter: Option<String>,
        expression: String,
        reason: String,
    },

    /// Values were given for parameters the template does not declare.
    #[error("{}", UnknownParameters(names))]
    UnknownParameters { names: Vec<String> },

    /// Required parameters ended up with an empty value.
    #[error("{}", MissingRequired(names))]
    RequiredParameterMissing { names: Vec<String> },

    /// An object of the template is malformed, before or after substitution.
    #[error("{object}: {message}")]
    InvalidObject { object: String, message: String },

    /// An OpenShift object could not be translated to its Kubernetes or Slipway equivalent.
    #[error("cannot translate {object}: {message}")]
    Untranslatable { object: String, message: String },
}

/// `parameter "X": ` or nothing.
struct ParameterPrefix<'a>(Option<&'a str>);

impl fmt::Display for ParameterPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(name) => write!(f, "parameter \"{name}\": "),
            None => Ok(()),
        }
    }
}

/// `"A", "B"`.
struct QuotedList<'a>(&'a [String]);

impl fmt::Display for QuotedList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, name) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "\"{name}\"")?;
        }
        Ok(())
    }
}

struct UnknownParameters<'a>(&'a [String]);

impl fmt::Display for UnknownParameters<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = QuotedList(self.0);
        if self.0.len() == 1 {
            write!(f, "unknown parameter {names}: the template does not declare it")
        } else {
            write!(
                f,
                "unknown parameters {names}: the template does not declare them"
            )
        }
    }
}

struct MissingRequired<'a>(&'a [String]);

impl fmt::Display for MissingRequired<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = QuotedList(self.0);
        if self.0.len() == 1 {
            write!(f, "required parameter {names} has no value")
        } else {
            write!(f, "required parameters {names} have no value")
        }
    }
}
