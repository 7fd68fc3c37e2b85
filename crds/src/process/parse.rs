//! Reading a Template from YAML or JSON text.

use serde_json::{Map, Value};

use super::ProcessError;
use crate::template::{Parameter, TemplateFields, TemplateObject};

/// Input larger than this is refused before parsing: templates are small (the biggest in
/// OpenShift's library is about 60 KiB), and a bound keeps a hostile file from using much memory.
pub const MAX_TEMPLATE_BYTES: usize = 8 * 1024 * 1024;

/// The apiVersions a Template may have.
pub const TEMPLATE_API_VERSIONS: [&str; 3] = ["template.openshift.io/v1", "v1", crate::API_VERSION];

/// A template as read from a file or the cluster: any of template.openshift.io/v1 Template,
/// legacy `v1` Template, or slipway.dev/v1alpha1 Template, in YAML or JSON.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TemplateDocument {
    /// `metadata.name`, when there is one.
    pub name: Option<String>,
    /// The apiVersion as written (one of [`TEMPLATE_API_VERSIONS`]).
    pub api_version: String,
    pub fields: TemplateFields,
}

/// Reads a Template from YAML or JSON.
///
/// Text that looks like JSON (starts with `{`) is read as JSON first, so that its errors carry
/// JSON's line and column; if that fails it is tried as YAML (a YAML flow mapping also starts
/// with `{`), and the JSON error is reported unless YAML makes a usable template of it. Anything
/// else is read as YAML. Input over [`MAX_TEMPLATE_BYTES`] is refused before parsing.
pub fn parse_template(text: &str) -> Result<TemplateDocument, ProcessError> {
    if text.len() > MAX_TEMPLATE_BYTES {
        return Err(ProcessError::TooLarge {
            size: text.len(),
            limit: MAX_TEMPLATE_BYTES,
        });
    }
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.is_empty() {
        return Err(ProcessError::NotATemplate("the input is empty".to_owned()));
    }
    if !trimmed.starts_with('{') {
        let value = serde_yaml_ng::from_str::<Value>(trimmed).map_err(|e| ProcessError::Syntax {
            format: "YAML",
            message: e.to_string(),
        })?;
        return template_from_value(value);
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(value) => template_from_value(value),
        // Nesting deeper than serde_json's limit is also too deep for serde_yaml_ng (the same 128
        // levels), and libyaml takes time quadratic in the depth of flow mappings before saying
        // so: don't ask it.
        Err(json_error) if json_error.to_string().starts_with("recursion limit exceeded") => {
            Err(ProcessError::Syntax {
                format: "JSON",
                message: json_error.to_string(),
            })
        }
        // Broken JSON can still be YAML, and YAML reads `"kind": }` as a null kind: keep the YAML
        // reading only when it is a usable template, else report what JSON found wrong.
        Err(json_error) => serde_yaml_ng::from_str::<Value>(trimmed)
            .ok()
            .and_then(|value| template_from_value(value).ok())
            .ok_or_else(|| ProcessError::Syntax {
                format: "JSON",
                message: json_error.to_string(),
            }),
    }
}

/// Checks kind and apiVersion and reads the fields. Parameters and objects are read one by one so
/// that errors say which one is wrong.
pub(crate) fn template_from_value(value: Value) -> Result<TemplateDocument, ProcessError> {
    let Value::Object(mut map) = value else {
        return Err(ProcessError::NotATemplate(format!(
            "expected a Template (a mapping), found {}",
            describe_json_type(&value)
        )));
    };
    check_kind(&map)?;
    let api_version = template_api_version(&map)?;
    let name = match map.get("metadata").and_then(|metadata| metadata.get("name")) {
        Some(Value::String(name)) => Some(name.clone()),
        _ => None,
    };

    let message = match map.remove("message") {
        None | Some(Value::Null) => None,
        Some(Value::String(message)) => Some(message),
        Some(other) => return Err(field_type_error("message", "a string", &other)),
    };
    let objects = match map.remove("objects") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(objects)) => objects.into_iter().map(TemplateObject).collect(),
        Some(other) => return Err(field_type_error("objects", "a list", &other)),
    };
    let parameters = match map.remove("parameters") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(parameters)) => parameters
            .into_iter()
            .enumerate()
            .map(|(index, parameter)| {
                serde_json::from_value::<Parameter>(parameter)
                    .map_err(|e| ProcessError::NotATemplate(format!("parameters[{index}]: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => return Err(field_type_error("parameters", "a list", &other)),
    };
    let labels =
        match map.remove("labels") {
            None | Some(Value::Null) => None,
            Some(labels) => Some(serde_json::from_value(labels).map_err(|e| {
                ProcessError::NotATemplate(format!("labels must map strings to strings: {e}"))
            })?),
        };

    Ok(TemplateDocument {
        name,
        api_version,
        fields: TemplateFields {
            message,
            objects,
            parameters,
            labels,
        },
    })
}

/// The document's kind must be Template.
fn check_kind(map: &Map<String, Value>) -> Result<(), ProcessError> {
    match map.get("kind") {
        Some(Value::String(kind)) if kind == "Template" => Ok(()),
        Some(Value::String(kind)) => Err(ProcessError::NotATemplate(format!(
            "expected kind Template, found kind \"{kind}\""
        ))),
        Some(other) => Err(ProcessError::NotATemplate(format!(
            "expected kind Template, found a kind that is {}",
            describe_json_type(other)
        ))),
        None => Err(ProcessError::NotATemplate(
            "expected kind Template, found no kind".to_owned(),
        )),
    }
}

/// The Template's apiVersion: OpenShift's, the legacy v1 or Slipway's.
fn template_api_version(map: &Map<String, Value>) -> Result<String, ProcessError> {
    match map.get("apiVersion") {
        Some(Value::String(version)) if TEMPLATE_API_VERSIONS.contains(&version.as_str()) => {
            Ok(version.clone())
        }
        Some(Value::String(version)) => Err(ProcessError::NotATemplate(format!(
            "unsupported apiVersion \"{version}\" for a Template (expected template.openshift.io/v1, v1 or slipway.dev/v1alpha1)"
        ))),
        Some(other) => Err(ProcessError::NotATemplate(format!(
            "the apiVersion of a Template must be a string, found {}",
            describe_json_type(other)
        ))),
        None => Err(ProcessError::NotATemplate(
            "a Template needs an apiVersion (template.openshift.io/v1, v1 or slipway.dev/v1alpha1)"
                .to_owned(),
        )),
    }
}

fn field_type_error(field: &str, expected: &str, found: &Value) -> ProcessError {
    ProcessError::NotATemplate(format!(
        "{field} must be {expected}, found {}",
        describe_json_type(found)
    ))
}

/// "a string", "a list", ... for error messages.
pub(crate) fn describe_json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
apiVersion: template.openshift.io/v1
kind: Template
metadata:
  name: demo
message: "Made ${NAME}"
labels:
  app: demo
parameters:
- name: NAME
  displayName: Name
  value: web
  required: true
- name: PASSWORD
  generate: expression
  from: "[a-z]{8}"
objects:
- apiVersion: v1
  kind: Service
  metadata:
    name: ${NAME}
"#;

    fn error(text: &str) -> String {
        parse_template(text).unwrap_err().to_string()
    }

    #[test]
    fn reads_yaml() {
        let document = parse_template(YAML).unwrap();
        assert_eq!(document.name.as_deref(), Some("demo"));
        assert_eq!(document.api_version, "template.openshift.io/v1");
        assert_eq!(document.fields.message.as_deref(), Some("Made ${NAME}"));
        assert_eq!(document.fields.parameters.len(), 2);
        assert_eq!(
            document.fields.parameters[0].display_name.as_deref(),
            Some("Name")
        );
        assert!(document.fields.parameters[0].required);
        assert_eq!(
            document.fields.parameters[1].generate.as_deref(),
            Some("expression")
        );
        assert_eq!(document.fields.objects.len(), 1);
        assert_eq!(document.fields.objects[0].0["metadata"]["name"], "${NAME}");
        assert_eq!(document.fields.labels.as_ref().unwrap()["app"], "demo");
    }

    #[test]
    fn reads_json_and_every_api_version() {
        for version in TEMPLATE_API_VERSIONS {
            let text = format!(r#"{{"apiVersion": "{version}", "kind": "Template", "objects": []}}"#);
            let document = parse_template(&text).unwrap();
            assert_eq!(document.api_version, version);
            assert_eq!(document.name, None);
        }
        // A YAML flow mapping that is not JSON still reads.
        let document = parse_template("{apiVersion: v1, kind: Template}").unwrap();
        assert_eq!(document.api_version, "v1");
    }

    #[test]
    fn json_errors_are_reported_as_json() {
        assert_eq!(
            error("{\"apiVersion\": \"v1\",\n \"kind\": }"),
            "template is not valid JSON: expected value at line 2 column 10"
        );
    }

    #[test]
    fn yaml_errors_are_reported_as_yaml() {
        let message = error("kind: Template\n  bad: indentation\n");
        assert!(message.starts_with("template is not valid YAML: "), "{message}");
    }

    #[test]
    fn wrong_kind_or_api_version_names_what_was_found() {
        assert_eq!(
            error("apiVersion: apps/v1\nkind: Deployment\n"),
            "not a usable template: expected kind Template, found kind \"Deployment\""
        );
        assert_eq!(
            error("apiVersion: v1\n"),
            "not a usable template: expected kind Template, found no kind"
        );
        assert_eq!(
            error("kind: Template\napiVersion: template.openshift.io/v2\n"),
            "not a usable template: unsupported apiVersion \"template.openshift.io/v2\" for a Template (expected template.openshift.io/v1, v1 or slipway.dev/v1alpha1)"
        );
        assert_eq!(
            error("kind: Template\n"),
            "not a usable template: a Template needs an apiVersion (template.openshift.io/v1, v1 or slipway.dev/v1alpha1)"
        );
        assert_eq!(
            error("- a\n- b\n"),
            "not a usable template: expected a Template (a mapping), found a list"
        );
        assert_eq!(
            error("kind: 3\n"),
            "not a usable template: expected kind Template, found a kind that is a number"
        );
    }

    #[test]
    fn wrong_field_types_are_named() {
        assert_eq!(
            error("kind: Template\napiVersion: v1\nobjects: {}\n"),
            "not a usable template: objects must be a list, found a mapping"
        );
        assert_eq!(
            error("kind: Template\napiVersion: v1\nparameters:\n- value: x\n"),
            "not a usable template: parameters[0]: missing field `name`"
        );
        assert_eq!(
            error("kind: Template\napiVersion: v1\nparameters:\n- name: A\n- name: B\n  required: maybe\n"),
            "not a usable template: parameters[1]: invalid type: string \"maybe\", expected a boolean"
        );
        let message = error("kind: Template\napiVersion: v1\nlabels: [a]\n");
        assert!(
            message.starts_with("not a usable template: labels must map strings to strings: "),
            "{message}"
        );
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let text = format!(
            "kind: Template\napiVersion: v1\nmessage: \"{}\"\n",
            "x".repeat(MAX_TEMPLATE_BYTES)
        );
        assert_eq!(
            error(&text),
            format!(
                "template is {} bytes, more than the limit of 8388608 bytes (8 MiB)",
                text.len()
            )
        );
    }

    #[test]
    fn hostile_input_gives_errors_not_panics() {
        assert_eq!(error(""), "not a usable template: the input is empty");
        assert_eq!(error("  \n\t\n"), "not a usable template: the input is empty");

        // Nesting deeper than 128 levels is refused by the deserializers. (libyaml's scanner is
        // quadratic in the depth of flow mappings, so the YAML ones are kept moderate here.)
        let deep_flow = format!("x: {}1{}", "[".repeat(20_000), "]".repeat(20_000));
        assert!(error(&deep_flow).contains("recursion limit exceeded"));
        let deep_flow_map = format!("x: {}1{}", "{a: ".repeat(1_000), "}".repeat(1_000));
        assert!(error(&deep_flow_map).contains("recursion limit exceeded"));
        let deep_block = (0..2_000)
            .map(|depth| format!("{}a:\n", " ".repeat(depth)))
            .collect::<String>();
        assert!(error(&deep_block).contains("recursion limit exceeded"));
        let deep_json = format!("{}1{}", "{\"a\":".repeat(1_000_000), "}".repeat(1_000_000));
        assert!(error(&deep_json).starts_with("template is not valid JSON: recursion limit exceeded"));

        // A "billion laughs" of aliases: serde_yaml_ng stops expanding it.
        let mut bomb =
            String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for level in b'b'..=b'i' {
            let previous = char::from(level - 1);
            let refs = vec![format!("*{previous}"); 9].join(",");
            bomb.push_str(&format!(
                "{}: &{} [{refs}]\n",
                char::from(level),
                char::from(level)
            ));
        }
        bomb.push_str("kind: Template\napiVersion: v1\n");
        let message = error(&bomb);
        assert!(message.contains("repetition limit exceeded"), "{message}");

        let garbage: String = (0u32..2_000)
            .filter_map(|i| char::from_u32((i * 7919) % 0x3000))
            .collect();
        assert!(parse_template(&garbage).is_err());
        assert!(parse_template("\u{0}\u{1}\u{2}kind: Template").is_err());
        assert!(parse_template("--- !!binary aGVsbG8=").is_err());
        assert!(parse_template("kind: Template\n---\nkind: Template\n").is_err());
        assert!(parse_template("? [a, b]\n: c\n").is_err());
        assert!(
            parse_template("{\"kind\": \"Template\", \"apiVersion\": \"v1\", \"objects\": [1, [2]]}").is_ok()
        );
    }
}
