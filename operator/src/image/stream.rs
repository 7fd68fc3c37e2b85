//! The ImageStream controller: keeps each spec tag's history in status.
//!
//! A tag `from` a DockerImage is imported (the registry is asked for the manifest digest) when it
//! is new, when its source or `generation` changed, and — with `importPolicy.scheduled` — every
//! import interval; a new status item is recorded only when the digest changed. A tag `from`
//! another tag (`stream:tag`, in the same namespace) follows that tag's newest image; with
//! `reference: true` the pull spec is recorded as it is. A failed import sets the tag's
//! ImportSuccess condition to False with the registry's answer (and an Event); a later success
//! removes it. An import sends the registry the credentials the project's docker-config Secrets
//! hold for it (see [`super::credentials`]); a refusal names the Secret used, or how to add one.
//! `status.dockerImageRepository` is `<registry>/<namespace>/<name>`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use oci_client::secrets::RegistryAuth;
use serde_json::json;
use slipway_crds::ImageStream;
use slipway_crds::common::{ImageReferenceKind, Time, condition_status};
use slipway_crds::image::{
    ImageStreamStatus, ImportMode, TagEvent, TagEventCondition, TagImportPolicy, TagReference,
    split_stream_tag,
};

use super::Settings;
use super::credentials::ProjectCredentials;
use super::registry::{self, ImportError, Resolved};
use crate::{Context, Error};

/// The condition a failed import sets on its tag (OpenShift's name).
pub const IMPORT_SUCCESS: &str = "ImportSuccess";

/// Where a spec tag's image comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagSource {
    /// A tag without `from`: builds push to it; nothing to do.
    None,
    /// Ask the registry for the digest of this pull spec (an index resolved as `mode` says).
    Import {
        spec: String,
        insecure: bool,
        mode: ImportMode,
    },
    /// Record the pull spec as it is (`reference: true`).
    Reference { spec: String },
    /// The newest image of another tag of a stream in this namespace.
    Tag { stream: String, tag: String },
    /// The image with this digest from a stream in this namespace (ImageStreamImage).
    Image { stream: String, digest: String },
    /// A source that cannot be followed; the message says why.
    Invalid { message: String },
}

/// Where `tag` of a stream in `namespace` gets its image (pure).
pub fn tag_source(namespace: &str, tag: &TagReference) -> TagSource {
    let Some(from) = &tag.from else {
        return TagSource::None;
    };
    let other_namespace = from
        .namespace
        .as_deref()
        .filter(|ns| !ns.is_empty() && *ns != namespace);
    match from.kind {
        ImageReferenceKind::DockerImage if tag.reference => TagSource::Reference {
            spec: from.name.clone(),
        },
        ImageReferenceKind::DockerImage => TagSource::Import {
            spec: from.name.clone(),
            insecure: tag.import_policy.as_ref().is_some_and(|p| p.insecure),
            mode: TagImportPolicy::mode(tag.import_policy.as_ref()),
        },
        _ if other_namespace.is_some() => TagSource::Invalid {
            message: format!(
                "tag {} follows {} in namespace {}: only streams of the same namespace can be followed",
                tag.name,
                from.name,
                other_namespace.unwrap_or_default()
            ),
        },
        ImageReferenceKind::ImageStreamTag => {
            let (stream, source_tag) = split_stream_tag(&from.name);
            TagSource::Tag {
                stream: stream.to_string(),
                tag: source_tag.to_string(),
            }
        }
        ImageReferenceKind::ImageStreamImage => match from.name.split_once('@') {
            Some((stream, digest)) if !stream.is_empty() && !digest.is_empty() => TagSource::Image {
                stream: stream.to_string(),
                digest: digest.to_string(),
            },
            _ => TagSource::Invalid {
                message: format!(
                    "tag {} names the image {:?}: expected <imagestream>@<digest>",
                    tag.name, from.name
                ),
            },
        },
    }
}

/// The last import of one tag, kept in memory (after a restart every tag is imported once more;
/// an unchanged digest writes nothing).
#[derive(Clone, Debug)]
pub struct Imported {
    pub spec: String,
    pub insecure: bool,
    pub mode: ImportMode,
    pub generation: Option<i64>,
    pub at: Instant,
    pub succeeded: bool,
}

/// Whether `tag` (an Import source) is due for an import: never imported, its source, import
/// mode or generation changed, or — scheduled, or after a failure — the interval has passed.
pub fn import_due(
    tag: &TagReference,
    spec: &str,
    insecure: bool,
    last: Option<&Imported>,
    now: Instant,
    interval: Duration,
) -> bool {
    let Some(last) = last else { return true };
    if last.spec != spec
        || last.insecure != insecure
        || last.mode != TagImportPolicy::mode(tag.import_policy.as_ref())
        || last.generation != tag.generation
    {
        return true;
    }
    let scheduled = tag.import_policy.as_ref().is_some_and(|p| p.scheduled);
    (scheduled || !last.succeeded) && now.saturating_duration_since(last.at) >= interval
}

/// When the next import of this stream is due, if any.
pub fn next_import(
    namespace: &str,
    tags: &[TagReference],
    last: impl Fn(&str) -> Option<Imported>,
    now: Instant,
    interval: Duration,
) -> Option<Duration> {
    tags.iter()
        .filter(|t| matches!(tag_source(namespace, t), TagSource::Import { .. }))
        .filter_map(|t| {
            let last = last(&t.name)?;
            let scheduled = t.import_policy.as_ref().is_some_and(|p| p.scheduled);
            (scheduled || !last.succeeded).then(|| (last.at + interval).saturating_duration_since(now))
        })
        .min()
}

/// What happened to one tag in this reconcile.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The tag's image is (still) this one.
    Image(TagEvent),
    /// The registry says the tag's image is (still) this one: recorded as Image, and the tag's
    /// ImportSuccess condition is True for this generation (OpenShift only keeps failures; the
    /// success tells `slip import-image` that its request was served even when nothing moved).
    Imported(TagEvent),
    /// The import failed.
    Failed(ImportError),
    /// Nothing to record now (no source, not due, or the followed tag has no image yet).
    Unchanged,
}

/// A change worth an Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Updated {
        tag: String,
        reference: String,
    },
    Failed {
        tag: String,
        reason: String,
        message: String,
    },
}

/// The status after this reconcile's outcomes, and the changes worth an Event (pure). The
/// status equals `current` when nothing changed, so the caller writes nothing.
pub fn next_status(
    current: &ImageStreamStatus,
    repository: &str,
    generation: i64,
    outcomes: Vec<(String, Outcome)>,
) -> (ImageStreamStatus, Vec<Change>) {
    let mut status = current.clone();
    status.docker_image_repository = repository.to_string();
    let mut changes = Vec::new();
    for (tag, outcome) in outcomes {
        let (condition, event) = match outcome {
            Outcome::Unchanged => continue,
            Outcome::Image(event) => (None, Some(event)),
            Outcome::Imported(event) => {
                let message = format!("imported {}", event.docker_image_reference);
                (Some((condition_status::TRUE, "Imported", message)), Some(event))
            }
            Outcome::Failed(error) => (Some((condition_status::FALSE, error.reason, error.message)), None),
        };
        if let Some(event) = event {
            let reference = event.docker_image_reference.clone();
            if status.record(&tag, event) {
                changes.push(Change::Updated {
                    tag: tag.clone(),
                    reference,
                });
            }
        }
        let index = match status.tags.iter().position(|t| t.tag == tag) {
            Some(i) => i,
            None => {
                status.tags.push(slipway_crds::image::NamedTagEventList {
                    tag: tag.clone(),
                    ..Default::default()
                });
                status.tags.len() - 1
            }
        };
        let conditions = &mut status.tags[index].conditions;
        let Some((state, reason, message)) = condition else {
            // Followed and referenced tags are not imported: no import condition.
            conditions.retain(|c| c.type_ != IMPORT_SUCCESS);
            continue;
        };
        if set_import_condition(conditions, state, reason, &message, generation)
            && state == condition_status::FALSE
        {
            changes.push(Change::Failed {
                tag: tag.clone(),
                reason: reason.into(),
                message,
            });
        }
    }
    (status, changes)
}

/// Sets a tag's ImportSuccess condition (its transition time kept while the state stays); true
/// when it is news: a failure not reported with this message before.
fn set_import_condition(
    conditions: &mut Vec<TagEventCondition>,
    state: &str,
    reason: &str,
    message: &str,
    generation: i64,
) -> bool {
    let same = conditions.iter().any(|c| {
        c.type_ == IMPORT_SUCCESS
            && c.status == state
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message)
            && c.generation == generation
    });
    if same {
        return false;
    }
    let transition = conditions
        .iter()
        .find(|c| c.type_ == IMPORT_SUCCESS && c.status == state)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(Timestamp::now()));
    let was_failing = conditions.iter().any(|c| {
        c.type_ == IMPORT_SUCCESS
            && c.status == condition_status::FALSE
            && c.message.as_deref() == Some(message)
    });
    conditions.retain(|c| c.type_ != IMPORT_SUCCESS);
    conditions.push(TagEventCondition {
        type_: IMPORT_SUCCESS.into(),
        status: state.into(),
        last_transition_time: Some(transition),
        reason: Some(reason.into()),
        message: Some(message.to_string()),
        generation,
    });
    !was_failing
}

/// The repository builds push to: `<registry>/<namespace>/<name>`.
pub fn repository(registry: &str, namespace: &str, name: &str) -> String {
    format!("{}/{namespace}/{name}", registry.trim_end_matches('/'))
}

struct State {
    ctx: Context,
    settings: Settings,
    /// Last import per (stream uid, tag).
    imported: Mutex<HashMap<(String, String), Imported>>,
}

impl crate::error::Shared for State {
    fn context(&self) -> &Context {
        &self.ctx
    }
}

impl State {
    fn last(&self, uid: &str, tag: &str) -> Option<Imported> {
        self.imported
            .lock()
            .ok()?
            .get(&(uid.to_string(), tag.to_string()))
            .cloned()
    }
}

/// Runs the ImageStream controller until shutdown.
pub async fn run(ctx: Context, settings: Settings) {
    registry::ensure_crypto_provider();
    let api: Api<ImageStream> = match &settings.namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let state = Arc::new(State {
        ctx,
        settings: settings.clone(),
        imported: Mutex::default(),
    });
    let controller = crate::cache::controller(&state.ctx, "image", api.clone(), settings.watcher_config());
    let store = controller.store();
    // A stream that changes wakes the streams of its namespace that follow it.
    controller
        .watches_stream(
            crate::cache::watch(api, settings.watcher_config()).touched_objects(),
            move |changed: ImageStream| {
                let namespace = changed.namespace().unwrap_or_default();
                let name = changed.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|s| s.namespace().as_deref() == Some(namespace.as_str()))
                    .filter(|s| {
                        s.spec.tags.iter().any(|t| match tag_source(&namespace, t) {
                            TagSource::Tag { stream, .. } | TagSource::Image { stream, .. } => {
                                stream == name && s.name_any() != name
                            }
                            _ => false,
                        })
                    })
                    .map(|s| ObjectRef::from_obj(s.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .run(
            crate::error::tracked("image", reconcile),
            crate::error::policy("image"),
            state,
        )
        .for_each(|_| async {})
        .await;
}

async fn reconcile(stream: Arc<ImageStream>, state: Arc<State>) -> Result<Action, Error> {
    let _timer = state.ctx.metrics.reconcile("image", stream.as_ref());
    let namespace = stream.namespace().unwrap_or_default();
    let name = stream.name_any();
    let uid = stream.uid().unwrap_or_default();
    let current = stream.status.clone().unwrap_or_default();
    let api: Api<ImageStream> = Api::namespaced(state.ctx.client.clone(), &namespace);

    // Observe (and import what is due).
    let mut observation = Observation {
        state: &state,
        api: &api,
        stream: &stream,
        current: &current,
        attempted: Vec::new(),
        followed: HashMap::new(),
        credentials: None,
    };
    let mut outcomes = Vec::new();
    for tag in &stream.spec.tags {
        outcomes.push((tag.name.clone(), observation.outcome(tag).await?));
    }
    let attempted = observation.attempted;

    // Decide.
    let repo = repository(&state.settings.registry, &namespace, &name);
    let generation = stream.meta().generation.unwrap_or_default();
    let (status, changes) = next_status(&current, &repo, generation, outcomes);

    // Act.
    if status != current {
        let patch = json!({
            "metadata": {"resourceVersion": stream.resource_version()},
            "status": status,
        });
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        publish_changes(&state.ctx, &stream, changes).await;
    }
    if let Ok(mut imported) = state.imported.lock() {
        for (tag, import) in attempted {
            imported.insert((uid.clone(), tag), import);
        }
    }
    let next = next_import(
        &namespace,
        &stream.spec.tags,
        |tag| state.last(&uid, tag),
        Instant::now(),
        state.settings.import_interval,
    );
    Ok(match next {
        Some(after) => Action::requeue(after.max(Duration::from_millis(100))),
        None => Action::await_change(),
    })
}

/// What one reconcile observes of a stream's tags.
struct Observation<'a> {
    state: &'a State,
    api: &'a Api<ImageStream>,
    stream: &'a ImageStream,
    /// The stream's status as read.
    current: &'a ImageStreamStatus,
    /// The imports tried, by tag.
    attempted: Vec<(String, Imported)>,
    /// The statuses of the streams followed, read once.
    followed: HashMap<String, Option<ImageStreamStatus>>,
    /// The project's docker-config Secrets, read once at the first import.
    credentials: Option<ProjectCredentials>,
}

impl Observation<'_> {
    /// What the source of `tag` says now (importing it when due).
    async fn outcome(&mut self, tag: &TagReference) -> Result<Outcome, Error> {
        let namespace = self.stream.namespace().unwrap_or_default();
        let generation = self.stream.meta().generation.unwrap_or_default();
        let event = |event: TagEvent| {
            Outcome::Image(TagEvent {
                created: Time(Timestamp::now()),
                generation,
                ..event
            })
        };
        Ok(match tag_source(&namespace, tag) {
            TagSource::None => Outcome::Unchanged,
            TagSource::Invalid { message } => Outcome::Failed(ImportError {
                reason: "InvalidSource",
                message,
            }),
            TagSource::Reference { spec } => Outcome::Image(TagEvent {
                created: Time(Timestamp::now()),
                image: spec
                    .split_once('@')
                    .map(|(_, d)| d.to_string())
                    .unwrap_or_else(|| spec.clone()),
                docker_image_reference: spec,
                generation,
            }),
            TagSource::Import { spec, insecure, mode } => self.import(tag, spec, insecure, mode).await,
            TagSource::Tag {
                stream: source,
                tag: source_tag,
            } => {
                let status = self.source_status(&source).await?;
                match status.as_ref().and_then(|s| s.latest(&source_tag)) {
                    Some(found) => event(found.clone()),
                    None => Outcome::Unchanged,
                }
            }
            TagSource::Image {
                stream: source,
                digest,
            } => {
                let status = self.source_status(&source).await?;
                let found = status
                    .as_ref()
                    .and_then(|s| s.tags.iter().flat_map(|t| &t.items).find(|i| i.image == digest));
                match found {
                    Some(found) => event(found.clone()),
                    None => Outcome::Failed(ImportError {
                        reason: "NotFound",
                        message: format!("image stream {source} has no image {digest}"),
                    }),
                }
            }
        })
    }

    /// Imports `spec` into `tag` when due (recording the attempt).
    async fn import(
        &mut self,
        tag: &TagReference,
        spec: String,
        insecure: bool,
        mode: ImportMode,
    ) -> Outcome {
        let uid = self.stream.uid().unwrap_or_default();
        let last = self.state.last(&uid, &tag.name);
        let interval = self.state.settings.import_interval;
        if !import_due(tag, &spec, insecure, last.as_ref(), Instant::now(), interval) {
            return Outcome::Unchanged;
        }
        let result = self.resolve(&spec, insecure, mode).await;
        let imported = Imported {
            spec,
            insecure,
            mode,
            generation: tag.generation,
            at: Instant::now(),
            succeeded: result.is_ok(),
        };
        self.attempted.push((tag.name.clone(), imported));
        match result {
            Ok(resolved) => Outcome::Imported(TagEvent {
                created: Time(Timestamp::now()),
                docker_image_reference: resolved.reference,
                image: resolved.digest,
                generation: self.stream.meta().generation.unwrap_or_default(),
            }),
            Err(e) => Outcome::Failed(e),
        }
    }

    /// Resolves `spec` with the project's credentials for its registry (anonymously without
    /// any); a refusal says which Secret was used, or how to add one.
    async fn resolve(
        &mut self,
        spec: &str,
        insecure: bool,
        mode: ImportMode,
    ) -> Result<Resolved, ImportError> {
        let registry_host = registry::parse_pull_spec(spec)?.resolve_registry().to_string();
        let credentials = match &self.credentials {
            Some(c) => c,
            None => {
                let namespace = self.stream.namespace().unwrap_or_default();
                let loaded = ProjectCredentials::load(&self.state.ctx.client, &namespace)
                    .await
                    .unwrap_or_else(|e| {
                        tracing::warn!(%namespace, error = %e, "the project's docker-config Secrets were not read; importing anonymously");
                        ProjectCredentials::default()
                    });
                self.credentials.insert(loaded)
            }
        };
        let chosen = credentials.for_registry(&registry_host);
        let auth = chosen.as_ref().map_or(&RegistryAuth::Anonymous, |c| &c.auth);
        registry::resolve_with(spec, insecure, mode, auth)
            .await
            .map_err(|mut e| {
                if e.reason == "Unauthorized" {
                    let hint = credentials.hint(&registry_host, chosen.as_ref().map(|c| c.secret.as_str()));
                    e.message = format!("{}: {hint}", e.message);
                }
                e
            })
    }

    async fn source_status(&mut self, source: &str) -> Result<Option<ImageStreamStatus>, Error> {
        let name = self.stream.name_any();
        source_status(self.api, &name, self.current, source, &mut self.followed).await
    }
}

/// Tells of each tag that moved or failed to import, as an Event on the stream.
async fn publish_changes(ctx: &Context, stream: &ImageStream, changes: Vec<Change>) {
    let reference = stream.object_ref(&());
    for change in changes {
        let (type_, reason, note) = match change {
            Change::Updated {
                tag,
                reference: image,
            } => (
                EventType::Normal,
                "TagUpdated",
                format!("tag {tag} now points to {image}"),
            ),
            Change::Failed { tag, reason, message } => (
                EventType::Warning,
                "ImportFailed",
                format!("tag {tag}: {reason}: {message}"),
            ),
        };
        ctx.publish(&reference, type_, "Import", reason, &note).await;
    }
}

/// The status of a followed stream (this one's as observed, others read once per reconcile).
async fn source_status(
    api: &Api<ImageStream>,
    own_name: &str,
    own: &ImageStreamStatus,
    source: &str,
    cache: &mut HashMap<String, Option<ImageStreamStatus>>,
) -> Result<Option<ImageStreamStatus>, Error> {
    if source == own_name {
        return Ok(Some(own.clone()));
    }
    if let Some(status) = cache.get(source) {
        return Ok(status.clone());
    }
    let status = api.get_opt(source).await?.map(|s| s.status.unwrap_or_default());
    cache.insert(source.to_string(), status.clone());
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_crds::common::ImageReference;
    use slipway_crds::image::TagImportPolicy;

    fn tag(name: &str, from: Option<ImageReference>, scheduled: bool) -> TagReference {
        TagReference {
            name: name.into(),
            from,
            import_policy: Some(TagImportPolicy {
                scheduled,
                insecure: true,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn event(digest: &str) -> TagEvent {
        TagEvent {
            created: Time(Timestamp::now()),
            docker_image_reference: format!("r/ns/app@{digest}"),
            image: digest.into(),
            generation: 1,
        }
    }

    #[test]
    fn sources_of_tags() {
        let docker = tag("a", Some(ImageReference::docker_image("r:5000/x/y:1")), false);
        assert_eq!(
            tag_source("ns", &docker),
            TagSource::Import {
                spec: "r:5000/x/y:1".into(),
                insecure: true,
                mode: ImportMode::Legacy,
            }
        );
        let reference = TagReference {
            reference: true,
            ..docker.clone()
        };
        assert!(matches!(
            tag_source("ns", &reference),
            TagSource::Reference { .. }
        ));
        let follow = tag("b", Some(ImageReference::image_stream_tag("other:v1")), false);
        assert_eq!(
            tag_source("ns", &follow),
            TagSource::Tag {
                stream: "other".into(),
                tag: "v1".into()
            }
        );
        let mut elsewhere = follow.clone();
        elsewhere.from.as_mut().unwrap().namespace = Some("theirs".into());
        assert!(matches!(tag_source("ns", &elsewhere), TagSource::Invalid { .. }));
        elsewhere.from.as_mut().unwrap().namespace = Some("ns".into());
        assert!(matches!(tag_source("ns", &elsewhere), TagSource::Tag { .. }));
        let image = tag(
            "c",
            Some(ImageReference {
                kind: ImageReferenceKind::ImageStreamImage,
                name: "app@sha256:1".into(),
                namespace: None,
            }),
            false,
        );
        assert_eq!(
            tag_source("ns", &image),
            TagSource::Image {
                stream: "app".into(),
                digest: "sha256:1".into()
            }
        );
        let mut broken = image.clone();
        broken.from.as_mut().unwrap().name = "no-digest".into();
        assert!(matches!(tag_source("ns", &broken), TagSource::Invalid { .. }));
        assert_eq!(tag_source("ns", &tag("d", None, true)), TagSource::None);
    }

    #[test]
    fn imports_are_due_when_new_changed_scheduled_or_failed() {
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);
        let once = tag("a", None, false);
        let scheduled = tag("a", None, true);
        let last = Imported {
            spec: "x:1".into(),
            insecure: true,
            mode: ImportMode::Legacy,
            generation: None,
            at: t0,
            succeeded: true,
        };
        assert!(import_due(&once, "x:1", true, None, t0, minute));
        assert!(!import_due(
            &once,
            "x:1",
            true,
            Some(&last),
            t0 + minute * 10,
            minute
        ));
        assert!(import_due(&once, "x:2", true, Some(&last), t0, minute));
        assert!(import_due(&once, "x:1", false, Some(&last), t0, minute));
        let bumped = TagReference {
            generation: Some(2),
            ..once.clone()
        };
        assert!(import_due(&bumped, "x:1", true, Some(&last), t0, minute));
        // A changed import mode imports again.
        let preserve = TagReference {
            import_policy: Some(TagImportPolicy {
                import_mode: Some(ImportMode::PreserveOriginal),
                ..Default::default()
            }),
            ..once.clone()
        };
        assert!(import_due(&preserve, "x:1", true, Some(&last), t0, minute));
        assert!(!import_due(
            &scheduled,
            "x:1",
            true,
            Some(&last),
            t0 + minute / 2,
            minute
        ));
        assert!(import_due(
            &scheduled,
            "x:1",
            true,
            Some(&last),
            t0 + minute,
            minute
        ));
        let failed = Imported {
            succeeded: false,
            ..last.clone()
        };
        assert!(import_due(&once, "x:1", true, Some(&failed), t0 + minute, minute));

        let docker = Some(ImageReference::docker_image("x:1"));
        let tags = vec![tag("s", docker.clone(), true), tag("o", docker, false)];
        let next = next_import("ns", &tags, |_| Some(last.clone()), t0 + minute / 4, minute);
        assert_eq!(next, Some(minute * 3 / 4));
        assert_eq!(next_import("ns", &tags, |_| None, t0, minute), None);
    }

    #[test]
    fn status_records_new_digests_only_and_tracks_import_failures() {
        let repo = "127.0.0.1:15000/ns/app";
        let (status, changes) = next_status(
            &ImageStreamStatus::default(),
            repo,
            1,
            vec![("latest".into(), Outcome::Image(event("sha256:a")))],
        );
        assert_eq!(status.docker_image_repository, repo);
        assert_eq!(changes.len(), 1);
        // The same digest again: nothing changes, nothing to write.
        let (again, changes) = next_status(
            &status,
            repo,
            1,
            vec![("latest".into(), Outcome::Image(event("sha256:a")))],
        );
        assert_eq!(again, status);
        assert!(changes.is_empty());
        let failure = ImportError {
            reason: "NotFound",
            message: "manifest unknown".into(),
        };
        let (failed, changes) = next_status(
            &status,
            repo,
            2,
            vec![("latest".into(), Outcome::Failed(failure.clone()))],
        );
        assert_eq!(changes.len(), 1);
        let condition = &failed.tags[0].conditions[0];
        assert_eq!(condition.status, "False");
        assert_eq!(condition.message.as_deref(), Some("manifest unknown"));
        assert_eq!(
            failed.latest("latest").unwrap().image,
            "sha256:a",
            "history is kept"
        );
        // The same failure again is quiet.
        let (same, changes) = next_status(
            &failed,
            repo,
            2,
            vec![("latest".into(), Outcome::Failed(failure))],
        );
        assert_eq!(same, failed);
        assert!(changes.is_empty());
        // A success clears the condition.
        let (healed, _) = next_status(
            &failed,
            repo,
            2,
            vec![("latest".into(), Outcome::Image(event("sha256:b")))],
        );
        assert!(healed.tags[0].conditions.is_empty());
        assert_eq!(healed.tags[0].items.len(), 2);
        // A failure of a tag never imported makes its list with the condition only.
        let (fresh, _) = next_status(
            &ImageStreamStatus::default(),
            repo,
            1,
            vec![(
                "v1".into(),
                Outcome::Failed(ImportError {
                    reason: "Unreachable",
                    message: "connection refused".into(),
                }),
            )],
        );
        assert!(fresh.tags[0].items.is_empty());
        assert_eq!(fresh.tags[0].conditions.len(), 1);
    }

    #[test]
    fn imports_mark_success_per_generation_and_stay_quiet() {
        let repo = "r/ns/app";
        let imported = |d: &str| vec![("latest".to_string(), Outcome::Imported(event(d)))];
        let (first, changes) = next_status(&ImageStreamStatus::default(), repo, 1, imported("sha256:a"));
        assert_eq!(changes.len(), 1);
        let condition = &first.tags[0].conditions[0];
        assert_eq!((condition.status.as_str(), condition.generation), ("True", 1));
        // The same digest at the same generation: nothing to write.
        let (same, changes) = next_status(&first, repo, 1, imported("sha256:a"));
        assert_eq!(same, first);
        assert!(changes.is_empty());
        // A new generation (say `slip import-image`) with the same digest: only the condition moves.
        let (again, changes) = next_status(&first, repo, 2, imported("sha256:a"));
        assert!(changes.is_empty());
        assert_eq!(again.tags[0].items.len(), 1);
        assert_eq!(again.tags[0].conditions[0].generation, 2);
        // A failure after a success flips the condition and says so once.
        let failure = vec![(
            "latest".to_string(),
            Outcome::Failed(ImportError {
                reason: "Unreachable",
                message: "refused".into(),
            }),
        )];
        let (failed, changes) = next_status(&again, repo, 2, failure.clone());
        assert_eq!(changes.len(), 1);
        assert_eq!(failed.tags[0].conditions[0].status, "False");
        let (failed_again, changes) = next_status(&failed, repo, 3, failure);
        assert!(
            changes.is_empty(),
            "the same failure at a new generation is no new event"
        );
        assert_eq!(failed_again.tags[0].conditions[0].generation, 3);
    }

    #[test]
    fn repository_is_registry_namespace_name() {
        assert_eq!(
            repository("127.0.0.1:15000/", "ns", "app"),
            "127.0.0.1:15000/ns/app"
        );
    }
}
