//! Admission decisions, as pure functions of the request (and of what the server looked up).
//!
//! The requester of a ProjectRequest, Project or TemplateInstance is what lets the operator act
//! for the right user, so only Slipway may write it: the mutating hook stamps
//! `slipway.dev/requester` (and a TemplateInstance's `spec.requester`) from the authenticated
//! user of the request and refuses any value a client set itself; the validating hook checks that
//! the stamp is the user's, and that a ProjectRequest does not name an existing namespace.
//!
//! A TemplateInstance's stamp also gets a proof (`slipway.dev/requester-proof`, an HMAC under the
//! requester keys only this server and the operator can read, see `slipway_crds::requester`): the
//! operator acts as the requester only when it verifies the proof itself, so a stamp written
//! while this hook was not registered is never acted on.

use std::path::PathBuf;
use std::sync::OnceLock;

use json_patch::{AddOperation, Patch, PatchOperation};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use serde_json::{Value, json};
use slipway_crds::project::annotations::REQUESTER;
use slipway_crds::requester::{PROOF_ANNOTATION, Stamp, parse_keys, sign};

/// The file of requester keys (`--requester-keys`), read at each stamp so a rotated key is used
/// at once.
static REQUESTER_KEYS: OnceLock<PathBuf> = OnceLock::new();

/// Signs TemplateInstance stamps with the first key of `path` from now on (once per process).
pub fn use_requester_keys(path: PathBuf) {
    let _ = REQUESTER_KEYS.set(path);
}

/// The requester keys now; none (stamps without proof, which the operator refuses) when no file
/// is configured or it cannot be read.
fn requester_keys() -> Vec<Vec<u8>> {
    let Some(path) = REQUESTER_KEYS.get() else {
        return Vec::new();
    };
    match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|t| parse_keys(&t))
    {
        Ok(keys) => keys,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "requester keys; stamping without proof");
            Vec::new()
        }
    }
}

/// The kinds whose requester Slipway stamps.
pub const STAMPED_KINDS: [&str; 3] = ["ProjectRequest", "Project", "TemplateInstance"];

fn is_stamped_kind(request: &AdmissionRequest<DynamicObject>) -> bool {
    request.kind.group == slipway_crds::GROUP && STAMPED_KINDS.contains(&request.kind.kind.as_str())
}

fn requester_of(object: Option<&DynamicObject>) -> Option<String> {
    object
        .and_then(|o| o.metadata.annotations.as_ref())
        .and_then(|a| a.get(REQUESTER))
        .cloned()
}

/// The mutating decision with the configured requester keys (see [`mutate_with`]).
pub fn mutate(request: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
    if !is_stamped_kind(request) {
        return AdmissionResponse::from(request);
    }
    mutate_with(request, &requester_keys())
}

/// The mutating decision: stamp the requester on creation (a TemplateInstance's with a proof
/// under the first of `keys`), refuse client-set values and changes.
pub fn mutate_with(request: &AdmissionRequest<DynamicObject>, keys: &[Vec<u8>]) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    if !is_stamped_kind(request) {
        return response;
    }
    match request.operation {
        Operation::Create => match request.object.as_ref() {
            Some(object) => stamp(request, object, keys, response),
            None => response,
        },
        Operation::Update => match changed_stamp(request) {
            Some(message) => response.deny(message),
            None => response,
        },
        _ => response,
    }
}

/// A creation: refused when the client gave a stamp itself or there is no user to stamp; else
/// `response` patched with the stamp.
fn stamp(
    request: &AdmissionRequest<DynamicObject>,
    object: &DynamicObject,
    keys: &[Vec<u8>],
    response: AdmissionResponse,
) -> AdmissionResponse {
    if let Some(message) = client_stamp(request, object) {
        return response.deny(message);
    }
    let operations = match stamp_operations(request, object, keys) {
        Ok(operations) => operations,
        Err(message) => return response.deny(message),
    };
    match response.with_patch(Patch(operations)) {
        Ok(response) => response,
        Err(e) => AdmissionResponse::from(request).deny(format!("stamping the requester: {e}")),
    }
}

/// Why the object may not be created as sent: it carries a proof, a requester annotation or (a
/// TemplateInstance) a `spec.requester` of its own.
fn client_stamp(request: &AdmissionRequest<DynamicObject>, object: &DynamicObject) -> Option<String> {
    if let Some(value) = annotation(Some(object), PROOF_ANNOTATION) {
        return Some(format!(
            "{PROOF_ANNOTATION} is set by Slipway and cannot be given (found {value:?}); remove it"
        ));
    }
    if let Some(value) = requester_of(Some(object)) {
        return Some(format!(
            "{REQUESTER} is set by Slipway from your identity and cannot be given (found {value:?}); remove it"
        ));
    }
    if request.kind.kind == "TemplateInstance" && !object.data["spec"]["requester"].is_null() {
        return Some(
            "spec.requester is set by Slipway from your identity and cannot be given; remove it".to_string(),
        );
    }
    None
}

/// The patch that stamps the request's user: the requester annotation and, for a
/// TemplateInstance, `spec.requester` and the proof; Err without a user or (the proof) a name.
fn stamp_operations(
    request: &AdmissionRequest<DynamicObject>,
    object: &DynamicObject,
    keys: &[Vec<u8>],
) -> Result<Vec<PatchOperation>, String> {
    let username = request.user_info.username.clone().unwrap_or_default();
    if username.is_empty() {
        return Err("the request has no authenticated user to record as the requester".to_string());
    }
    let mut operations = Vec::new();
    if object.metadata.annotations.is_none() {
        operations.push(add("/metadata/annotations", json!({})));
    }
    operations.push(add(
        &format!("/metadata/annotations/{}", escape(REQUESTER)),
        json!(username),
    ));
    if request.kind.kind == "TemplateInstance" {
        operations.push(add("/spec/requester", template_requester(request)));
    }
    if let Some(proof) = proof(request, keys)? {
        operations.push(add(
            &format!("/metadata/annotations/{}", escape(PROOF_ANNOTATION)),
            json!(proof),
        ));
    }
    Ok(operations)
}

/// A TemplateInstance's `spec.requester`: the request's user, with its uid, groups and extra
/// when it has them.
fn template_requester(request: &AdmissionRequest<DynamicObject>) -> Value {
    let user = &request.user_info;
    let mut requester = json!({"username": user.username.clone().unwrap_or_default()});
    if let Some(uid) = &user.uid {
        requester["uid"] = json!(uid);
    }
    if let Some(groups) = &user.groups {
        requester["groups"] = json!(groups);
    }
    if let Some(extra) = &user.extra {
        requester["extra"] = json!(extra);
    }
    requester
}

/// Why an update may not be made: it changes the requester or its proof.
fn changed_stamp(request: &AdmissionRequest<DynamicObject>) -> Option<String> {
    let old = requester_of(request.old_object.as_ref());
    let new = requester_of(request.object.as_ref());
    let old_proof = annotation(request.old_object.as_ref(), PROOF_ANNOTATION);
    if old != new {
        Some(format!("{REQUESTER} cannot change (it was {old:?})"))
    } else if old_proof != annotation(request.object.as_ref(), PROOF_ANNOTATION) {
        Some(format!("{PROOF_ANNOTATION} cannot change"))
    } else {
        None
    }
}

fn annotation(object: Option<&DynamicObject>, key: &str) -> Option<String> {
    object
        .and_then(|o| o.metadata.annotations.as_ref())
        .and_then(|a| a.get(key))
        .cloned()
}

/// The proof of the stamp under the first key; None without keys. A TemplateInstance's binds
/// its namespace and name to the whole user (name, uid, groups: the operator acts as them); a
/// ProjectRequest's binds its name to the user's name, the one identity the operator acts on for
/// it (the subject of the project's admin binding).
fn proof(request: &AdmissionRequest<DynamicObject>, keys: &[Vec<u8>]) -> Result<Option<String>, String> {
    let Some(key) = keys.first() else {
        return Ok(None);
    };
    if request.name.is_empty() {
        return Err(format!(
            "a {} needs a name (generateName is not supported: the requester's proof is bound to the name)",
            request.kind.kind
        ));
    }
    let user = &request.user_info;
    let username = user.username.as_deref().unwrap_or_default();
    if request.kind.kind == "ProjectRequest" {
        return Ok(Some(sign(key, &Stamp::project_request(&request.name, username))));
    }
    let groups = user.groups.clone().unwrap_or_default();
    let stamp = Stamp {
        namespace: request.namespace.as_deref().unwrap_or_default(),
        name: &request.name,
        username,
        uid: user.uid.as_deref().unwrap_or_default(),
        groups: &groups,
    };
    Ok(Some(sign(key, &stamp)))
}

/// The answer of a hook that fails open: `request` admitted with `operations` applied, or
/// unchanged when there are none or the patch cannot be encoded (logged under `hook`).
pub fn patched_or_unchanged(
    request: &AdmissionRequest<DynamicObject>,
    operations: Vec<json_patch::PatchOperation>,
    hook: &str,
) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    if operations.is_empty() {
        return response;
    }
    match response.with_patch(json_patch::Patch(operations)) {
        Ok(patched) => patched,
        Err(e) => {
            tracing::warn!(error = %e, hook, "encoding the patch; admitted unchanged");
            AdmissionResponse::from(request)
        }
    }
}

/// What the validating decision needs besides the request.
#[derive(Debug, Default, Clone, Copy)]
pub struct Lookups {
    /// For a ProjectRequest: whether a namespace of its name exists.
    pub namespace_exists: bool,
}

/// The validating decision: the stamp is the user's own; a ProjectRequest names a free, allowed
/// namespace.
pub fn validate(request: &AdmissionRequest<DynamicObject>, lookups: Lookups) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    if !is_stamped_kind(request) || request.operation != Operation::Create {
        return response;
    }
    let username = request.user_info.username.clone().unwrap_or_default();
    let stamped = requester_of(request.object.as_ref());
    if stamped.as_deref() != Some(username.as_str()) {
        return response.deny(format!(
            "{REQUESTER} must be the requesting user {username:?}, found {stamped:?}"
        ));
    }
    if request.kind.kind == "ProjectRequest" {
        if let Err(message) = project_name_allowed(&request.name) {
            return response.deny(message);
        }
        if lookups.namespace_exists {
            return response.deny(format!(
                "namespace {} already exists; choose another project name",
                request.name
            ));
        }
    }
    response
}

/// Project names are DNS labels outside the reserved prefixes (the CRD says the same; this gives
/// the same answer to clients whose request never reaches schema validation's wording).
pub fn project_name_allowed(name: &str) -> Result<(), String> {
    if !slipway_client::names::is_dns_label(name) {
        return Err(format!(
            "project name {name:?} must be a DNS label: lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit"
        ));
    }
    if name == "default"
        || ["kube-", "openshift-", "slipway-"]
            .iter()
            .any(|p| name.starts_with(p))
    {
        return Err(format!(
            "project name {name:?} is reserved ('default', 'kube-*', 'openshift-*' and 'slipway-*' are)"
        ));
    }
    Ok(())
}

fn add(path: &str, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: path.parse().unwrap_or_default(),
        value,
    })
}

/// Escapes a key for a JSON pointer (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::admission::AdmissionReview;

    fn review(
        kind: &str,
        operation: &str,
        object: Value,
        old: Option<Value>,
        user: &str,
    ) -> AdmissionRequest<DynamicObject> {
        let review: AdmissionReview<DynamicObject> = serde_json::from_value(json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "u-1",
                "kind": {"group": "slipway.dev", "version": "v1alpha1", "kind": kind},
                "resource": {"group": "slipway.dev", "version": "v1alpha1", "resource": "x"},
                "name": object["metadata"]["name"],
                "operation": operation,
                "userInfo": {"username": user, "uid": "uid-7", "groups": ["team-a", "system:authenticated"]},
                "object": object,
                "oldObject": old,
                "dryRun": false
            }
        }))
        .unwrap();
        review.try_into().unwrap()
    }

    fn patch_of(response: &AdmissionResponse) -> Value {
        serde_json::from_slice(response.patch.as_ref().expect("a patch")).unwrap()
    }

    #[test]
    fn a_new_project_request_is_stamped_with_the_user() {
        let request = review(
            "ProjectRequest",
            "CREATE",
            json!({"metadata": {"name": "team-a"}}),
            None,
            "alice",
        );
        let response = mutate(&request);
        assert!(response.allowed);
        assert_eq!(
            patch_of(&response),
            json!([
                {"op": "add", "path": "/metadata/annotations", "value": {}},
                {"op": "add", "path": "/metadata/annotations/slipway.dev~1requester", "value": "alice"}
            ])
        );
    }

    #[test]
    fn a_template_instance_gets_the_whole_user() {
        let object = json!({"metadata": {"name": "t", "annotations": {"a": "b"}}, "spec": {"templateRef": {"name": "x"}}});
        let response = mutate(&review("TemplateInstance", "CREATE", object, None, "alice"));
        assert!(response.allowed);
        let patch = patch_of(&response);
        assert_eq!(patch[0]["path"], "/metadata/annotations/slipway.dev~1requester");
        assert_eq!(patch[1]["path"], "/spec/requester");
        assert_eq!(patch[1]["value"]["username"], "alice");
        assert_eq!(
            patch[1]["value"]["groups"],
            json!(["team-a", "system:authenticated"])
        );
    }

    #[test]
    fn a_template_instance_stamp_carries_a_proof_the_operator_can_verify() {
        let key = b"0123456789abcdef0123456789abcdef".to_vec();
        let object =
            json!({"metadata": {"name": "t", "namespace": "ns"}, "spec": {"templateRef": {"name": "x"}}});
        let mut request = review("TemplateInstance", "CREATE", object, None, "alice");
        request.namespace = Some("ns".into());
        let response = mutate_with(&request, std::slice::from_ref(&key));
        assert!(response.allowed);
        let patch = patch_of(&response);
        let proof = patch
            .as_array()
            .unwrap()
            .iter()
            .find(|op| op["path"] == "/metadata/annotations/slipway.dev~1requester-proof")
            .expect("a proof")["value"]
            .as_str()
            .unwrap()
            .to_string();
        let groups = vec!["team-a".to_string(), "system:authenticated".to_string()];
        let stamp = Stamp {
            namespace: "ns",
            name: "t",
            username: "alice",
            uid: "uid-7",
            groups: &groups,
        };
        assert!(slipway_crds::requester::verify(
            std::slice::from_ref(&key),
            &stamp,
            &proof
        ));
        // Without keys: stamped, without proof (the operator refuses it).
        let response = mutate_with(&request, &[]);
        assert!(response.allowed);
        assert!(!patch_of(&response).to_string().contains("requester-proof"));
        // A client-given proof is refused; so is a nameless (generateName) instance.
        let forged = json!({"metadata": {"name": "t", "annotations": {"slipway.dev/requester-proof": "v1:00"}}, "spec": {}});
        assert!(
            !mutate_with(
                &review("TemplateInstance", "CREATE", forged, None, "alice"),
                std::slice::from_ref(&key)
            )
            .allowed
        );
        let nameless = json!({"metadata": {"name": "", "generateName": "t-"}, "spec": {}});
        let response = mutate_with(
            &review("TemplateInstance", "CREATE", nameless, None, "alice"),
            &[key],
        );
        assert!(!response.allowed);
        assert!(
            response.result.message.contains("generateName"),
            "{}",
            response.result.message
        );
    }

    #[test]
    fn a_requester_set_by_the_client_is_refused() {
        let object = json!({"metadata": {"name": "team-a", "annotations": {"slipway.dev/requester": "bob"}}});
        let response = mutate(&review("ProjectRequest", "CREATE", object, None, "alice"));
        assert!(!response.allowed);
        assert!(
            response
                .result
                .message
                .contains("cannot be given (found \"bob\")"),
            "{}",
            response.result.message
        );
        let object = json!({"metadata": {"name": "t"}, "spec": {"requester": {"username": "bob"}}});
        let response = mutate(&review("TemplateInstance", "CREATE", object, None, "alice"));
        assert!(!response.allowed);
        assert!(
            response
                .result
                .message
                .starts_with("spec.requester is set by Slipway")
        );
    }

    #[test]
    fn the_requester_cannot_change_or_vanish() {
        let old = json!({"metadata": {"name": "p", "annotations": {"slipway.dev/requester": "alice"}}});
        let changed = json!({"metadata": {"name": "p", "annotations": {"slipway.dev/requester": "bob"}}});
        assert!(!mutate(&review("Project", "UPDATE", changed, Some(old.clone()), "bob")).allowed);
        let removed = json!({"metadata": {"name": "p"}});
        assert!(!mutate(&review("Project", "UPDATE", removed, Some(old.clone()), "bob")).allowed);
        let labelled = json!({"metadata": {"name": "p", "labels": {"x": "y"}, "annotations": {"slipway.dev/requester": "alice"}}});
        assert!(mutate(&review("Project", "UPDATE", labelled, Some(old), "operator")).allowed);
    }

    #[test]
    fn validation_checks_the_stamp_the_name_and_the_namespace() {
        let stamped = |name: &str, who: &str| json!({"metadata": {"name": name, "annotations": {"slipway.dev/requester": who}}});
        let ok = review(
            "ProjectRequest",
            "CREATE",
            stamped("team-a", "alice"),
            None,
            "alice",
        );
        assert!(validate(&ok, Lookups::default()).allowed);
        let taken = validate(
            &ok,
            Lookups {
                namespace_exists: true,
            },
        );
        assert_eq!(
            taken.result.message,
            "namespace team-a already exists; choose another project name"
        );
        let forged = review(
            "ProjectRequest",
            "CREATE",
            stamped("team-a", "bob"),
            None,
            "alice",
        );
        assert!(!validate(&forged, Lookups::default()).allowed);
        let reserved = review(
            "ProjectRequest",
            "CREATE",
            stamped("kube-team", "alice"),
            None,
            "alice",
        );
        assert!(
            validate(&reserved, Lookups::default())
                .result
                .message
                .contains("is reserved")
        );
    }

    #[test]
    fn project_names() {
        assert!(project_name_allowed("team-a").is_ok());
        for bad in [
            "",
            "Team",
            "team_a",
            "-a",
            "a-",
            &"a".repeat(64),
            "default",
            "kube-x",
            "openshift-x",
            "slipway-x",
        ] {
            assert!(project_name_allowed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn other_kinds_pass_untouched() {
        let mut request = review(
            "ProjectRequest",
            "CREATE",
            json!({"metadata": {"name": "x"}}),
            None,
            "alice",
        );
        request.kind.kind = "BuildConfig".into();
        let response = mutate(&request);
        assert!(response.allowed);
        assert!(response.patch.is_none());
    }
}
