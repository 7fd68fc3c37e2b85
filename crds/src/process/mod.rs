//! Template processing: parameters, generator expressions, substitution and OpenShift
//! translation. Pure functions, no cluster.
//!
//! [`parse_template`] reads a Template (OpenShift's or Slipway's, YAML or JSON); [`process`]
//! turns its fields and the user's parameter values into the objects to create:
//!
//! 1. parameters are checked and get their final values (given, default or generated; see
//!    [`generator`] for the expression grammar);
//! 2. `${NAME}` in every string of every object (map keys too), in the labels and in the message
//!    is replaced by the parameter's value; `${{NAME}}` as a whole string value becomes the value
//!    read as JSON (number, boolean, object...), so non-string fields can be parameterised.
//!    References to names the template does not declare stay as written;
//! 3. a `metadata.namespace` written into an object is dropped, so objects go to the namespace
//!    the user processes the template for; one that holds a `${NAME}` reference is kept (a whole
//!    `${{NAME}}` is dropped, as OpenShift drops it);
//! 4. the template's labels (and the caller's extra labels, which win) go on every object, where
//!    they replace the object's own label of the same key, and on the pod templates of workloads
//!    (Deployment, DeploymentConfig, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob), where
//!    the pod's own label is kept because selectors match it. Selectors are never changed;
//! 5. OpenShift kinds are translated ([`translate_object`]); untranslated, an OpenShift kind
//!    written with the legacy `v1` apiVersion gets its group's (`apps.openshift.io/v1`...), as
//!    `oc process` writes it.
//!
//! Processing either returns every object or fails with a [`ProcessError`]; there is no partial
//! output.
//!
//! Differences from OpenShift, on purpose:
//! - generator ranges are inclusive (OpenShift's `[a-z]` never yields `z`);
//! - a `${{NAME}}` inside a longer string is substituted as text (OpenShift leaves it as written);
//! - a template label replaces an object's own label of the same key, so that the labels a user
//!   selects by are exactly the ones asked for (Slipway's choice; OpenShift does not replace them);
//! - declarations are validated even for parameters that are given a value.

mod error;
pub mod generator;
mod labels;
mod legacy;
mod parameters;
mod parse;
mod prune;
mod substitute;
mod translate;

#[cfg(test)]
mod corpus_tests;

use std::collections::BTreeMap;

use serde_json::Value;

pub use error::ProcessError;
pub use parse::{MAX_TEMPLATE_BYTES, TEMPLATE_API_VERSIONS, TemplateDocument, parse_template};
pub use prune::prune_unknown_fields;
pub use translate::{
    ROUTE_INSECURE_POLICY_ANNOTATION, ROUTE_PORT_ANNOTATION, ROUTE_TLS_INLINE_ANNOTATION,
    ROUTE_TLS_TERMINATION_ANNOTATION, Translation, translate_object,
};

use crate::template::{Parameter, TemplateFields};
use substitute::Substitutions;
use translate::{ServicePorts, object_label, translate_with_services};

/// The most JSON processing produces: the objects and the message, and also the bytes that
/// substitution inserts (counted as it goes, so a template that would make gigabytes stops
/// early). Every object must fit in etcd (1.5 MiB) anyway.
pub const MAX_OUTPUT_BYTES: usize = 4 * 1024 * 1024;

/// How to process a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessOptions {
    /// Accept values for parameters the template does not declare (and ignore them), instead of
    /// failing. For callers that pass one set of values to several templates.
    pub ignore_unknown_parameters: bool,
    /// Translate OpenShift kinds (Route, DeploymentConfig...) to Slipway and Kubernetes ones.
    pub translate: bool,
    /// Labels put on every object besides the template's own; they win over the template's.
    pub extra_labels: BTreeMap<String, String>,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        ProcessOptions {
            ignore_unknown_parameters: false,
            translate: true,
            extra_labels: BTreeMap::new(),
        }
    }
}

/// The result of processing a template.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessedTemplate {
    /// The objects to create, in the template's order.
    pub objects: Vec<Value>,
    /// The template's parameters, each with its final value (given, default or generated).
    pub parameters: Vec<Parameter>,
    /// The template's message, substituted.
    pub message: Option<String>,
    /// The objects that were translated, in order.
    pub translations: Vec<Translation>,
}

impl ProcessedTemplate {
    /// The objects as a `v1` List, what `oc process` prints.
    pub fn to_list(&self) -> Value {
        serde_json::json!({ "apiVersion": "v1", "kind": "List", "metadata": {}, "items": self.objects })
    }
}

/// Processes a template's fields with the user's parameter values. See the module documentation.
pub fn process(
    fields: &TemplateFields,
    values: &BTreeMap<String, String>,
    options: &ProcessOptions,
) -> Result<ProcessedTemplate, ProcessError> {
    process_with_rng(fields, values, options, &mut rand::rng())
}

/// [`process`] with the generator to draw generated values from.
pub(crate) fn process_with_rng<R: rand::CryptoRng + ?Sized>(
    fields: &TemplateFields,
    values: &BTreeMap<String, String>,
    options: &ProcessOptions,
    rng: &mut R,
) -> Result<ProcessedTemplate, ProcessError> {
    let parameters = parameters::resolve(&fields.parameters, values, options.ignore_unknown_parameters, rng)?;
    let substitutions = Substitutions::new(
        parameters
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_deref().unwrap_or_default())),
    );

    let mut labels: BTreeMap<String, String> = fields
        .labels
        .iter()
        .flatten()
        .map(|(key, value)| {
            (
                substitutions.text(key).into_owned(),
                substitutions.text(value).into_owned(),
            )
        })
        .collect();
    labels.extend(
        options
            .extra_labels
            .iter()
            .map(|(key, value)| (key.clone(), value.clone())),
    );

    let mut objects = fields
        .objects
        .iter()
        .enumerate()
        .map(|(index, object)| object_from_template(index, &object.0, &substitutions, &labels))
        .collect::<Result<Vec<_>, _>>()?;

    let mut translations = Vec::new();
    if !options.translate {
        objects.iter_mut().for_each(legacy::group_api_version);
    }
    if options.translate {
        let services = ServicePorts::from_objects(&objects);
        for (index, slot) in objects.iter_mut().enumerate() {
            let (translated, translation) = translate_with_services(std::mem::take(slot), &services)
                .map_err(|error| match error {
                    ProcessError::Untranslatable { object, message } => ProcessError::Untranslatable {
                        object: format!("objects[{index}] ({object})"),
                        message,
                    },
                    other => other,
                })?;
            *slot = translated;
            translations.extend(translation);
        }
    }

    let message = fields
        .message
        .as_deref()
        .map(|message| substitutions.text(message).into_owned());
    let size = objects
        .iter()
        .map(|o| serde_json::to_vec(o).map(|v| v.len()).unwrap_or(usize::MAX))
        .fold(message.as_ref().map_or(0, String::len), usize::saturating_add);
    if substitutions.exceeded() || size > MAX_OUTPUT_BYTES {
        return Err(ProcessError::OutputTooLarge {
            limit: MAX_OUTPUT_BYTES,
        });
    }
    Ok(ProcessedTemplate {
        objects,
        parameters,
        message,
        translations,
    })
}

/// One object of the template, substituted and labelled.
fn object_from_template(
    index: usize,
    object: &Value,
    substitutions: &Substitutions<'_>,
    labels: &BTreeMap<String, String>,
) -> Result<Value, ProcessError> {
    let invalid = |object: &serde_json::Map<String, Value>, message: String| ProcessError::InvalidObject {
        object: format!("objects[{index}] ({})", object_label(object)),
        message,
    };
    let Value::Object(template_object) = object else {
        return Err(ProcessError::InvalidObject {
            object: format!("objects[{index}]"),
            message: format!("must be a mapping, found {}", parse::describe_json_type(object)),
        });
    };
    let mut object = template_object.clone();

    // A namespace written into the template is where its author tried it; objects go to the
    // namespace the template is processed for. One that holds a `${NAME}` reference was meant to
    // be chosen (e.g. `${NAMESPACE}` for an ImageStream in `openshift`), so it stays; a whole
    // `${{NAME}}` is no such reference and is dropped, as OpenShift drops it.
    if let Some(Value::Object(metadata)) = object.get_mut("metadata") {
        let parameterised = matches!(metadata.get("namespace"), Some(Value::String(ns)) if substitute::has_string_reference(ns));
        if !parameterised {
            metadata.remove("namespace");
        }
    }

    let mut value = Value::Object(object);
    substitutions
        .value(&mut value)
        .map_err(|message| invalid(template_object, message))?;
    let Value::Object(mut object) = value else {
        // Substitution keeps a mapping a mapping; this is only for the type system.
        return Err(invalid(template_object, "must be a mapping".to_owned()));
    };

    // A namespace parameter left empty means "the namespace processed for", like no namespace.
    if let Some(Value::Object(metadata)) = object.get_mut("metadata")
        && metadata
            .get("namespace")
            .is_some_and(|ns| ns.as_str().is_none_or(str::is_empty))
    {
        metadata.remove("namespace");
    }

    for field in ["apiVersion", "kind"] {
        match object.get(field) {
            Some(Value::String(text)) if !text.is_empty() => {}
            _ => return Err(invalid(&object, format!("{field} is missing or not a string"))),
        }
    }
    labels::apply(&mut object, labels).map_err(|message| invalid(&object, message))?;
    Ok(Value::Object(object))
}

/// A plausible value for a parameter, guessed from its name: `512Mi` for memory, `1Gi` for a
/// volume capacity, `1` for replicas, `openshift` for a namespace, `8080` for a port, `example`
/// otherwise.
///
/// A helper for tests and demos that process real templates without a user to fill in the
/// required parameters; not a source of real values. `PORT` must be a whole `_`-separated word
/// of the name (so `IMPORT_URL` is not a port); the others may appear anywhere.
pub fn plausible_value(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    let value = if upper.contains("MEMORY") {
        "512Mi"
    } else if upper.contains("VOLUME_CAPACITY") || upper.ends_with("CAPACITY") {
        "1Gi"
    } else if upper.contains("REPLICAS") {
        "1"
    } else if upper.contains("NAMESPACE") {
        "openshift"
    } else if upper.split('_').any(|word| word == "PORT") {
        "8080"
    } else {
        "example"
    };
    value.to_owned()
}

#[cfg(test)]
mod tests;
