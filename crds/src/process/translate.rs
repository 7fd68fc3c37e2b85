//! Turning OpenShift objects into their Slipway or Kubernetes equivalents.
//!
//! - BuildConfig, Build, DeploymentConfig, ImageStream and Template (their OpenShift groups, or
//!   the legacy `v1`) only change apiVersion to `slipway.dev/v1alpha1`: Slipway's kinds have the
//!   same fields.
//! - A Route becomes a `networking.k8s.io/v1` Ingress (see [`route_to_ingress`] for what cannot
//!   be carried over and how that is recorded).
//! - An `authorization.openshift.io/v1` (or legacy `v1`) RoleBinding becomes an
//!   `rbac.authorization.k8s.io/v1` RoleBinding.
//! - Everything else is left alone.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value, json};

use super::ProcessError;
use super::parse::describe_json_type;

/// Annotation on an Ingress made from a Route that did not say which port to use and whose
/// Service was not in the template; the Ingress then uses port 80.
pub const ROUTE_PORT_ANNOTATION: &str = "slipway.dev/route-port";
/// Annotation on an Ingress made from a Route with an inline certificate or key, which an
/// Ingress cannot hold (it takes a Secret).
pub const ROUTE_TLS_INLINE_ANNOTATION: &str = "slipway.dev/route-tls-inline";
/// Annotation on an Ingress made from a passthrough or reencrypt Route: the termination it asked
/// for, which an Ingress cannot express.
pub const ROUTE_TLS_TERMINATION_ANNOTATION: &str = "slipway.dev/route-tls-termination";
/// Annotation on an Ingress made from an edge Route: its `insecureEdgeTerminationPolicy`, kept
/// for whoever configures the ingress controller's HTTP-to-HTTPS redirect.
pub const ROUTE_INSECURE_POLICY_ANNOTATION: &str = "slipway.dev/route-insecure-edge-termination-policy";

const INGRESS_API_VERSION: &str = "networking.k8s.io/v1";
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const RBAC_API_VERSION: &str = "rbac.authorization.k8s.io/v1";
/// The port an Ingress uses when neither the Route nor its Service says which.
const FALLBACK_PORT: i64 = 80;

/// One object changed from its OpenShift form; the CLI reports these on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    /// The object, as `Kind/name` of the original, e.g. `Route/frontend`.
    pub object: String,
    /// apiVersion and kind before, e.g. `route.openshift.io/v1 Route`.
    pub from: String,
    /// apiVersion and kind after, e.g. `networking.k8s.io/v1 Ingress`.
    pub to: String,
    /// What could not be carried over exactly, one sentence each.
    pub notes: Vec<String>,
}

impl fmt::Display for Translation {
    /// One line: `Route/frontend: route.openshift.io/v1 Route -> networking.k8s.io/v1 Ingress`,
    /// followed by the notes in parentheses, if any.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} -> {}", self.object, self.from, self.to)?;
        if !self.notes.is_empty() {
            write!(f, " ({})", self.notes.join("; "))?;
        }
        Ok(())
    }
}

/// Translates one object, if it is an OpenShift kind Slipway replaces; returns it unchanged, with
/// no Translation, otherwise.
///
/// A Route without `spec.port` gets port 80 here, as its Service is unknown; [`super::process`]
/// looks the Service up among the template's objects instead.
pub fn translate_object(object: Value) -> Result<(Value, Option<Translation>), ProcessError> {
    translate_with_services(object, &ServicePorts::default())
}

pub(crate) fn translate_with_services(
    object: Value,
    services: &ServicePorts,
) -> Result<(Value, Option<Translation>), ProcessError> {
    let Value::Object(map) = object else {
        return Err(ProcessError::InvalidObject {
            object: "object".to_owned(),
            message: format!("must be a mapping, found {}", describe_json_type(&object)),
        });
    };
    let api_version = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let kind = map
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let target = match Target::of(&api_version, &kind) {
        Some(target) => target,
        None => return Ok(plain_selector(map, &api_version, &kind)),
    };
    let object_name = object_label(&map);
    let untranslatable = |message: String| ProcessError::Untranslatable {
        object: object_name.clone(),
        message,
    };

    let (translated, to, notes) = match target {
        Target::Slipway => {
            let mut map = map;
            map.insert(
                "apiVersion".to_owned(),
                Value::String(crate::API_VERSION.to_owned()),
            );
            (map, format!("{} {kind}", crate::API_VERSION), Vec::new())
        }
        Target::Ingress => {
            let (map, notes) = route_to_ingress(map, services).map_err(untranslatable)?;
            (map, format!("{INGRESS_API_VERSION} Ingress"), notes)
        }
        Target::RoleBinding => {
            let map = role_binding(map).map_err(untranslatable)?;
            (map, format!("{RBAC_API_VERSION} RoleBinding"), Vec::new())
        }
    };
    let translation = Translation {
        object: object_name,
        from: format!("{api_version} {kind}"),
        to,
        notes,
    };
    Ok((Value::Object(translated), Some(translation)))
}

/// An apps/v1 workload whose `spec.selector` is written as a DeploymentConfig's (a plain map of
/// labels, as the corpus's `dancer-mysql-example` writes its database Deployment) gets it as
/// `matchLabels`, noted; the API server would refuse it ("empty selector is invalid"). Any other
/// object is returned as it is.
fn plain_selector(
    mut map: Map<String, Value>,
    api_version: &str,
    kind: &str,
) -> (Value, Option<Translation>) {
    let workload =
        api_version == "apps/v1" && matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet");
    let labels = map
        .get("spec")
        .and_then(|spec| spec.get("selector"))
        .and_then(Value::as_object)
        .filter(|selector| {
            !selector.is_empty()
                && !selector.contains_key("matchLabels")
                && !selector.contains_key("matchExpressions")
                && selector.values().all(Value::is_string)
        })
        .cloned();
    let (true, Some(labels)) = (workload, labels) else {
        return (Value::Object(map), None);
    };
    let note = format!(
        "spec.selector {} is a DeploymentConfig's form; taken as matchLabels",
        Value::Object(labels.clone())
    );
    if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("selector".to_owned(), serde_json::json!({"matchLabels": labels}));
    }
    let translation = Translation {
        object: object_label(&map),
        from: format!("{api_version} {kind}"),
        to: format!("{api_version} {kind}"),
        notes: vec![note],
    };
    (Value::Object(map), Some(translation))
}

enum Target {
    Slipway,
    Ingress,
    RoleBinding,
}

impl Target {
    fn of(api_version: &str, kind: &str) -> Option<Target> {
        match (api_version, kind) {
            ("build.openshift.io/v1", "BuildConfig" | "Build")
            | ("apps.openshift.io/v1", "DeploymentConfig")
            | ("image.openshift.io/v1", "ImageStream")
            | ("template.openshift.io/v1", "Template")
            | ("v1", "BuildConfig" | "Build" | "DeploymentConfig" | "ImageStream" | "Template") => {
                Some(Target::Slipway)
            }
            ("route.openshift.io/v1" | "v1", "Route") => Some(Target::Ingress),
            ("authorization.openshift.io/v1" | "v1", "RoleBinding") => Some(Target::RoleBinding),
            _ => None,
        }
    }
}

/// `Kind/name` for messages; `Kind/prefix*` for an object with only a generateName.
pub(crate) fn object_label(object: &Map<String, Value>) -> String {
    let kind = match object.get("kind").and_then(Value::as_str) {
        Some(kind) if !kind.is_empty() => kind,
        _ => "object",
    };
    let metadata = object.get("metadata");
    let text = |key: &str| {
        metadata
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    match (text("name"), text("generateName")) {
        (Some(name), _) => format!("{kind}/{name}"),
        (None, Some(prefix)) => format!("{kind}/{prefix}*"),
        (None, None) => format!("{kind} without a name"),
    }
}

/// A port as a Route or Service refers to it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PortRef {
    Number(i64),
    Name(String),
}

impl PortRef {
    /// A number, or a string: digits are read as a number, because `targetPort: "${PORT}"` is
    /// how templates write a parameterised port (and port names must contain a letter).
    fn read(value: &Value) -> Option<PortRef> {
        match value {
            Value::Number(number) => number.as_i64().map(PortRef::Number),
            Value::String(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
                text.parse().ok().map(PortRef::Number)
            }
            Value::String(text) if !text.is_empty() => Some(PortRef::Name(text.clone())),
            _ => None,
        }
    }

    fn to_backend_port(&self) -> Value {
        match self {
            PortRef::Number(number) => json!({ "number": number }),
            PortRef::Name(name) => json!({ "name": name }),
        }
    }
}

/// One port of a Service: `port` is what an Ingress backend names, `targetPort` what a Route's
/// `spec.port.targetPort` refers to.
#[derive(Debug, Clone)]
struct ServicePort {
    port: i64,
    target_port: Option<PortRef>,
}

/// The ports of the Services among a template's objects, by Service name, to resolve the port of
/// Routes that point to them.
#[derive(Debug, Default)]
pub(crate) struct ServicePorts {
    by_name: HashMap<String, Vec<ServicePort>>,
}

impl ServicePorts {
    pub(crate) fn from_objects(objects: &[Value]) -> Self {
        let mut by_name: HashMap<String, Vec<ServicePort>> = HashMap::new();
        for object in objects {
            if object.get("apiVersion").and_then(Value::as_str) != Some("v1")
                || object.get("kind").and_then(Value::as_str) != Some("Service")
            {
                continue;
            }
            let Some(name) = object.pointer("/metadata/name").and_then(Value::as_str) else {
                continue;
            };
            let ports = object
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|port| match PortRef::read(port.get("port")?)? {
                    PortRef::Number(number) => Some(ServicePort {
                        port: number,
                        target_port: port.get("targetPort").and_then(PortRef::read),
                    }),
                    PortRef::Name(_) => None,
                })
                .collect();
            by_name.entry(name.to_owned()).or_insert(ports);
        }
        ServicePorts { by_name }
    }
}

/// The backend port of the Ingress made from a Route.
///
/// - `targetPort` a name: the Service port of that name (Endpoints ports carry the Service's
///   port names, so it is the same name).
/// - `targetPort` a number: it is the pod's port; the Ingress needs the Service's port, so the
///   Service port forwarding to it is used when the Service is in the template, else the number
///   itself (Services usually expose the pod's port unchanged).
/// - no `targetPort`: OpenShift's router then uses the Service's port, so the Service's first
///   port is used when the Service is in the template. Otherwise nothing says which port: port
///   80 is used, the Ingress gets [`ROUTE_PORT_ANNOTATION`]` = unspecified`, and a note says so.
fn backend_port(
    target_port: Option<PortRef>,
    service_name: &str,
    services: &ServicePorts,
    notes: &mut Vec<String>,
    annotations: &mut Vec<(&'static str, String)>,
) -> PortRef {
    let service = services
        .by_name
        .get(service_name)
        .filter(|ports| !ports.is_empty());
    match (target_port, service) {
        (Some(PortRef::Name(name)), _) => PortRef::Name(name),
        (Some(PortRef::Number(number)), Some(ports)) => {
            let forwarding = ports.iter().find(|p| match &p.target_port {
                Some(target) => *target == PortRef::Number(number),
                None => p.port == number,
            });
            PortRef::Number(forwarding.map_or(number, |p| p.port))
        }
        (Some(PortRef::Number(number)), None) => PortRef::Number(number),
        (None, Some(ports)) => {
            let first = ports[0].port;
            if ports.len() > 1 {
                notes.push(format!(
                    "spec.port is not set: using port {first}, the first of Service {service_name}"
                ));
            }
            PortRef::Number(first)
        }
        (None, None) => {
            annotations.push((ROUTE_PORT_ANNOTATION, "unspecified".to_owned()));
            notes.push(format!(
                "spec.port is not set and Service {service_name} is not in the template: using port {FALLBACK_PORT}"
            ));
            PortRef::Number(FALLBACK_PORT)
        }
    }
}

/// A Route as an Ingress: one rule for the Route's host (none when the host is empty, so it
/// matches any host), one `Prefix` path (the Route's, `/` by default), the Route's Service as
/// backend. Metadata (name, labels, annotations...) is kept; status is dropped.
///
/// TLS:
/// - edge: `spec.tls: [{hosts: [host]}]`, without secretName, so the ingress controller's default
///   certificate is used. An inline certificate/key cannot go into an Ingress (it takes a
///   Secret): the Ingress gets [`ROUTE_TLS_INLINE_ANNOTATION`]` = "true"` and a note.
/// - passthrough and reencrypt have no Ingress equivalent: the Ingress is plain HTTP and
///   records the termination in [`ROUTE_TLS_TERMINATION_ANNOTATION`], with a note.
///
/// `alternateBackends` (weighted backends) are dropped with a note.
fn route_to_ingress(
    mut route: Map<String, Value>,
    services: &ServicePorts,
) -> Result<(Map<String, Value>, Vec<String>), String> {
    let spec = match route.remove("spec") {
        Some(Value::Object(spec)) => spec,
        None | Some(Value::Null) => return Err("a Route needs a spec".to_owned()),
        Some(other) => {
            return Err(format!(
                "spec must be a mapping, found {}",
                describe_json_type(&other)
            ));
        }
    };
    let host = optional_str(&spec, "host", "spec.host")?.unwrap_or_default();
    let path = optional_str(&spec, "path", "spec.path")?
        .filter(|path| !path.is_empty())
        .unwrap_or("/");
    let (service, target_port) = route_target(&spec)?;
    let mut notes = Vec::new();
    let mut annotations: Vec<(&'static str, String)> = Vec::new();
    if spec
        .get("alternateBackends")
        .and_then(Value::as_array)
        .is_some_and(|backends| !backends.is_empty())
    {
        notes.push("spec.alternateBackends dropped: an Ingress has no weighted backends".to_owned());
    }
    let port = backend_port(target_port, service, services, &mut notes, &mut annotations);
    let ingress_tls = match optional_map(&spec, "tls", "spec.tls")? {
        Some(tls) => route_tls(tls, host, &mut annotations, &mut notes)?,
        None => None,
    };
    let mut rule = Map::new();
    if !host.is_empty() {
        rule.insert("host".to_owned(), json!(host));
    }
    rule.insert(
        "http".to_owned(),
        json!({ "paths": [{
            "path": path,
            "pathType": "Prefix",
            "backend": { "service": { "name": service, "port": port.to_backend_port() } },
        }] }),
    );
    let mut ingress_spec = Map::new();
    ingress_spec.insert("rules".to_owned(), json!([rule]));
    if let Some(tls) = ingress_tls {
        ingress_spec.insert("tls".to_owned(), tls);
    }
    let ingress = ingress_object(route.remove("metadata"), ingress_spec, annotations)?;
    Ok((ingress, notes))
}

/// The Service a Route's `spec.to` names and the target port its `spec.port` asks for.
fn route_target(spec: &Map<String, Value>) -> Result<(&str, Option<PortRef>), String> {
    let to = optional_map(spec, "to", "spec.to")?
        .ok_or_else(|| "spec.to, the Service to route to, is missing".to_owned())?;
    if let Some(kind) = optional_str(to, "kind", "spec.to.kind")?
        && !kind.is_empty()
        && kind != "Service"
    {
        return Err(format!(
            "spec.to.kind is \"{kind}\"; only a Route to a Service can become an Ingress"
        ));
    }
    let service = optional_str(to, "name", "spec.to.name")?
        .filter(|name| !name.is_empty())
        .ok_or_else(|| "spec.to.name, the Service to route to, is missing".to_owned())?;
    let target_port = match optional_map(spec, "port", "spec.port")?.and_then(|port| port.get("targetPort")) {
        None | Some(Value::Null) => None,
        Some(value) => Some(PortRef::read(value).ok_or_else(|| {
            format!(
                "spec.port.targetPort must be a port number or name, found {}",
                describe_json_type(value)
            )
        })?),
    };
    Ok((service, target_port))
}

/// A Route's `spec.tls` as the Ingress's `tls` (edge termination), with annotations and notes
/// for what an Ingress cannot say (passthrough, reencrypt, inline certificates).
fn route_tls(
    tls: &Map<String, Value>,
    host: &str,
    annotations: &mut Vec<(&'static str, String)>,
    notes: &mut Vec<String>,
) -> Result<Option<Value>, String> {
    let has_inline_material = ["certificate", "key", "caCertificate", "destinationCACertificate"]
        .iter()
        .any(|field| {
            tls.get(*field)
                .and_then(Value::as_str)
                .is_some_and(|text| !text.is_empty())
        });
    let termination = optional_str(tls, "termination", "spec.tls.termination")?.unwrap_or_default();
    let mut ingress_tls = None;
    match termination {
        "edge" => {
            ingress_tls = Some(if host.is_empty() {
                json!([{}])
            } else {
                json!([{ "hosts": [host] }])
            });
            if let Some(policy) = optional_str(
                tls,
                "insecureEdgeTerminationPolicy",
                "spec.tls.insecureEdgeTerminationPolicy",
            )?
            .filter(|policy| !policy.is_empty())
            {
                annotations.push((ROUTE_INSECURE_POLICY_ANNOTATION, policy.to_owned()));
            }
        }
        "passthrough" | "reencrypt" => {
            annotations.push((ROUTE_TLS_TERMINATION_ANNOTATION, termination.to_owned()));
            notes.push(format!(
                "{termination} TLS termination has no Ingress equivalent: translated to a plain HTTP Ingress"
            ));
        }
        "" => return Err("spec.tls.termination is missing (edge, passthrough or reencrypt)".to_owned()),
        other => {
            return Err(format!(
                "unknown spec.tls.termination \"{other}\" (expected edge, passthrough or reencrypt)"
            ));
        }
    }
    if has_inline_material {
        annotations.push((ROUTE_TLS_INLINE_ANNOTATION, "true".to_owned()));
        notes.push(
            "the Route's inline certificate cannot go into an Ingress: put it in a kubernetes.io/tls Secret and set spec.tls[0].secretName"
                .to_owned(),
        );
    }
    Ok(ingress_tls)
}

/// The Ingress object: the Route's metadata with `annotations` added, and `spec`.
fn ingress_object(
    metadata: Option<Value>,
    spec: Map<String, Value>,
    annotations: Vec<(&'static str, String)>,
) -> Result<Map<String, Value>, String> {
    let mut ingress = Map::new();
    ingress.insert("apiVersion".to_owned(), json!(INGRESS_API_VERSION));
    ingress.insert("kind".to_owned(), json!("Ingress"));
    if let Some(metadata) = metadata {
        ingress.insert("metadata".to_owned(), metadata);
    }
    if !annotations.is_empty() {
        let metadata = child_map(&mut ingress, "metadata", "metadata")?;
        let target = child_map(metadata, "annotations", "metadata.annotations")?;
        for (key, value) in annotations {
            target.insert(key.to_owned(), Value::String(value));
        }
    }
    ingress.insert("spec".to_owned(), Value::Object(spec));
    Ok(ingress)
}

/// An OpenShift RoleBinding as an RBAC one.
///
/// `roleRef` becomes `{apiGroup: rbac.authorization.k8s.io, kind, name}`: kind is the one given,
/// else Role when the reference has a namespace (OpenShift's way of naming a local role), else
/// ClusterRole. Subjects: ServiceAccount keeps its namespace (empty means the binding's own, as
/// in RBAC); User and Group (and OpenShift's SystemUser and SystemGroup) get the RBAC apiGroup.
/// The legacy `userNames` and `groupNames` lists become subjects too, a user name
/// `system:serviceaccount:NS:NAME` becoming a ServiceAccount subject. Duplicates are dropped.
fn role_binding(mut binding: Map<String, Value>) -> Result<Map<String, Value>, String> {
    let role_ref = optional_map(&binding, "roleRef", "roleRef")?
        .ok_or_else(|| "roleRef, the role to bind, is missing".to_owned())?;
    let role_name = optional_str(role_ref, "name", "roleRef.name")?
        .filter(|name| !name.is_empty())
        .ok_or_else(|| "roleRef.name, the role to bind, is missing".to_owned())?;
    let role_kind = match optional_str(role_ref, "kind", "roleRef.kind")?.filter(|kind| !kind.is_empty()) {
        Some(kind @ ("Role" | "ClusterRole")) => kind,
        Some(other) => {
            return Err(format!(
                "roleRef.kind \"{other}\" is neither Role nor ClusterRole"
            ));
        }
        None if optional_str(role_ref, "namespace", "roleRef.namespace")?
            .is_some_and(|ns| !ns.is_empty()) =>
        {
            "Role"
        }
        None => "ClusterRole",
    };
    let role_ref = json!({ "apiGroup": RBAC_GROUP, "kind": role_kind, "name": role_name });

    let mut subjects: Vec<Value> = Vec::new();
    let mut add = |subject: Value| {
        if !subjects.contains(&subject) {
            subjects.push(subject);
        }
    };
    for (index, subject) in optional_list(&binding, "subjects")?.iter().enumerate() {
        add(rbac_subject(subject).map_err(|message| format!("subjects[{index}]: {message}"))?);
    }
    for name in string_list(&binding, "userNames")? {
        add(user_subject(name));
    }
    for name in string_list(&binding, "groupNames")? {
        add(group_subject(name));
    }

    let mut out = Map::new();
    out.insert("apiVersion".to_owned(), json!(RBAC_API_VERSION));
    out.insert("kind".to_owned(), json!("RoleBinding"));
    if let Some(metadata) = binding.remove("metadata") {
        out.insert("metadata".to_owned(), metadata);
    }
    out.insert("roleRef".to_owned(), role_ref);
    if !subjects.is_empty() {
        out.insert("subjects".to_owned(), Value::Array(subjects));
    }
    Ok(out)
}

fn rbac_subject(subject: &Value) -> Result<Value, String> {
    let Value::Object(subject) = subject else {
        return Err(format!(
            "must be a mapping, found {}",
            describe_json_type(subject)
        ));
    };
    let name = optional_str(subject, "name", "name")?
        .filter(|name| !name.is_empty())
        .ok_or_else(|| "name is missing".to_owned())?;
    match optional_str(subject, "kind", "kind")?.unwrap_or_default() {
        "ServiceAccount" => {
            let namespace = optional_str(subject, "namespace", "namespace")?.unwrap_or_default();
            Ok(service_account_subject(namespace, name))
        }
        "User" | "SystemUser" => Ok(user_subject(name)),
        "Group" | "SystemGroup" => Ok(group_subject(name)),
        "" => Err("kind is missing (ServiceAccount, User or Group)".to_owned()),
        other => Err(format!("kind \"{other}\" is not ServiceAccount, User or Group")),
    }
}

fn service_account_subject(namespace: &str, name: &str) -> Value {
    if namespace.is_empty() {
        json!({ "kind": "ServiceAccount", "name": name })
    } else {
        json!({ "kind": "ServiceAccount", "name": name, "namespace": namespace })
    }
}

/// A user, or the service account `system:serviceaccount:NS:NAME` stands for.
fn user_subject(name: &str) -> Value {
    if let Some((namespace, account)) = name
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
        && !namespace.is_empty()
        && !account.is_empty()
        && !account.contains(':')
    {
        return service_account_subject(namespace, account);
    }
    json!({ "apiGroup": RBAC_GROUP, "kind": "User", "name": name })
}

fn group_subject(name: &str) -> Value {
    json!({ "apiGroup": RBAC_GROUP, "kind": "Group", "name": name })
}

fn optional_str<'m>(map: &'m Map<String, Value>, key: &str, path: &str) -> Result<Option<&'m str>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(format!(
            "{path} must be a string, found {}",
            describe_json_type(other)
        )),
    }
}

fn optional_map<'m>(
    map: &'m Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'m Map<String, Value>>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(inner)) => Ok(Some(inner)),
        Some(other) => Err(format!(
            "{path} must be a mapping, found {}",
            describe_json_type(other)
        )),
    }
}

fn optional_list<'m>(map: &'m Map<String, Value>, key: &str) -> Result<&'m [Value], String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(format!(
            "{key} must be a list, found {}",
            describe_json_type(other)
        )),
    }
}

fn string_list<'m>(map: &'m Map<String, Value>, key: &str) -> Result<Vec<&'m str>, String> {
    optional_list(map, key)?
        .iter()
        .map(|item| {
            item.as_str()
                .ok_or_else(|| format!("{key} must be a list of strings"))
        })
        .collect()
}

fn child_map<'m>(
    parent: &'m mut Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'m mut Map<String, Value>, String> {
    let slot = parent.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(map) => Ok(map),
        other => Err(format!(
            "{path} must be a mapping, found {}",
            describe_json_type(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(object: Value) -> (Value, Option<Translation>) {
        translate_object(object).unwrap()
    }

    fn error(object: Value) -> String {
        translate_object(object).unwrap_err().to_string()
    }

    #[test]
    fn slipway_kinds_change_api_version_only() {
        for (api_version, kind) in [
            ("build.openshift.io/v1", "BuildConfig"),
            ("build.openshift.io/v1", "Build"),
            ("apps.openshift.io/v1", "DeploymentConfig"),
            ("image.openshift.io/v1", "ImageStream"),
            ("template.openshift.io/v1", "Template"),
            ("v1", "BuildConfig"),
            ("v1", "Build"),
            ("v1", "DeploymentConfig"),
            ("v1", "ImageStream"),
            ("v1", "Template"),
        ] {
            let object = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}, "spec": {"a": [1]}});
            let (out, translation) = translate(object.clone());
            let mut expected = object;
            expected["apiVersion"] = json!("slipway.dev/v1alpha1");
            assert_eq!(out, expected);
            let translation = translation.unwrap();
            assert_eq!(translation.object, format!("{kind}/x"));
            assert_eq!(translation.from, format!("{api_version} {kind}"));
            assert_eq!(translation.to, format!("slipway.dev/v1alpha1 {kind}"));
            assert!(translation.notes.is_empty());
        }
    }

    #[test]
    fn a_deployment_with_a_deployment_configs_selector_gets_match_labels() {
        let (object, translation) = translate(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "database"},
            "spec": {"selector": {"name": "database"}, "template": {"metadata": {"labels": {"name": "database"}}}}
        }));
        assert_eq!(
            object["spec"]["selector"],
            json!({"matchLabels": {"name": "database"}})
        );
        let translation = translation.unwrap();
        assert_eq!(translation.to, "apps/v1 Deployment");
        assert!(
            translation.notes[0].contains("DeploymentConfig's form"),
            "{translation}"
        );
        // A proper selector, an empty one and a non-workload are left as they are.
        for untouched in [
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"selector": {"matchLabels": {"a": "b"}}}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"selector": {}}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"selector": {"a": 1}}}),
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"selector": {"a": "b"}}}),
        ] {
            let (object, translation) = translate(untouched.clone());
            assert_eq!(object, untouched);
            assert!(translation.is_none());
        }
    }

    #[test]
    fn everything_else_passes_through() {
        for object in [
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment"}),
            json!({"apiVersion": "build.openshift.io/v1", "kind": "DeploymentConfig"}),
            json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig"}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding"}),
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress"}),
            json!({"kind": "Route"}),
            json!({}),
        ] {
            assert_eq!(translate(object.clone()), (object, None));
        }
        assert_eq!(error(json!([1])), "object: must be a mapping, found a list");
    }

    #[test]
    fn route_becomes_ingress() {
        let route = json!({
            "apiVersion": "route.openshift.io/v1", "kind": "Route",
            "metadata": {"name": "frontend", "labels": {"app": "shop"}, "annotations": {"a": "b"}},
            "spec": {"host": "shop.example.com", "path": "/api", "to": {"kind": "Service", "name": "web", "weight": 100}, "port": {"targetPort": 8080}},
            "status": {"ingress": []},
        });
        let (ingress, translation) = translate(route);
        assert_eq!(
            ingress,
            json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": "frontend", "labels": {"app": "shop"}, "annotations": {"a": "b"}},
                "spec": {"rules": [{"host": "shop.example.com", "http": {"paths": [{
                    "path": "/api", "pathType": "Prefix",
                    "backend": {"service": {"name": "web", "port": {"number": 8080}}},
                }]}}]},
            })
        );
        let translation = translation.unwrap();
        assert_eq!(
            translation.to_string(),
            "Route/frontend: route.openshift.io/v1 Route -> networking.k8s.io/v1 Ingress"
        );
    }

    #[test]
    fn route_defaults_and_named_ports() {
        let (ingress, _) = translate(json!({
            "apiVersion": "v1", "kind": "Route", "metadata": {"name": "r"},
            "spec": {"host": "", "to": {"name": "web"}, "port": {"targetPort": "web-http"}},
        }));
        assert_eq!(
            ingress["spec"],
            json!({"rules": [{"http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "web", "port": {"name": "web-http"}}},
            }]}}]})
        );
        // Digits in a string are a number (a parameterised port).
        let (ingress, _) = translate(json!({
            "apiVersion": "v1", "kind": "Route", "spec": {"to": {"name": "web"}, "port": {"targetPort": "8443"}},
        }));
        assert_eq!(
            ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"],
            json!({"number": 8443})
        );
    }

    #[test]
    fn route_without_port_and_without_service() {
        let (ingress, translation) = translate(json!({
            "apiVersion": "route.openshift.io/v1", "kind": "Route", "metadata": {"name": "r"},
            "spec": {"to": {"kind": "Service", "name": "web"}},
        }));
        assert_eq!(
            ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"],
            json!({"number": 80})
        );
        assert_eq!(
            ingress["metadata"]["annotations"],
            json!({"slipway.dev/route-port": "unspecified"})
        );
        assert_eq!(
            translation.unwrap().to_string(),
            "Route/r: route.openshift.io/v1 Route -> networking.k8s.io/v1 Ingress (spec.port is not set and Service web is not in the template: using port 80)"
        );
    }

    #[test]
    fn route_ports_resolve_through_the_service() {
        let services = ServicePorts::from_objects(&[
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                   "spec": {"ports": [{"name": "http", "port": 8080, "targetPort": 3000}, {"name": "admin", "port": "9000"}]}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "single"}, "spec": {"ports": [{"port": 5432}]}}),
        ]);
        let port = |spec: Value| {
            let route = json!({"apiVersion": "v1", "kind": "Route", "metadata": {"name": "r"}, "spec": spec});
            let (ingress, translation) = translate_with_services(route, &services).unwrap();
            (
                ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"].clone(),
                translation.unwrap().notes,
            )
        };
        assert_eq!(
            port(json!({"to": {"name": "web"}, "port": {"targetPort": 3000}})),
            (json!({"number": 8080}), vec![])
        );
        assert_eq!(
            port(json!({"to": {"name": "web"}, "port": {"targetPort": 9000}})),
            (json!({"number": 9000}), vec![])
        );
        assert_eq!(
            port(json!({"to": {"name": "web"}, "port": {"targetPort": 7777}})),
            (json!({"number": 7777}), vec![])
        );
        assert_eq!(
            port(json!({"to": {"name": "web"}})),
            (
                json!({"number": 8080}),
                vec!["spec.port is not set: using port 8080, the first of Service web".to_owned()]
            )
        );
        assert_eq!(
            port(json!({"to": {"name": "single"}})),
            (json!({"number": 5432}), vec![])
        );
    }

    #[test]
    fn route_tls() {
        let route = |tls: Value| {
            json!({"apiVersion": "route.openshift.io/v1", "kind": "Route", "metadata": {"name": "r"},
                   "spec": {"host": "h.example.com", "to": {"name": "web"}, "port": {"targetPort": 8080}, "tls": tls}})
        };
        let (ingress, translation) = translate(route(
            json!({"termination": "edge", "insecureEdgeTerminationPolicy": "Redirect"}),
        ));
        assert_eq!(ingress["spec"]["tls"], json!([{"hosts": ["h.example.com"]}]));
        assert_eq!(
            ingress["metadata"]["annotations"],
            json!({"slipway.dev/route-insecure-edge-termination-policy": "Redirect"})
        );
        assert!(translation.unwrap().notes.is_empty());

        let (ingress, translation) = translate(route(
            json!({"termination": "edge", "certificate": "-----BEGIN...", "key": "-----BEGIN..."}),
        ));
        assert_eq!(ingress["spec"]["tls"], json!([{"hosts": ["h.example.com"]}]));
        assert_eq!(
            ingress["metadata"]["annotations"],
            json!({"slipway.dev/route-tls-inline": "true"})
        );
        assert_eq!(
            translation.unwrap().notes,
            [
                "the Route's inline certificate cannot go into an Ingress: put it in a kubernetes.io/tls Secret and set spec.tls[0].secretName"
            ]
        );

        for termination in ["passthrough", "reencrypt"] {
            let (ingress, translation) = translate(route(json!({"termination": termination})));
            assert_eq!(ingress["spec"].get("tls"), None);
            assert_eq!(
                ingress["metadata"]["annotations"],
                json!({"slipway.dev/route-tls-termination": termination})
            );
            assert_eq!(
                translation.unwrap().notes,
                [format!(
                    "{termination} TLS termination has no Ingress equivalent: translated to a plain HTTP Ingress"
                )]
            );
        }

        let (ingress, _) = translate(json!({"apiVersion": "v1", "kind": "Route",
            "spec": {"to": {"name": "web"}, "port": {"targetPort": 80}, "tls": {"termination": "edge"}}}));
        assert_eq!(ingress["spec"]["tls"], json!([{}]));
    }

    #[test]
    fn route_alternate_backends_are_noted() {
        let (_, translation) = translate(
            json!({"apiVersion": "v1", "kind": "Route", "metadata": {"name": "r"},
            "spec": {"to": {"name": "a"}, "port": {"targetPort": 80}, "alternateBackends": [{"kind": "Service", "name": "b", "weight": 10}]}}),
        );
        assert_eq!(
            translation.unwrap().notes,
            ["spec.alternateBackends dropped: an Ingress has no weighted backends"]
        );
    }

    #[test]
    fn malformed_routes() {
        let route = |spec: Value| json!({"apiVersion": "route.openshift.io/v1", "kind": "Route", "metadata": {"name": "r"}, "spec": spec});
        assert_eq!(
            error(json!({"apiVersion": "v1", "kind": "Route", "metadata": {"name": "r"}})),
            "cannot translate Route/r: a Route needs a spec"
        );
        assert_eq!(
            error(route(json!({}))),
            "cannot translate Route/r: spec.to, the Service to route to, is missing"
        );
        assert_eq!(
            error(route(json!({"to": {}}))),
            "cannot translate Route/r: spec.to.name, the Service to route to, is missing"
        );
        assert_eq!(
            error(route(json!({"to": {"kind": "Pod", "name": "p"}}))),
            "cannot translate Route/r: spec.to.kind is \"Pod\"; only a Route to a Service can become an Ingress"
        );
        assert_eq!(
            error(route(
                json!({"to": {"name": "s"}, "tls": {"termination": "magic"}})
            )),
            "cannot translate Route/r: unknown spec.tls.termination \"magic\" (expected edge, passthrough or reencrypt)"
        );
        assert_eq!(
            error(route(json!({"to": {"name": "s"}, "tls": {}}))),
            "cannot translate Route/r: spec.tls.termination is missing (edge, passthrough or reencrypt)"
        );
        assert_eq!(
            error(route(json!({"to": {"name": "s"}, "port": {"targetPort": true}}))),
            "cannot translate Route/r: spec.port.targetPort must be a port number or name, found a boolean"
        );
        assert_eq!(
            error(route(json!({"host": 1, "to": {"name": "s"}}))),
            "cannot translate Route/r: spec.host must be a string, found a number"
        );
    }

    #[test]
    fn role_binding_becomes_rbac() {
        let (binding, translation) = translate(json!({
            "apiVersion": "authorization.openshift.io/v1", "kind": "RoleBinding", "groupNames": null,
            "metadata": {"name": "jenkins_edit"},
            "roleRef": {"name": "edit"},
            "subjects": [{"kind": "ServiceAccount", "name": "jenkins"}],
        }));
        assert_eq!(
            binding,
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "jenkins_edit"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                "subjects": [{"kind": "ServiceAccount", "name": "jenkins"}],
            })
        );
        assert_eq!(
            translation.unwrap().to_string(),
            "RoleBinding/jenkins_edit: authorization.openshift.io/v1 RoleBinding -> rbac.authorization.k8s.io/v1 RoleBinding"
        );
    }

    #[test]
    fn legacy_role_binding_with_name_lists() {
        let (binding, _) = translate(json!({
            "apiVersion": "v1", "kind": "RoleBinding", "metadata": {"name": "b"},
            "roleRef": {"name": "deployer", "namespace": "shop"},
            "subjects": [
                {"kind": "User", "name": "alice"},
                {"kind": "SystemGroup", "name": "system:authenticated"},
                {"kind": "ServiceAccount", "name": "builder", "namespace": "ci"},
                {"kind": "User", "name": "system:serviceaccount:ops:robot"},
            ],
            "userNames": ["alice", "bob", "system:serviceaccount:ci:builder", "system:serviceaccount:bad"],
            "groupNames": ["devs"],
        }));
        assert_eq!(
            binding["roleRef"],
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"})
        );
        assert_eq!(
            binding["subjects"],
            json!([
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"},
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"},
                {"kind": "ServiceAccount", "name": "builder", "namespace": "ci"},
                {"kind": "ServiceAccount", "name": "robot", "namespace": "ops"},
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"},
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:serviceaccount:bad"},
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "devs"},
            ])
        );
        // An explicit kind wins over the namespace rule; no subjects is allowed.
        let (binding, _) = translate(json!({"apiVersion": "v1", "kind": "RoleBinding",
            "roleRef": {"kind": "ClusterRole", "name": "view", "namespace": "x"}}));
        assert_eq!(binding["roleRef"]["kind"], "ClusterRole");
        assert_eq!(binding.get("subjects"), None);
    }

    #[test]
    fn malformed_role_bindings() {
        let binding = |fields: Value| {
            let mut object = json!({"apiVersion": "authorization.openshift.io/v1", "kind": "RoleBinding", "metadata": {"name": "b"}});
            object
                .as_object_mut()
                .unwrap()
                .extend(fields.as_object().unwrap().clone());
            object
        };
        assert_eq!(
            error(binding(json!({}))),
            "cannot translate RoleBinding/b: roleRef, the role to bind, is missing"
        );
        assert_eq!(
            error(binding(json!({"roleRef": {}}))),
            "cannot translate RoleBinding/b: roleRef.name, the role to bind, is missing"
        );
        assert_eq!(
            error(binding(json!({"roleRef": {"name": "x", "kind": "Group"}}))),
            "cannot translate RoleBinding/b: roleRef.kind \"Group\" is neither Role nor ClusterRole"
        );
        assert_eq!(
            error(binding(
                json!({"roleRef": {"name": "x"}, "subjects": [{"kind": "Robot", "name": "r"}]})
            )),
            "cannot translate RoleBinding/b: subjects[0]: kind \"Robot\" is not ServiceAccount, User or Group"
        );
        assert_eq!(
            error(binding(
                json!({"roleRef": {"name": "x"}, "subjects": [{"name": "r"}]})
            )),
            "cannot translate RoleBinding/b: subjects[0]: kind is missing (ServiceAccount, User or Group)"
        );
        assert_eq!(
            error(binding(
                json!({"roleRef": {"name": "x"}, "subjects": [{"kind": "User"}]})
            )),
            "cannot translate RoleBinding/b: subjects[0]: name is missing"
        );
        assert_eq!(
            error(binding(json!({"roleRef": {"name": "x"}, "userNames": [1]}))),
            "cannot translate RoleBinding/b: userNames must be a list of strings"
        );
    }

    #[test]
    fn object_labels() {
        let label = |object: Value| object_label(object.as_object().unwrap());
        assert_eq!(
            label(json!({"kind": "Route", "metadata": {"name": "a"}})),
            "Route/a"
        );
        assert_eq!(
            label(json!({"kind": "Pod", "metadata": {"generateName": "job-"}})),
            "Pod/job-*"
        );
        assert_eq!(label(json!({"kind": "Pod"})), "Pod without a name");
        assert_eq!(label(json!({})), "object without a name");
    }
}
