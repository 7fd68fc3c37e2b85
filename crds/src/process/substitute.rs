//! Parameter references in strings: `${NAME}` and `${{NAME}}`.
//!
//! Substitution is a single pass: a value that itself contains `${OTHER}` is inserted as is and
//! not expanded again, as in OpenShift, so a user's value can never pull in another parameter.
//!
//! What substitution adds is bounded: once the values inserted reach the budget (a value
//! referenced a million times would otherwise make gigabytes), nothing more is inserted and
//! [`Substitutions::exceeded`] says so; processing then fails.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;

use serde_json::{Map, Value};

/// Parameter names and their final values.
pub(crate) struct Substitutions<'a> {
    values: HashMap<&'a str, &'a str>,
    /// Bytes of values that may still be inserted.
    budget: Cell<usize>,
    exceeded: Cell<bool>,
}

impl<'a> Substitutions<'a> {
    /// Substitutions that insert at most [`super::MAX_OUTPUT_BYTES`] bytes of values.
    pub(crate) fn new(values: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self::with_budget(values, super::MAX_OUTPUT_BYTES)
    }

    pub(crate) fn with_budget(values: impl IntoIterator<Item = (&'a str, &'a str)>, budget: usize) -> Self {
        Substitutions {
            values: values.into_iter().collect(),
            budget: Cell::new(budget),
            exceeded: Cell::new(false),
        }
    }

    /// Whether a value was left out because the budget was spent.
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded.get()
    }

    /// Takes `len` bytes from the budget; false (and nothing taken) when they are not left.
    fn spend(&self, len: usize) -> bool {
        match self.budget.get().checked_sub(len) {
            Some(left) => {
                self.budget.set(left);
                true
            }
            None => {
                self.exceeded.set(true);
                false
            }
        }
    }

    /// Replaces every `${NAME}` and `${{NAME}}` of a declared parameter by its value, as text.
    /// References to undeclared names stay as written.
    pub(crate) fn text<'s>(&self, text: &'s str) -> Cow<'s, str> {
        // Most strings have no reference at all; don't copy them.
        let Some(first) = text.find("${") else {
            return Cow::Borrowed(text);
        };
        let mut out = String::with_capacity(text.len());
        out.push_str(&text[..first]);
        let mut rest = &text[first..];
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            match self.reference_at(rest) {
                Some((value, consumed)) => {
                    if self.spend(value.len()) {
                        out.push_str(value);
                    }
                    rest = &rest[consumed..];
                }
                None => {
                    out.push_str("${");
                    rest = &rest[2..];
                }
            }
        }
        out.push_str(rest);
        Cow::Owned(out)
    }

    /// At a `${`: the value of the reference it starts and the length of that reference, if it is
    /// a reference to a declared parameter.
    fn reference_at(&self, text: &str) -> Option<(&'a str, usize)> {
        let after = &text[2..];
        if let Some(inner) = after.strip_prefix('{') {
            let (name, len) = name_prefix(inner);
            if len > 0
                && inner[len..].starts_with("}}")
                && let Some(value) = self.values.get(name)
            {
                return Some((value, 2 + 1 + len + 2));
            }
            return None;
        }
        let (name, len) = name_prefix(after);
        if len > 0 && after[len..].starts_with('}') {
            return self.values.get(name).map(|value| (*value, 2 + len + 1));
        }
        None
    }

    /// A whole string value: `${{NAME}}` alone becomes the value read as JSON (a number, boolean,
    /// object...), or the value as a string when it is not JSON. Anything else is text.
    pub(crate) fn string_value(&self, text: &str) -> Value {
        if let Some(value) = self.whole_non_string_reference(text) {
            if !self.spend(value.len()) {
                return Value::Null;
            }
            return serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        }
        Value::String(self.text(text).into_owned())
    }

    fn whole_non_string_reference(&self, text: &str) -> Option<&'a str> {
        let name = text.strip_prefix("${{")?.strip_suffix("}}")?;
        if !is_parameter_name(name) {
            return None;
        }
        self.values.get(name).copied()
    }

    /// Substitutes every string in `value`, map keys included. A key that becomes equal to
    /// another key of the same map is an error (the message says which), as one of the two
    /// entries would otherwise be lost silently.
    pub(crate) fn value(&self, value: &mut Value) -> Result<(), String> {
        match value {
            Value::String(text) => {
                if text.contains("${") {
                    *value = self.string_value(text);
                }
                Ok(())
            }
            Value::Array(items) => items.iter_mut().try_for_each(|item| self.value(item)),
            Value::Object(map) => {
                if map.keys().any(|key| key.contains("${")) {
                    *map = self.keys(std::mem::take(map))?;
                }
                map.values_mut().try_for_each(|item| self.value(item))
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
        }
    }

    fn keys(&self, map: Map<String, Value>) -> Result<Map<String, Value>, String> {
        let mut out = Map::new();
        for (key, item) in map {
            let new_key = self.text(&key).into_owned();
            if out.contains_key(&new_key) {
                return Err(format!(
                    "two keys of one mapping become \"{new_key}\" after substitution"
                ));
            }
            out.insert(new_key, item);
        }
        Ok(out)
    }
}

/// The longest prefix of `text` made of parameter-name characters, and its length in bytes.
fn name_prefix(text: &str) -> (&str, usize) {
    let len = text.bytes().take_while(|&b| is_name_byte(b)).count();
    (&text[..len], len)
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `^[a-zA-Z0-9_]+$`: the names a parameter may have.
pub(crate) fn is_parameter_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_name_byte)
}

/// Whether `text` holds a string reference `${NAME}` (to any name, declared or not), the test
/// OpenShift uses to keep a template object's `metadata.namespace`: `${{NAME}}` alone is not one.
pub(crate) fn has_string_reference(text: &str) -> bool {
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        rest = &rest[start + 2..];
        let (_, len) = name_prefix(rest);
        if len > 0 && rest[len..].starts_with('}') {
            return true;
        }
    }
    false
}

/// Whether `text` references any of the names in `names` (as `${NAME}` or `${{NAME}}`).
#[cfg(test)]
pub(crate) fn references_any(text: &str, names: &[&str]) -> bool {
    let probe = Substitutions::new(names.iter().map(|name| (*name, "")));
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if probe.reference_at(&rest[start..]).is_some() {
            return true;
        }
        rest = &rest[start + 2..];
    }
    false
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn subs() -> Substitutions<'static> {
        Substitutions::new([
            ("NAME", "web"),
            ("REPLICAS", "3"),
            ("FLAG", "true"),
            ("OBJ", r#"{"a":1}"#),
            ("TEXT", "not json"),
            ("EMPTY", ""),
            ("SELF", "${NAME}"),
        ])
    }

    #[test]
    fn text_references() {
        let s = subs();
        assert_eq!(s.text("${NAME}"), "web");
        assert_eq!(s.text("a-${NAME}-${REPLICAS}-b"), "a-web-3-b");
        assert_eq!(s.text("${NOPE} and ${NAME}"), "${NOPE} and web");
        assert_eq!(s.text("${EMPTY}x"), "x");
        assert_eq!(
            s.text("$NAME ${ NAME} ${NAME ${} ${-} $${NAME}"),
            "$NAME ${ NAME} ${NAME ${} ${-} $web"
        );
        assert_eq!(s.text("${${NAME}}"), "${web}");
        assert_eq!(s.text("ünïcode ${NAME} ✓"), "ünïcode web ✓");
        assert!(matches!(s.text("no references"), Cow::Borrowed(_)));
    }

    #[test]
    fn substitution_is_a_single_pass() {
        assert_eq!(subs().text("${SELF}"), "${NAME}");
    }

    #[test]
    fn non_string_references() {
        let s = subs();
        assert_eq!(s.string_value("${{REPLICAS}}"), json!(3));
        assert_eq!(s.string_value("${{FLAG}}"), json!(true));
        assert_eq!(s.string_value("${{OBJ}}"), json!({"a": 1}));
        assert_eq!(s.string_value("${{TEXT}}"), json!("not json"));
        assert_eq!(s.string_value("${{EMPTY}}"), json!(""));
        assert_eq!(s.string_value("${{NOPE}}"), json!("${{NOPE}}"));
        // Only part of the string: substituted as text.
        assert_eq!(s.string_value("x${{REPLICAS}}"), json!("x3"));
        assert_eq!(s.string_value("${{REPLICAS}}${{REPLICAS}}"), json!("33"));
        assert_eq!(s.string_value("${REPLICAS}"), json!("3"));
    }

    #[test]
    fn values_recursively_with_keys() {
        let mut value = json!({
            "metadata": {"name": "${NAME}", "labels": {"${NAME}-key": "v", "n": "${NOPE}"}},
            "spec": {"replicas": "${{REPLICAS}}", "list": ["${NAME}", 1, null, {"deep": ["${{FLAG}}"]}]},
        });
        subs().value(&mut value).unwrap();
        assert_eq!(
            value,
            json!({
                "metadata": {"name": "web", "labels": {"web-key": "v", "n": "${NOPE}"}},
                "spec": {"replicas": 3, "list": ["web", 1, null, {"deep": [true]}]},
            })
        );
    }

    #[test]
    fn colliding_keys_are_an_error() {
        let mut value = json!({"${NAME}": 1, "web": 2});
        assert_eq!(
            subs().value(&mut value).unwrap_err(),
            "two keys of one mapping become \"web\" after substitution"
        );
    }

    #[test]
    fn finds_remaining_references() {
        assert!(references_any("a ${NAME} b", &["NAME"]));
        assert!(references_any("${{NAME}}", &["NAME"]));
        assert!(!references_any("${NAMES} ${NOPE}", &["NAME"]));
    }
}
