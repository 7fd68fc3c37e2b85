//! The registry's notifications: the distribution registry POSTs an envelope of events
//! (`application/vnd.docker.distribution.events.v1+json`, its `docs/notifications.md`) after each
//! push; a manifest pushed under a tag to `<project>/<stream>` moves that ImageStream tag at once,
//! so image-change triggers fire without a poll. A push to a stream that does not exist creates
//! it when the pusher may create ImageStreams in the project (OpenShift's behaviour).
//!
//! Only the registry may notify: it sends the shared secret Slipway gave it (`Authorization:
//! Bearer <secret>`, compared in constant time). The envelope is bounded ([`MAX_BODY_BYTES`],
//! [`MAX_EVENTS`]); an event that is not a tagged manifest push is skipped.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReviewSpec};
use kube::Client;
use kube::api::{Api, PostParams};
use serde::Deserialize;
use serde_json::json;
use slipway_client::tags::{self, Recorded};
use slipway_crds::ImageStream;
use subtle::ConstantTimeEq;

/// The path the registry's notification endpoint posts to.
pub const NOTIFY_PATH: &str = "/registry/notifications";
/// The largest envelope read (the registry batches a few events; each is under 2 KiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The most events one envelope may carry.
pub const MAX_EVENTS: usize = 1000;

/// The manifest media types a tag can name.
const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// The notification endpoint's settings.
#[derive(Clone)]
pub struct Notifications {
    /// The registry as pods pull from it (`host[:port]`): tags record `<registry>/<project>/<stream>@<digest>`.
    pub registry: String,
    /// What the registry sends as `Authorization: Bearer <secret>`.
    pub secret: String,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifications")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

struct NotifyState {
    client: Client,
    settings: Notifications,
}

/// The router of the notification endpoint.
pub fn router(client: Client, settings: Notifications) -> Router {
    Router::new()
        .route(NOTIFY_PATH, post(notified))
        .with_state(Arc::new(NotifyState { client, settings }))
}

#[derive(Deserialize, Debug)]
struct Envelope {
    events: Vec<Event>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default)]
struct Event {
    action: String,
    timestamp: String,
    target: Target,
    actor: Actor,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default, rename_all = "camelCase")]
struct Target {
    media_type: String,
    digest: String,
    repository: String,
    tag: String,
}

#[derive(Deserialize, Debug, Default)]
#[serde(default)]
struct Actor {
    name: String,
}

/// A manifest pushed under a tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    pub namespace: String,
    pub stream: String,
    pub tag: String,
    pub digest: String,
    /// Who pushed (the token's subject), if the registry said.
    pub actor: String,
    /// When the registry took the push, if it said.
    pub at: Option<k8s_openapi::jiff::Timestamp>,
}

/// The tagged manifest pushes of an envelope (pure); an envelope that is not one is an error.
pub fn pushes(body: &[u8]) -> Result<Vec<Pushed>, String> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| format!("not a registry notification envelope: {e}"))?;
    if envelope.events.len() > MAX_EVENTS {
        return Err(format!(
            "{} events are more than {MAX_EVENTS}",
            envelope.events.len()
        ));
    }
    let mut found = Vec::new();
    for event in envelope.events {
        let target = event.target;
        if event.action != "push"
            || target.tag.is_empty()
            || !MANIFEST_TYPES.contains(&target.media_type.as_str())
        {
            continue;
        }
        let scope = format!("repository:{}:push", target.repository);
        let Ok(Some(repository)) = super::token::parse_scope(&scope) else {
            tracing::warn!(repository = %target.repository, "a push to a repository outside any project; skipped");
            continue;
        };
        let valid_digest = target
            .digest
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        let valid_tag = target.tag.len() <= 128
            && target
                .tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !valid_digest || !valid_tag {
            tracing::warn!(tag = %target.tag, digest = %target.digest, "a push with a malformed tag or digest; skipped");
            continue;
        }
        found.push(Pushed {
            namespace: repository.namespace,
            stream: repository.stream,
            tag: target.tag,
            digest: target.digest,
            actor: event.actor.name,
            at: event.timestamp.parse().ok(),
        });
    }
    Ok(found)
}

/// Whether the `Authorization` header carries `secret` as a bearer token (constant time).
fn authorized(headers: &HeaderMap, secret: &str) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(sent) = value.strip_prefix("Bearer ") else {
        return false;
    };
    !secret.is_empty() && bool::from(sent.as_bytes().ct_eq(secret.as_bytes()))
}

fn answer(status: StatusCode, message: String) -> Response {
    if !status.is_success() {
        tracing::info!(status = status.as_u16(), %message, "registry notification refused");
    }
    (status, Json(json!({"message": message}))).into_response()
}

/// How long the registry may take to send an envelope.
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn notified(State(state): State<Arc<NotifyState>>, request: Request) -> Response {
    // The secret first: nothing of an unauthenticated request's body is read.
    if !authorized(request.headers(), &state.settings.secret) {
        return answer(
            StatusCode::UNAUTHORIZED,
            "only the registry notifies, with the secret it was given".into(),
        );
    }
    let read = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES);
    let body = match tokio::time::timeout(BODY_READ_TIMEOUT, read).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            return answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("an envelope is at most {MAX_BODY_BYTES} bytes"),
            );
        }
        Err(_) => {
            return answer(
                StatusCode::REQUEST_TIMEOUT,
                "the envelope took too long to send".into(),
            );
        }
    };
    let pushes = match pushes(&body) {
        Ok(p) => p,
        Err(message) => return answer(StatusCode::BAD_REQUEST, message),
    };
    let mut moved = 0;
    for push in &pushes {
        let what = || format!("{}/{}:{}", push.namespace, push.stream, push.tag);
        match record(&state.client, &state.settings.registry, push).await {
            Ok(Recorded::Moved) => moved += 1,
            Ok(Recorded::Unchanged | Recorded::NoStream) => {}
            Ok(Recorded::Conflicted) => {
                return answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("recording {}: the stream kept changing", what()),
                );
            }
            // A transient failure: the registry sends the envelope again later (each push is
            // recorded once, and a replayed one older than the tag's newest image is skipped).
            Err(e) if transient(&e) => {
                return answer(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("recording {}: {e}", what()),
                );
            }
            // One that lasts (the project's quota is full, it is being deleted): answering with
            // an error would stall every later notification behind this one, so it is logged.
            Err(e) => tracing::warn!(
                namespace = %push.namespace, stream = %push.stream, tag = %push.tag, error = %e,
                "a pushed tag could not be recorded"
            ),
        }
    }
    answer(
        StatusCode::OK,
        format!("{} pushes, {moved} tags moved", pushes.len()),
    )
}

/// Whether recording may succeed when tried again: the API server unreachable, overloaded or
/// failing, or the stream changing under every attempt; not a refusal.
fn transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(e) => e.code >= 500 || e.code == 429 || e.code == 409,
        kube::Error::SerdeError(_) => false,
        _ => true,
    }
}

/// Moves the tag of `push` (creating its stream when the pusher may).
async fn record(client: &Client, registry: &str, push: &Pushed) -> Result<Recorded, kube::Error> {
    let streams: Api<ImageStream> = Api::namespaced(client.clone(), &push.namespace);
    let repository = |is: &ImageStream| tags::repository(is, registry, &push.namespace, &push.stream);
    let record = || {
        tags::record(
            &streams,
            &push.stream,
            &push.tag,
            &push.digest,
            push.at,
            &repository,
        )
    };
    let mut outcome = record().await?;
    if outcome == Recorded::NoStream {
        if !may_create_stream(client, &push.actor, &push.namespace).await? {
            tracing::warn!(
                actor = %push.actor, namespace = %push.namespace, stream = %push.stream,
                "a push to an image stream that does not exist, by someone who may not create one; not recorded"
            );
            return Ok(Recorded::NoStream);
        }
        let stream: ImageStream = serde_json::from_value(json!({
            "apiVersion": slipway_crds::API_VERSION, "kind": "ImageStream",
            "metadata": {"name": push.stream, "annotations": {"slipway.dev/created-by-push": push.actor}},
            "spec": {}
        }))
        .map_err(kube::Error::SerdeError)?;
        match streams.create(&PostParams::default(), &stream).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
        outcome = record().await?;
    }
    tracing::info!(
        namespace = %push.namespace, stream = %push.stream, tag = %push.tag, digest = %push.digest,
        actor = %push.actor, outcome = ?outcome, "registry push"
    );
    Ok(outcome)
}

/// Whether `actor` (a token's subject) may create ImageStreams in `namespace`. A service
/// account's groups follow from its name; a user's are not known here, so only rights granted to
/// the user by name (or to every authenticated user) count.
async fn may_create_stream(client: &Client, actor: &str, namespace: &str) -> Result<bool, kube::Error> {
    if actor.is_empty() {
        return Ok(false);
    }
    let groups = match slipway_client::names::service_account_of(actor) {
        Some((account_namespace, _)) => slipway_client::names::service_account_groups(account_namespace),
        None => vec!["system:authenticated".to_string()],
    };
    let spec = SubjectAccessReviewSpec {
        user: Some(actor.to_string()),
        groups: Some(groups),
        resource_attributes: Some(ResourceAttributes {
            group: Some(slipway_crds::GROUP.into()),
            resource: Some("imagestreams".into()),
            verb: Some("create".into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    crate::access::allowed(client, spec).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf";

    fn event(action: &str, media_type: &str, repository: &str, tag: &str) -> serde_json::Value {
        json!({
            "id": "1", "timestamp": "2026-12-06T00:00:00Z", "action": action,
            "target": {"mediaType": media_type, "size": 708, "digest": DIGEST, "length": 708,
                       "repository": repository, "url": "http://r/v2/x", "tag": tag},
            "request": {"id": "r", "addr": "10.0.0.1:5000", "host": "r", "method": "PUT", "useragent": "buildah"},
            "actor": {"name": "system:serviceaccount:team:builder"},
            "source": {"addr": "registry:5000", "instanceID": "i"}
        })
    }

    #[test]
    fn only_tagged_manifest_pushes_to_project_repositories_count() {
        let oci = MANIFEST_TYPES[0];
        let body = json!({"events": [
            event("push", oci, "team/web", "latest"),
            event("push", "application/vnd.oci.image.layer.v1.tar+gzip", "team/web", ""),
            event("pull", oci, "team/web", "latest"),
            event("push", oci, "team/web", ""),
            event("push", oci, "library/deep/web", "v1"),
            event("push", oci, "Team/web", "v1"),
            event("push", oci, "team/web", "bad tag"),
        ]});
        let found = pushes(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            found,
            vec![Pushed {
                namespace: "team".into(),
                stream: "web".into(),
                tag: "latest".into(),
                digest: DIGEST.into(),
                actor: "system:serviceaccount:team:builder".into(),
                at: Some("2026-12-06T00:00:00Z".parse().unwrap()),
            }]
        );
        assert!(pushes(b"{").unwrap_err().contains("not a registry notification"));
        assert!(pushes(b"[]").is_err());
        let many = json!({"events": vec![json!({}); MAX_EVENTS + 1]});
        assert!(
            pushes(many.to_string().as_bytes())
                .unwrap_err()
                .contains("more than")
        );
    }

    #[test]
    fn only_the_shared_secret_authorizes() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, v.parse().unwrap());
            h
        };
        assert!(authorized(&with("Bearer s3cret"), "s3cret"));
        assert!(!authorized(&with("Bearer s3cre"), "s3cret"));
        assert!(!authorized(&with("Basic s3cret"), "s3cret"));
        assert!(!authorized(&HeaderMap::new(), "s3cret"));
        assert!(!authorized(&with("Bearer "), ""));
    }
}
