//! The HTTP side of git webhooks: limits, authentication against the trigger's Secret,
//! redelivery detection, and the Build.
//!
//! Answers: 201 with the new Build's name; 200 for a ping or a redelivery (naming the Build it
//! already made); 202 with the reason when the push builds nothing; 400 malformed payload;
//! 401 for an unknown BuildConfig, a missing trigger or a bad signature alike; 408 body too slow;
//! 409 paused BuildConfig; 413 body over 3 MiB; 415 not JSON; 503 the API server failed.
//!
//! The reads of BuildConfigs and Secrets and the Build creation use the server's own client (its
//! service account), never the caller's claims.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde::Serialize;
use slipway_crds::build::{WebHookTrigger, labels};
use slipway_crds::{Build, BuildConfig};
use slipway_operator::build::instantiate::{InstantiateError, instantiate};

use super::verify::{SECRET_KEY, verify};
use super::{DELIVERY_LABEL, Decision, Delivery, Provider, decide, delivery_key, payload};

/// The largest delivery accepted (GitHub caps its payloads at 25 MB, but a push that large is not
/// a build trigger anyone needs; the issue sets 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// How long a client may take to send the body once the headers are in.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The optional header a generic caller sets to make otherwise identical deliveries distinct.
pub const GENERIC_DELIVERY_HEADER: &str = "x-slipway-delivery";
/// The one answer to every failed authentication, so that nothing tells whether the BuildConfig
/// or the trigger exists.
const UNAUTHORIZED: &str = "the delivery is not authorized: no webhook trigger of this kind accepts its signature for this BuildConfig";

/// The state of the git webhook routes.
#[derive(Clone)]
pub struct GitHooks {
    client: Client,
    /// Deliveries being handled, by delivery key: the second copy of a delivery waits for the first
    /// and answers with its Build.
    in_flight: Arc<Mutex<HashMap<String, InFlight>>>,
    /// Deliveries this process handled lately, by key: the Build each made.
    recent: Arc<Mutex<Recent>>,
}

/// The last [`Recent::CAPACITY`] deliveries and their Builds, oldest forgotten first.
#[derive(Default)]
struct Recent {
    names: HashMap<String, String>,
    order: std::collections::VecDeque<String>,
}

impl Recent {
    const CAPACITY: usize = 4096;

    fn get(&self, key: &str) -> Option<String> {
        self.names.get(key).cloned()
    }

    fn insert(&mut self, key: &str, name: &str) {
        if self.names.insert(key.to_string(), name.to_string()).is_none() {
            self.order.push_back(key.to_string());
        }
        while self.order.len() > Self::CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.names.remove(&old);
            }
        }
    }
}

/// One delivery being handled: the Build it made, once it has made one.
type InFlight = Arc<tokio::sync::Mutex<Option<String>>>;

/// The JSON body of every answer.
#[derive(Serialize, Debug)]
struct Answer {
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    build: Option<String>,
}

fn answer(status: StatusCode, message: impl Into<String>, build: Option<String>) -> Response {
    (
        status,
        Json(Answer {
            message: message.into(),
            build,
        }),
    )
        .into_response()
}

/// The router of the git webhooks.
pub fn router(client: Client) -> Router {
    Router::new()
        .route("/webhooks/{namespace}/{buildconfig}/{provider}", post(receive))
        .with_state(GitHooks {
            client,
            in_flight: Default::default(),
            recent: Default::default(),
        })
}

fn is_json(headers: &HeaderMap) -> Option<bool> {
    let value = headers.get(header::CONTENT_TYPE)?;
    let media = value.to_str().ok().unwrap_or_default();
    let essence = media
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    Some(essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json")))
}

async fn receive(
    State(hooks): State<GitHooks>,
    Path((namespace, config_name, segment)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(provider) = Provider::from_segment(&segment) else {
        return answer(
            StatusCode::NOT_FOUND,
            format!(
                "unknown provider {segment:?}: the URL ends in github, gitlab, bitbucket, gitea or generic"
            ),
            None,
        );
    };
    let json = is_json(&headers);
    // A generic caller may send no body (and then no content type); everything else is JSON.
    if json == Some(false) || (json.is_none() && provider != Provider::Generic) {
        return answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "deliveries must be sent as application/json (in GitHub's webhook settings, choose the content type application/json)",
            None,
        );
    }
    let too_large = || {
        answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the delivery is larger than {MAX_BODY_BYTES} bytes"),
            None,
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let body =
        match tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(body, MAX_BODY_BYTES).collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.is::<LengthLimitError>() => return too_large(),
            Ok(Err(e)) => {
                return answer(
                    StatusCode::BAD_REQUEST,
                    format!("reading the delivery: {e}"),
                    None,
                );
            }
            Err(_) => {
                return answer(
                    StatusCode::REQUEST_TIMEOUT,
                    format!("the body did not arrive within {} s", BODY_READ_TIMEOUT.as_secs()),
                    None,
                );
            }
        };
    if json.is_none() && !body.is_empty() {
        return answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a delivery with a body must be sent as application/json",
            None,
        );
    }
    let delivery_id = [
        "x-github-delivery",
        "x-gitea-delivery",
        "x-forgejo-delivery",
        "x-gitlab-event-uuid",
        "x-request-uuid",
        "x-request-id",
        GENERIC_DELIVERY_HEADER,
    ]
    .into_iter()
    .find_map(|name| headers.get(name))
    .and_then(|v| v.to_str().ok())
    .map(|v| v.chars().take(128).collect::<String>());
    let log = |status: StatusCode, detail: &str, build: Option<&str>| {
        tracing::info!(
            namespace = %namespace,
            buildconfig = %config_name,
            provider = provider.segment(),
            delivery = delivery_id.as_deref().unwrap_or_default(),
            status = status.as_u16(),
            build = build.unwrap_or_default(),
            detail,
            "git webhook"
        );
    };

    let generic_extra = (provider == Provider::Generic)
        .then(|| headers.get(GENERIC_DELIVERY_HEADER).and_then(|v| v.to_str().ok()))
        .flatten();
    let delivery = Delivery {
        id: delivery_id.clone(),
        key: delivery_key(&namespace, &config_name, provider, generic_extra, &body),
    };
    let (config, trigger, earlier) = match hooks
        .authenticate(&namespace, &config_name, provider, &headers, &body, &delivery.key)
        .await
    {
        Ok(Ok(found)) => found,
        Ok(Err(why)) => {
            log(StatusCode::UNAUTHORIZED, &why, None);
            return answer(StatusCode::UNAUTHORIZED, UNAUTHORIZED, None);
        }
        Err(e) => {
            log(StatusCode::SERVICE_UNAVAILABLE, &e.to_string(), None);
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "the delivery could not be checked because the Kubernetes API failed; the provider may redeliver it",
                None,
            );
        }
    };
    let event = match payload::parse(provider, &headers, &body) {
        Ok(event) => event,
        Err(e) => {
            log(StatusCode::BAD_REQUEST, &e.to_string(), None);
            return answer(StatusCode::BAD_REQUEST, e.to_string(), None);
        }
    };
    let request = match decide(provider, &trigger, &config, event, &delivery) {
        Decision::Pong => {
            log(StatusCode::OK, "ping", None);
            return answer(
                StatusCode::OK,
                "pong: the webhook is set up; pushes will start builds",
                None,
            );
        }
        Decision::Skip(reason) => {
            log(StatusCode::ACCEPTED, &reason, None);
            return answer(StatusCode::ACCEPTED, reason, None);
        }
        Decision::Build(request) => request,
    };
    let (status, message, build) = hooks
        .build_once(&namespace, &config_name, &delivery.key, &request, earlier)
        .await;
    log(status, &message, build.as_deref());
    answer(status, message, build)
}

impl GitHooks {
    /// The BuildConfig and the trigger whose secret verifies the delivery, or (inner Err) why
    /// none does — for the log only. The outer Err is an API failure other than "not found".
    ///
    /// Once the BuildConfig is known to exist, the Build an earlier copy of the delivery made is
    /// looked up while the Secret is read (one round trip fewer on the way to a Build); the third
    /// value is that lookup's answer, None when it failed.
    async fn authenticate(
        &self,
        namespace: &str,
        name: &str,
        provider: Provider,
        headers: &HeaderMap,
        body: &[u8],
        key: &str,
    ) -> Result<Result<(BuildConfig, WebHookTrigger, Option<Option<String>>), String>, kube::Error> {
        let configs: Api<BuildConfig> = Api::namespaced(self.client.clone(), namespace);
        let Some(config) = configs.get_opt(name).await? else {
            return Ok(Err("no such buildconfig".into()));
        };
        let triggers: Vec<WebHookTrigger> = config
            .spec
            .triggers
            .iter()
            .filter_map(|t| provider.trigger(t).cloned())
            .collect();
        if triggers.is_empty() {
            return Ok(Err(format!(
                "the buildconfig has no {} trigger",
                provider.segment()
            )));
        }
        let (verified, earlier) = tokio::join!(
            self.verifying_trigger(namespace, provider, triggers, headers, body),
            self.delivered_build(namespace, name, key),
        );
        Ok(verified?.map(|trigger| (config, trigger, earlier.ok())))
    }

    /// The first of `triggers` whose secret verifies the delivery, or why none does.
    async fn verifying_trigger(
        &self,
        namespace: &str,
        provider: Provider,
        triggers: Vec<WebHookTrigger>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Result<WebHookTrigger, String>, kube::Error> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let mut reasons = Vec::new();
        for trigger in triggers {
            let secret = match (&trigger.secret_reference, &trigger.secret) {
                (Some(reference), _) => match secrets.get_opt(&reference.name).await? {
                    Some(found) => found
                        .data
                        .and_then(|mut data| data.remove(SECRET_KEY))
                        .map(|bytes| bytes.0),
                    None => {
                        reasons.push(format!("secret {} does not exist", reference.name));
                        continue;
                    }
                },
                (None, Some(inline)) => Some(inline.clone().into_bytes()),
                (None, None) => None,
            };
            let Some(secret) = secret.filter(|s| !s.is_empty()) else {
                reasons.push(format!(
                    "the trigger has no secret (key {SECRET_KEY} of its secretReference)"
                ));
                continue;
            };
            match verify(provider, headers, body, &secret) {
                Ok(()) => return Ok(Ok(trigger)),
                Err(e) => reasons.push(e.to_string()),
            }
        }
        Ok(Err(reasons.join("; ")))
    }

    /// The Build labelled with this delivery's key, if any.
    async fn delivered_build(
        &self,
        namespace: &str,
        config: &str,
        key: &str,
    ) -> Result<Option<String>, kube::Error> {
        let builds: Api<Build> = Api::namespaced(self.client.clone(), namespace);
        let selector = format!("{DELIVERY_LABEL}={key},{}={config}", labels::BUILD_CONFIG);
        let existing = builds
            .list_metadata(&ListParams::default().labels(&selector))
            .await?;
        Ok(existing.items.first().map(|b| b.name_any()))
    }

    /// Starts the build for a delivery unless the delivery already started one: concurrent
    /// copies wait for the first, copies this process handled lately are remembered, and older
    /// ones are found by label (`earlier`, looked up before; None: look it up now).
    ///
    /// `earlier` may have been read while a copy was being handled here; that copy is then in
    /// the in-flight or the recent map, which are consulted first.
    async fn build_once(
        &self,
        namespace: &str,
        config: &str,
        key: &str,
        request: &slipway_crds::build::BuildRequest,
        earlier: Option<Option<String>>,
    ) -> (StatusCode, String, Option<String>) {
        let cell = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            in_flight.entry(key.to_string()).or_default().clone()
        };
        let outcome = {
            let mut slot = cell.lock().await;
            let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner()).get(key);
            let outcome = match (slot.clone().or(recent), earlier) {
                (Some(name), _) | (None, Some(Some(name))) => Ok((false, name)),
                (None, Some(None)) => instantiate(&self.client, namespace, config, request)
                    .await
                    .map(|build| (true, build.name_any())),
                (None, None) => self.find_or_instantiate(namespace, config, key, request).await,
            };
            if let Ok((_, name)) = &outcome {
                *slot = Some(name.clone());
                self.recent
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, name);
            }
            outcome
        };
        {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            // Only the map and this task hold the cell: nobody waits on it any more.
            if Arc::strong_count(&cell) == 2 {
                in_flight.remove(key);
            }
        }
        match outcome {
            Ok((true, name)) => (StatusCode::CREATED, format!("build {name} started"), Some(name)),
            Ok((false, name)) => (
                StatusCode::OK,
                format!("this delivery was received before and started build {name}; no new build"),
                Some(name),
            ),
            Err(InstantiateError::Paused { namespace, name }) => (
                StatusCode::CONFLICT,
                format!("buildconfig {namespace}/{name} is paused; no build was started"),
                None,
            ),
            Err(InstantiateError::NotFound { .. }) => {
                (StatusCode::UNAUTHORIZED, UNAUTHORIZED.to_string(), None)
            }
            Err(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the build could not be started: {e}; the provider may redeliver"),
                None,
            ),
        }
    }

    /// (created, name) of the Build for this delivery.
    async fn find_or_instantiate(
        &self,
        namespace: &str,
        config: &str,
        key: &str,
        request: &slipway_crds::build::BuildRequest,
    ) -> Result<(bool, String), InstantiateError> {
        if let Some(name) = self.delivered_build(namespace, config, key).await? {
            return Ok((false, name));
        }
        let build = instantiate(&self.client, namespace, config, request).await?;
        Ok((true, build.name_any()))
    }
}
