//! Image triggers of plain Kubernetes workloads: Deployments, StatefulSets, DaemonSets and
//! CronJobs that carry OpenShift's `image.openshift.io/triggers` annotation (or the same JSON
//! under `slipway.dev/triggers`) get the container image set to the digest reference of the tag
//! they follow whenever the tag moves. Only the named container's `image` is patched (a strategic
//! merge patch keyed by container name), so the owner's own apply keeps working.
//!
//! A trigger may follow a stream of another namespace (the catalog's `openshift/postgresql:12-el8`,
//! as OpenShift's templates do) when the workload's pods may pull from there: the operator asks,
//! with a SubjectAccessReview as the pod template's service account (`default` unless it names
//! one), for `get imagestreams/layers` in that namespace — never with its own rights — and a
//! refusal is a Warning Event naming the role to bind, asked again every
//! [`access::REFUSED_RETRY`].
//!
//! A malformed annotation never stops the controller: it gives a Warning Event with a message
//! that says what is wrong, once per distinct problem.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use slipway_crds::ImageStream;

use super::Settings;
use crate::access::{self, ImageAccess};
use crate::{Context, Error};

/// OpenShift's annotation.
pub const OPENSHIFT_TRIGGERS: &str = "image.openshift.io/triggers";
/// The same, under Slipway's prefix.
pub const SLIPWAY_TRIGGERS: &str = "slipway.dev/triggers";
/// More triggers than this on one object is refused (each costs a lookup).
pub const MAX_TRIGGERS: usize = 64;

/// The kinds that take trigger annotations, and where their pod spec is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    CronJob,
}

impl WorkloadKind {
    /// The path from the object to its pod spec.
    pub fn pod_spec_path(self) -> &'static [&'static str] {
        match self {
            Self::CronJob => &["spec", "jobTemplate", "spec", "template", "spec"],
            _ => &["spec", "template", "spec"],
        }
    }
}

/// Which container a trigger sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerSelector {
    Name(String),
    Index(usize),
}

/// One parsed trigger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    /// The stream's namespace when it is not the workload's own.
    pub namespace: Option<String>,
    pub stream: String,
    pub tag: String,
    /// `containers` or `initContainers`.
    pub list: &'static str,
    pub container: ContainerSelector,
    pub paused: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTrigger {
    from: RawFrom,
    field_path: String,
    #[serde(default)]
    paused: bool,
}

#[derive(Deserialize)]
struct RawFrom {
    #[serde(default)]
    kind: String,
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

/// Parses the trigger annotations of an object of `kind` in `namespace` (pure). An error says
/// which annotation is wrong and how.
pub fn parse_triggers(
    kind: WorkloadKind,
    namespace: &str,
    annotations: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<Trigger>, String> {
    let mut triggers = Vec::new();
    for key in [OPENSHIFT_TRIGGERS, SLIPWAY_TRIGGERS] {
        let Some(text) = annotations.get(key) else {
            continue;
        };
        let raw: Vec<RawTrigger> = serde_json::from_str(text).map_err(|e| {
            format!(
                "annotation {key} is not a JSON list of triggers ({e}); expected e.g. \
                 [{{\"from\":{{\"kind\":\"ImageStreamTag\",\"name\":\"app:latest\"}},\
                 \"fieldPath\":\"spec.template.spec.containers[?(@.name==\\\"web\\\")].image\"}}]"
            )
        })?;
        for (i, t) in raw.into_iter().enumerate() {
            let at = format!("annotation {key}, trigger {i}");
            if t.from.kind != "ImageStreamTag" {
                return Err(format!(
                    "{at}: from.kind is {:?}; only ImageStreamTag is supported",
                    truncate(&t.from.kind)
                ));
            }
            let other = t
                .from
                .namespace
                .as_deref()
                .filter(|ns| !ns.is_empty() && *ns != namespace);
            if let Some(ns) = other
                && !slipway_client::names::is_dns_label(ns)
            {
                return Err(format!(
                    "{at}: from.namespace {:?} is not a namespace name",
                    truncate(ns)
                ));
            }
            let Ok((stream, tag)) = slipway_client::names::parse_stream_tag(&t.from.name) else {
                return Err(format!(
                    "{at}: from.name {:?} is not <imagestream>:<tag>",
                    truncate(&t.from.name)
                ));
            };
            let (list, container) =
                parse_field_path(kind, &t.field_path).map_err(|e| format!("{at}: {e}"))?;
            triggers.push(Trigger {
                namespace: other.map(str::to_owned),
                stream: stream.to_string(),
                tag: tag.to_string(),
                list,
                container,
                paused: t.paused,
            });
            if triggers.len() > MAX_TRIGGERS {
                return Err(format!("more than {MAX_TRIGGERS} image triggers on one object"));
            }
        }
    }
    Ok(triggers)
}

/// Parses `<pod spec path>.containers[?(@.name=="web")].image` (or `initContainers`, or an index
/// `[0]`) for `kind` (pure).
pub fn parse_field_path(kind: WorkloadKind, path: &str) -> Result<(&'static str, ContainerSelector), String> {
    let expected = format!(
        "{}.containers[?(@.name==\"NAME\")].image",
        kind.pod_spec_path().join(".")
    );
    let wrong = || {
        format!(
            "fieldPath {:?} is not supported for a {kind:?}; expected {expected}",
            truncate(path)
        )
    };
    let path = path.trim();
    let rest = path
        .strip_prefix(kind.pod_spec_path().join(".").as_str())
        .and_then(|r| r.strip_prefix('.'))
        .ok_or_else(wrong)?;
    let (list, rest) = if let Some(r) = rest.strip_prefix("initContainers[") {
        ("initContainers", r)
    } else if let Some(r) = rest.strip_prefix("containers[") {
        ("containers", r)
    } else {
        return Err(wrong());
    };
    let (selector, tail) = rest.split_once(']').ok_or_else(wrong)?;
    if tail != ".image" && !tail.is_empty() {
        return Err(wrong());
    }
    if let Ok(index) = selector.parse::<usize>() {
        return Ok((list, ContainerSelector::Index(index)));
    }
    let name = selector
        .strip_prefix("?(@.name")
        .and_then(|s| s.strip_suffix(')'))
        .map(|s| s.strip_prefix("==").or_else(|| s.strip_prefix('=')).unwrap_or(s))
        .and_then(|quoted| {
            quoted
                .strip_prefix('"')
                .and_then(|q| q.strip_suffix('"'))
                .or_else(|| quoted.strip_prefix('\'').and_then(|q| q.strip_suffix('\'')))
        })
        .ok_or_else(wrong)?;
    if !slipway_client::names::is_dns_label(name) {
        return Err(format!(
            "fieldPath names the container {:?}, which is not a valid container name",
            truncate(name)
        ));
    }
    Ok((list, ContainerSelector::Name(name.to_string())))
}

/// The strategic merge patch that sets the triggered images of `object` (pure); None when every
/// image already is what its tag says (or no tag has an image yet, or it may not be pulled).
/// `latest(trigger)` gives the newest digest reference of the tag it follows.
pub fn image_patch(
    kind: WorkloadKind,
    object: &Value,
    triggers: &[Trigger],
    latest: impl Fn(&Trigger) -> Option<String>,
) -> Result<Option<Value>, String> {
    let pod_spec = pod_spec(kind, object);
    // list -> (container name -> image), in trigger order.
    let mut changes: Vec<(&'static str, String, String)> = Vec::new();
    for trigger in triggers.iter().filter(|t| !t.paused) {
        let Some(image) = latest(trigger) else {
            continue;
        };
        let containers = pod_spec[trigger.list]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let container = match &trigger.container {
            ContainerSelector::Name(name) => containers.iter().find(|c| c["name"] == name.as_str()),
            ContainerSelector::Index(i) => containers.get(*i),
        };
        let Some(container) = container else {
            return Err(format!(
                "the trigger for {}:{} names container {} of {}, which does not exist",
                trigger.stream,
                trigger.tag,
                match &trigger.container {
                    ContainerSelector::Name(n) => format!("{n:?}"),
                    ContainerSelector::Index(i) => format!("[{i}]"),
                },
                trigger.list
            ));
        };
        let name = container["name"].as_str().unwrap_or_default().to_string();
        if container["image"].as_str() != Some(image.as_str())
            && !changes.iter().any(|(l, n, _)| *l == trigger.list && *n == name)
        {
            changes.push((trigger.list, name, image));
        }
    }
    if changes.is_empty() {
        return Ok(None);
    }
    let mut spec = serde_json::Map::new();
    for (list, name, image) in changes {
        let entry = spec.entry(list).or_insert_with(|| json!([]));
        if let Some(items) = entry.as_array_mut() {
            items.push(json!({"name": name, "image": image}));
        }
    }
    let mut patch = Value::Object(spec);
    for key in kind.pod_spec_path().iter().rev() {
        patch = json!({ *key: patch });
    }
    Ok(Some(patch))
}

/// A user's text in a message: at most 100 characters.
fn truncate(s: &str) -> String {
    let mut t: String = s.chars().take(100).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    t
}

/// Whether any trigger annotation of `object` follows `stream`.
fn follows(object: &impl Resource, stream: &str) -> bool {
    [OPENSHIFT_TRIGGERS, SLIPWAY_TRIGGERS].iter().any(|key| {
        object
            .meta()
            .annotations
            .as_ref()
            .and_then(|a| a.get(*key))
            .is_some_and(|text| text.contains(stream))
    })
}

impl crate::error::Shared for State {
    fn context(&self) -> &Context {
        &self.ctx
    }
}

struct State {
    ctx: Context,
    /// The last problem reported per object uid, so a problem is reported once.
    reported: Mutex<HashMap<String, String>>,
}

/// Runs the trigger controllers of the four workload kinds until shutdown.
pub async fn run(ctx: Context, settings: Settings) {
    let state = Arc::new(State {
        ctx,
        reported: Mutex::default(),
    });
    futures::join!(
        run_kind::<Deployment>(state.clone(), &settings, WorkloadKind::Deployment),
        run_kind::<StatefulSet>(state.clone(), &settings, WorkloadKind::StatefulSet),
        run_kind::<DaemonSet>(state.clone(), &settings, WorkloadKind::DaemonSet),
        run_kind::<CronJob>(state.clone(), &settings, WorkloadKind::CronJob),
    );
}

async fn run_kind<K>(state: Arc<State>, settings: &Settings, kind: WorkloadKind)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + serde::Serialize
        + Send
        + Sync
        + 'static,
{
    let client = state.ctx.client.clone();
    let (workloads, streams) = match &settings.namespace {
        Some(ns) => (
            Api::<K>::namespaced(client.clone(), ns),
            Api::<ImageStream>::namespaced(client, ns),
        ),
        None => (Api::<K>::all(client.clone()), Api::<ImageStream>::all(client)),
    };
    let controller =
        crate::cache::controller(&state.ctx, "image-trigger", workloads, settings.watcher_config());
    let store = controller.store();
    controller
        .watches_stream(
            crate::cache::watch(streams, Default::default()).touched_objects(),
            move |stream: ImageStream| {
                let namespace = stream.namespace();
                let name = stream.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|w| w.namespace() == namespace && follows(w.as_ref(), &name))
                    .map(|w| ObjectRef::from_obj(w.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .run(
            crate::error::tracked("image-trigger", move |object, state| {
                reconcile(object, state, kind)
            }),
            crate::error::policy("image-trigger"),
            state,
        )
        .for_each(|_| async {})
        .await;
}

async fn reconcile<K>(object: Arc<K>, state: Arc<State>, kind: WorkloadKind) -> Result<Action, Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + serde::Serialize,
{
    let _timer = state.ctx.metrics.reconcile("image-trigger", object.as_ref());
    let ctx = &state.ctx;
    let uid = object.uid().unwrap_or_default();
    let namespace = object.namespace().unwrap_or_default();
    let annotations = object.meta().annotations.clone().unwrap_or_default();
    if !annotations.contains_key(OPENSHIFT_TRIGGERS) && !annotations.contains_key(SLIPWAY_TRIGGERS) {
        return Ok(Action::await_change());
    }

    // Observe.
    let value = serde_json::to_value(object.as_ref()).map_err(|e| Error::Kube(kube::Error::SerdeError(e)))?;
    let mut refused = Vec::new();
    let planned = match parse_triggers(kind, &namespace, &annotations) {
        Ok(triggers) => {
            let account = access::ServiceAccount::of_pods(
                &namespace,
                pod_spec(kind, &value)["serviceAccountName"].as_str(),
            );
            let mut allowed: HashMap<String, bool> = HashMap::new();
            for other in triggers
                .iter()
                .filter(|t| !t.paused)
                .filter_map(|t| t.namespace.as_deref())
            {
                if allowed.contains_key(other) {
                    continue;
                }
                let answer = access::check(&ctx.client, &account, other, ImageAccess::Pull).await?;
                if let Err(refusal) = &answer {
                    refused.push(refusal.clone());
                }
                allowed.insert(other.to_owned(), answer.is_ok());
            }
            let latest = latest_images(ctx, &namespace, &triggers, &allowed).await?;
            // Decide.
            image_patch(kind, &value, &triggers, |t| {
                latest.get(&key(&namespace, t)).cloned().flatten()
            })
        }
        Err(message) => Err(message),
    };

    // Act.
    let reference = object.object_ref(&());
    if !refused.is_empty() {
        report_invalid(
            &state,
            object.as_ref(),
            &format!("image trigger refused: {}", refused.join("; ")),
        )
        .await;
    }
    match planned {
        Err(message) => report_invalid(&state, object.as_ref(), &message).await,
        Ok(patch) => {
            if refused.is_empty()
                && let Ok(mut r) = state.reported.lock()
            {
                r.remove(&uid);
            }
            if let Some(patch) = patch {
                let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
                api.patch(
                    &object.name_any(),
                    &PatchParams::default(),
                    &Patch::Strategic(&patch),
                )
                .await?;
                ctx.publish(
                    &reference,
                    EventType::Normal,
                    "Trigger",
                    "ImageTriggered",
                    &format!("image set by trigger: {patch}"),
                )
                .await;
            }
        }
    }
    // RBAC is not watched: a refusal is asked about again.
    Ok(if refused.is_empty() {
        Action::await_change()
    } else {
        Action::requeue(access::REFUSED_RETRY)
    })
}

/// The pod spec of a workload of `kind` (Null when the object has none).
fn pod_spec(kind: WorkloadKind, object: &Value) -> &Value {
    kind.pod_spec_path().iter().fold(object, |v, key| &v[*key])
}

/// `namespace/stream:tag` of what a trigger follows, for the lookup of its image.
fn key(own: &str, t: &Trigger) -> (String, String, String) {
    (
        t.namespace.clone().unwrap_or_else(|| own.to_owned()),
        t.stream.clone(),
        t.tag.clone(),
    )
}

/// The image each followed `stream:tag` of the triggers points at now; paused triggers, and those
/// of namespaces `allowed` does not allow, left out.
async fn latest_images(
    ctx: &Context,
    namespace: &str,
    triggers: &[Trigger],
    allowed: &HashMap<String, bool>,
) -> Result<HashMap<(String, String, String), Option<String>>, Error> {
    let mut latest: HashMap<(String, String, String), Option<String>> = HashMap::new();
    for t in triggers.iter().filter(|t| !t.paused) {
        if t.namespace
            .as_ref()
            .is_some_and(|ns| !allowed.get(ns).copied().unwrap_or(false))
        {
            continue;
        }
        let key = key(namespace, t);
        if latest.contains_key(&key) {
            continue;
        }
        let streams: Api<ImageStream> = Api::namespaced(ctx.client.clone(), &key.0);
        let image = streams
            .get_opt(&t.stream)
            .await?
            .and_then(|s| s.status)
            .and_then(|s| s.latest(&t.tag).map(|e| e.docker_image_reference.clone()));
        latest.insert(key, image);
    }
    Ok(latest)
}

/// Tells of an invalid trigger once per object and message (a Warning Event).
async fn report_invalid<K: Resource<DynamicType = ()>>(state: &State, object: &K, message: &str) {
    let uid = object.meta().uid.clone().unwrap_or_default();
    let first = state
        .reported
        .lock()
        .map(|mut r| r.insert(uid.clone(), message.to_string()).as_deref() != Some(message))
        .unwrap_or(true);
    if first {
        tracing::info!(object = object.meta().name.as_deref().unwrap_or_default(), %message, "invalid image trigger");
        state
            .ctx
            .publish(
                &object.object_ref(&()),
                EventType::Warning,
                "Trigger",
                "InvalidImageTrigger",
                message,
            )
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn annotations(key: &str, value: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(key.to_string(), value.to_string())])
    }

    const WEB: &str = r#"[{"from":{"kind":"ImageStreamTag","name":"app:latest"},"fieldPath":"spec.template.spec.containers[?(@.name==\"web\")].image","paused":false}]"#;

    #[test]
    fn openshift_annotations_parse() {
        let t = parse_triggers(
            WorkloadKind::Deployment,
            "ns",
            &annotations(OPENSHIFT_TRIGGERS, WEB),
        )
        .unwrap();
        assert_eq!(
            t,
            vec![Trigger {
                namespace: None,
                stream: "app".into(),
                tag: "latest".into(),
                list: "containers",
                container: ContainerSelector::Name("web".into()),
                paused: false
            }]
        );
        let same = parse_triggers(
            WorkloadKind::StatefulSet,
            "ns",
            &annotations(SLIPWAY_TRIGGERS, WEB),
        )
        .unwrap();
        assert_eq!(same, t);
        let cron = r#"[{"from":{"kind":"ImageStreamTag","name":"job:v2","namespace":"ns"},"fieldPath":"spec.jobTemplate.spec.template.spec.initContainers[0].image","paused":true}]"#;
        let t = parse_triggers(
            WorkloadKind::CronJob,
            "ns",
            &annotations(OPENSHIFT_TRIGGERS, cron),
        )
        .unwrap();
        assert_eq!(t[0].list, "initContainers");
        assert_eq!(t[0].container, ContainerSelector::Index(0));
        assert!(t[0].paused);
        for quoted in [
            r#"[?(@.name="web")]"#,
            r#"[?(@.name=='web')]"#,
            r#"[?(@.name='web')]"#,
        ] {
            let path = format!("spec.template.spec.containers{quoted}.image");
            assert_eq!(
                parse_field_path(WorkloadKind::DaemonSet, &path).unwrap().1,
                ContainerSelector::Name("web".into())
            );
        }
        assert!(
            parse_triggers(WorkloadKind::Deployment, "ns", &BTreeMap::new())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_trigger_may_name_another_namespace_checked_as_the_pods_account() {
        let catalog = r#"[{"from":{"kind":"ImageStreamTag","name":"postgresql:12-el8","namespace":"openshift"},"fieldPath":"spec.template.spec.containers[0].image"}]"#;
        let t = parse_triggers(
            WorkloadKind::Deployment,
            "ns",
            &annotations(OPENSHIFT_TRIGGERS, catalog),
        )
        .unwrap();
        assert_eq!(t[0].namespace.as_deref(), Some("openshift"));
        assert_eq!(
            key("ns", &t[0]),
            ("openshift".into(), "postgresql".into(), "12-el8".into())
        );
        // Its own namespace, named, is no other namespace.
        let own = catalog.replace("openshift", "ns");
        let t = parse_triggers(
            WorkloadKind::Deployment,
            "ns",
            &annotations(OPENSHIFT_TRIGGERS, &own),
        )
        .unwrap();
        assert_eq!(t[0].namespace, None);
        // The pods' account: the template's, `default` when it names none.
        let with = json!({"spec": {"template": {"spec": {"serviceAccountName": "db"}}}});
        let account = |o: &Value| {
            access::ServiceAccount::of_pods(
                "ns",
                pod_spec(WorkloadKind::Deployment, o)["serviceAccountName"].as_str(),
            )
        };
        assert_eq!(account(&with).user(), "system:serviceaccount:ns:db");
        assert_eq!(account(&json!({})).user(), "system:serviceaccount:ns:default");
    }

    #[test]
    fn hostile_and_malformed_annotations_give_messages() {
        let cases: Vec<(String, &str)> = vec![
            ("not json".into(), "not a JSON list"),
            ("{}".into(), "not a JSON list"),
            ("[{}]".into(), "not a JSON list"),
            (r#"[{"from":{"kind":"DockerImage","name":"x"},"fieldPath":"spec.template.spec.containers[0].image"}]"#.into(), "only ImageStreamTag"),
            (r#"[{"from":{"kind":"ImageStreamTag","name":"a:b","namespace":"Other/x"},"fieldPath":"spec.template.spec.containers[0].image"}]"#.into(), "not a namespace name"),
            (r#"[{"from":{"kind":"ImageStreamTag","name":"../a:b"},"fieldPath":"spec.template.spec.containers[0].image"}]"#.into(), "not <imagestream>:<tag>"),
            (r#"[{"from":{"kind":"ImageStreamTag","name":"a:b c"},"fieldPath":"spec.template.spec.containers[0].image"}]"#.into(), "not <imagestream>:<tag>"),
            (r#"[{"from":{"kind":"ImageStreamTag","name":"a:b"},"fieldPath":"metadata.name"}]"#.into(), "not supported"),
            (r#"[{"from":{"kind":"ImageStreamTag","name":"a:b"},"fieldPath":"spec.jobTemplate.spec.template.spec.containers[0].image"}]"#.into(), "not supported"),
            (r#"[{"from":{"kind":"ImageStreamTag","name":"a:b"},"fieldPath":"spec.template.spec.containers[?(@.name==\"web\")].command"}]"#.into(), "not supported"),
            (r#"[{"from":{"kind":"ImageStreamTag","name":"a:b"},"fieldPath":"spec.template.spec.containers[?(@.name==\"W E B\")].image"}]"#.into(), "not a valid container name"),
            (r#"[{"from":{"kind":"ImageStreamTag","name":"a:b"},"fieldPath":"spec.template.spec.containers[-1].image"}]"#.into(), "not supported"),
            (r#"[{"from":{"kind":"ImageStreamTag","name":"a:b"},"fieldPath":"spec.template.spec.containers[?(@.name==\"web\").image"}]"#.into(), "not supported"),
            (format!("[{}]", vec![r#"{"from":{"kind":"ImageStreamTag","name":"a:b"},"fieldPath":"spec.template.spec.containers[0].image"}"#; 65].join(",")), "more than 64"),
            (format!(r#"[{{"from":{{"kind":"ImageStreamTag","name":"{}:b"}},"fieldPath":"spec.template.spec.containers[0].image"}}]"#, "a".repeat(100_000)), "not <imagestream>:<tag>"),
            ("[".repeat(10_000), "not a JSON list"),
        ];
        for (text, expected) in cases {
            let error = parse_triggers(
                WorkloadKind::Deployment,
                "ns",
                &annotations(SLIPWAY_TRIGGERS, &text),
            )
            .unwrap_err();
            assert!(error.contains(expected), "{error} should say {expected}");
            assert!(error.len() < 1000, "messages stay short: {}", error.len());
        }
    }

    fn deployment(image: &str) -> Value {
        json!({"spec": {"template": {"spec": {"containers": [
            {"name": "side", "image": "side:1"},
            {"name": "web", "image": image},
        ]}}}})
    }

    #[test]
    fn patches_set_only_the_triggered_image() {
        let triggers = parse_triggers(
            WorkloadKind::Deployment,
            "ns",
            &annotations(OPENSHIFT_TRIGGERS, WEB),
        )
        .unwrap();
        let latest =
            |t: &Trigger| (t.stream == "app" && t.tag == "latest").then(|| "r/ns/app@sha256:2".to_string());
        let patch = image_patch(WorkloadKind::Deployment, &deployment("old"), &triggers, latest).unwrap();
        assert_eq!(
            patch,
            Some(
                json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "r/ns/app@sha256:2"}]}}}})
            )
        );
        // Already there: nothing to do.
        assert_eq!(
            image_patch(
                WorkloadKind::Deployment,
                &deployment("r/ns/app@sha256:2"),
                &triggers,
                latest
            )
            .unwrap(),
            None
        );
        // The tag has no image yet: nothing to do.
        assert_eq!(
            image_patch(WorkloadKind::Deployment, &deployment("old"), &triggers, |_| {
                None
            })
            .unwrap(),
            None
        );
        // Paused: nothing to do.
        let paused: Vec<Trigger> = triggers
            .iter()
            .map(|t| Trigger {
                paused: true,
                ..t.clone()
            })
            .collect();
        assert_eq!(
            image_patch(WorkloadKind::Deployment, &deployment("old"), &paused, latest).unwrap(),
            None
        );
        // A missing container is an error with the name.
        let missing =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "other", "image": "x"}]}}}});
        let e = image_patch(WorkloadKind::Deployment, &missing, &triggers, latest).unwrap_err();
        assert!(e.contains("\"web\""), "{e}");
        // No pod spec at all is the same error, never a panic.
        assert!(image_patch(WorkloadKind::Deployment, &json!({}), &triggers, latest).is_err());
        // CronJobs nest the pod spec deeper; an index names the container.
        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "job", "image": "x"}]}}}}}});
        let t = vec![Trigger {
            namespace: None,
            stream: "app".into(),
            tag: "latest".into(),
            list: "containers",
            container: ContainerSelector::Index(0),
            paused: false,
        }];
        let patch = image_patch(WorkloadKind::CronJob, &cron, &t, latest)
            .unwrap()
            .unwrap();
        assert_eq!(
            patch["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0],
            json!({"name": "job", "image": "r/ns/app@sha256:2"})
        );
    }
}
