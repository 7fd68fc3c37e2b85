//! The HTTP side of git webhooks: limits, authentication against the trigger's Secret,
//! redelivery detection, and the Build.
//!
//! Answers: 201 with the new Build's name; 200 for a ping or a redelivery (naming the Build it
//! already made); 202 with the reason when the push builds nothing; 400 malformed payload, or an
//! `env` that sets a reserved variable; 401 for an unknown BuildConfig, a missing trigger or a bad
//! signature alike; 408 body too slow; 409 paused BuildConfig; 413 body over 3 MiB (a generic
//! YAML body over 64 KiB); 415 not JSON (generic: neither JSON nor YAML); 503 the API server
//! failed, or too many deliveries are being read at once.
//!
//! Before the body is read, the BuildConfig, its trigger for the provider and the trigger's Secret
//! are looked up, and the headers checked against it (a token compared; a signature header
//! present and well-formed): a delivery to a BuildConfig that does not exist, or without
//! credentials, is answered 401 without reading its body. Bodies are then read within a budget
//! shared by all deliveries ([`MAX_BODIES_BYTES`], [`MAX_DELIVERIES`]); past it, 503 at once.
//!
//! The reads of BuildConfigs and Secrets and the Build creation use the server's own client (its
//! service account), never the caller's claims. BuildConfigs, webhook Secrets and the Builds of
//! earlier deliveries are read from watch-fed mirrors (`super::cache`) when they have them; a
//! verified push then costs two round trips: the build number's raise and the Build's creation.

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
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde::Serialize;
use slipway_client::instantiate::{InstantiateError, create_numbered, take_number};
use slipway_client::locks::KeyedLocks;
use slipway_crds::build::{WebHookTrigger, labels};
use slipway_crds::{Build, BuildConfig};

use super::cache::Caches;
use super::payload::{Encoding, MAX_YAML_BODY_BYTES};
use super::verify::{SECRET_KEY, check_headers, verify};
use super::{DELIVERY_LABEL, Decision, Delivery, Provider, decide, delivery_key, payload};

/// The largest delivery accepted (GitHub caps its payloads at 25 MB, but a push that large is not
/// a build trigger anyone needs; the issue sets 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// How long a client may take to send the body once the headers are in.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries handled at once; more are answered 503 at once (providers redeliver).
pub const MAX_DELIVERIES: usize = 128;
/// Bytes of bodies held at once by all deliveries (each reserves its Content-Length, or
/// [`MAX_BODY_BYTES`] when it declares none, before reading): with the chart's 128 Mi memory
/// limit, slow uploads cannot take the process down; past it, 503 at once.
pub const MAX_BODIES_BYTES: usize = 24 * 1024 * 1024;
/// The body budget is counted in units of this many bytes.
const BUDGET_UNIT: usize = 1024;
/// The optional header a generic caller sets to make otherwise identical deliveries distinct.
pub const GENERIC_DELIVERY_HEADER: &str = "x-slipway-delivery";
/// The one answer to every failed authentication, so that nothing tells whether the BuildConfig
/// or the trigger exists.
const UNAUTHORIZED: &str = "the delivery is not authorized: no webhook trigger of this kind accepts its signature for this BuildConfig";

/// The state of the git webhook routes.
#[derive(Clone)]
pub struct GitHooks {
    client: Client,
    /// BuildConfigs, webhook Secrets and delivered Builds, mirrored.
    caches: Caches,
    /// Deliveries being handled, by delivery key: the second copy of a delivery waits for the first
    /// and answers with its Build (the value: the Build made, once one is).
    in_flight: Arc<KeyedLocks<String, Option<String>>>,
    /// Deliveries this process handled lately, by key: the Build each made.
    recent: Arc<Mutex<Recent>>,
    /// Build numbers being taken, by namespace and BuildConfig, one at a time in this process (see
    /// [`GitHooks::instantiate`]); the value is the BuildConfig as the last raise returned it.
    lanes: Arc<KeyedLocks<(String, String), Option<BuildConfig>>>,
    /// One permit per delivery being handled ([`MAX_DELIVERIES`]).
    deliveries: Arc<tokio::sync::Semaphore>,
    /// One permit per [`BUDGET_UNIT`] of body being read or held ([`MAX_BODIES_BYTES`]).
    body_budget: Arc<tokio::sync::Semaphore>,
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

/// The router of the git webhooks, reading through `caches`.
pub fn router(client: Client, caches: Caches) -> Router {
    Router::new()
        .route("/webhooks/{namespace}/{buildconfig}/{provider}", post(receive))
        .with_state(GitHooks {
            client,
            caches,
            in_flight: Default::default(),
            recent: Default::default(),
            lanes: Default::default(),
            deliveries: Arc::new(tokio::sync::Semaphore::new(MAX_DELIVERIES)),
            body_budget: Arc::new(tokio::sync::Semaphore::new(MAX_BODIES_BYTES / BUDGET_UNIT)),
        })
}

/// 503, at once: the server is at its limit.
fn busy(what: &str) -> Response {
    answer(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{what}; the provider may redeliver later"),
        None,
    )
}

/// Why a body was not read.
enum ReadError {
    /// More than the limit: the caller says which limit.
    TooLarge,
    /// Answered already (the client failed, or was too slow).
    Answered(Response),
}

/// Reads the body, at most `limit` bytes within [`BODY_READ_TIMEOUT`], into one buffer.
async fn read_body(body: Body, limit: usize, declared: Option<usize>) -> Result<bytes::Bytes, ReadError> {
    let reading = async {
        let mut body = body;
        let mut buffer = Vec::with_capacity(declared.unwrap_or(0).min(limit));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                ReadError::Answered(answer(
                    StatusCode::BAD_REQUEST,
                    format!("reading the delivery: {e}"),
                    None,
                ))
            })?;
            if let Ok(data) = frame.into_data() {
                if buffer.len() + data.len() > limit {
                    return Err(ReadError::TooLarge);
                }
                buffer.extend_from_slice(&data);
            }
        }
        Ok(bytes::Bytes::from(buffer))
    };
    match tokio::time::timeout(BODY_READ_TIMEOUT, reading).await {
        Ok(read) => read,
        Err(_) => Err(ReadError::Answered(answer(
            StatusCode::REQUEST_TIMEOUT,
            format!("the body did not arrive within {} s", BODY_READ_TIMEOUT.as_secs()),
            None,
        ))),
    }
}

/// Answers a delivery: its content type and declared size → a delivery slot → what the headers
/// alone prove ([`GitHooks::admit`]) → the body, within the shared budget → the delivery
/// verified, parsed and decided, and its Build ([`GitHooks::deliver`]).
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
    let encoding = payload::encoding(&headers);
    if let Some(refused) = encoding_refusal(provider, encoding.as_ref()) {
        return refused;
    }
    let limit = BodyLimit::new(encoding == Some(Ok(Encoding::Yaml)));
    let declared = declared_length(&headers);
    if declared.is_some_and(|len| len > limit.max as u64) {
        return limit.too_large();
    }
    let declared = declared.and_then(|len| usize::try_from(len).ok());
    let Ok(_delivery_slot) = hooks.deliveries.clone().try_acquire_owned() else {
        return busy(&format!("{MAX_DELIVERIES} deliveries are being handled"));
    };
    // Before the body: the BuildConfig, its trigger and what the headers alone can prove.
    if let Err(refused) = hooks.admit(&namespace, &config_name, provider, &headers).await {
        return refused;
    }
    let (body, _body_permit) = match hooks.read_within_budget(body, &limit, declared).await {
        Ok(read) => read,
        Err(refused) => return refused,
    };
    if encoding.is_none() && !body.is_empty() {
        return answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a delivery with a body must be sent as application/json (or, generic only, application/yaml)",
            None,
        );
    }
    let call = Call {
        namespace,
        config_name,
        provider,
        delivery_id: delivery_id(&headers),
    };
    hooks.deliver(&call, &headers, body).await
}

/// 415 when the content type does not suit the provider: JSON; for generic callers YAML too,
/// or none.
fn encoding_refusal(provider: Provider, encoding: Option<&Result<Encoding, String>>) -> Option<Response> {
    match (encoding, provider) {
        (Some(Ok(Encoding::Json)), _) | (None | Some(Ok(Encoding::Yaml)), Provider::Generic) => None,
        (Some(Err(media)), Provider::Generic) => Some(answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("generic deliveries must be sent as application/json or application/yaml, not {media:?}"),
            None,
        )),
        // A generic caller may send no body (and then no content type); everything else is JSON.
        _ => Some(answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "deliveries must be sent as application/json (in GitHub's webhook settings, choose the content type application/json)",
            None,
        )),
    }
}

/// The most a delivery's body may have: [`MAX_BODY_BYTES`], or [`MAX_YAML_BODY_BYTES`] for YAML.
struct BodyLimit {
    max: usize,
    yaml: bool,
}

impl BodyLimit {
    /// The limit for a YAML body or another.
    fn new(yaml: bool) -> Self {
        let max = if yaml { MAX_YAML_BODY_BYTES } else { MAX_BODY_BYTES };
        Self { max, yaml }
    }

    /// 413, naming the limit.
    fn too_large(&self) -> Response {
        let what = if self.yaml {
            "a YAML delivery"
        } else {
            "the delivery"
        };
        answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{what} is larger than {} bytes", self.max),
            None,
        )
    }
}

/// The Content-Length the client declares, if any.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// The provider's delivery id, from the first header of the providers' that is there (at most
/// 128 characters).
fn delivery_id(headers: &HeaderMap) -> Option<String> {
    [
        "x-github-delivery",
        "x-gitea-delivery",
        "x-forgejo-delivery",
        "x-gogs-delivery",
        "x-gitlab-event-uuid",
        "x-request-uuid",
        "x-request-id",
        GENERIC_DELIVERY_HEADER,
    ]
    .into_iter()
    .find_map(|name| headers.get(name))
    .and_then(|v| v.to_str().ok())
    .map(|v| v.chars().take(128).collect::<String>())
}

/// 503: the Kubernetes API failed while the delivery was being checked.
fn api_failed() -> Response {
    answer(
        StatusCode::SERVICE_UNAVAILABLE,
        "the delivery could not be checked because the Kubernetes API failed; the provider may redeliver it",
        None,
    )
}

/// A delivery whose body was read: where it was sent and the provider's delivery id, for the log.
struct Call {
    namespace: String,
    config_name: String,
    provider: Provider,
    delivery_id: Option<String>,
}

impl Call {
    /// Logs how the delivery was answered.
    fn log(&self, status: StatusCode, detail: &str, build: Option<&str>) {
        tracing::info!(
            namespace = %self.namespace,
            buildconfig = %self.config_name,
            provider = self.provider.segment(),
            delivery = self.delivery_id.as_deref().unwrap_or_default(),
            status = status.as_u16(),
            build = build.unwrap_or_default(),
            detail,
            "git webhook"
        );
    }
}

/// The delivery's event, and what the trigger makes of it: the build request, or (logged) the
/// status and message of the answer (200 ping, 202 skipped, 400 malformed or refused).
fn decide_delivery(
    call: &Call,
    (config, trigger): (&BuildConfig, &WebHookTrigger),
    headers: &HeaderMap,
    body: &[u8],
    delivery: &Delivery,
) -> Result<Box<slipway_crds::build::BuildRequest>, (StatusCode, String)> {
    let event = match payload::parse(call.provider, headers, body) {
        Ok(event) => event,
        Err(e) => {
            call.log(StatusCode::BAD_REQUEST, &e.to_string(), None);
            return Err((StatusCode::BAD_REQUEST, e.to_string()));
        }
    };
    match decide(call.provider, trigger, config, event, delivery) {
        Decision::Pong => {
            call.log(StatusCode::OK, "ping", None);
            Err((
                StatusCode::OK,
                "pong: the webhook is set up; pushes will start builds".to_string(),
            ))
        }
        Decision::Skip(reason) => {
            call.log(StatusCode::ACCEPTED, &reason, None);
            Err((StatusCode::ACCEPTED, reason))
        }
        Decision::Refuse(reason) => {
            call.log(StatusCode::BAD_REQUEST, &reason, None);
            Err((StatusCode::BAD_REQUEST, reason))
        }
        Decision::Build(request) => Ok(request),
    }
}

impl GitHooks {
    /// Nothing when the headers alone may come from a trigger of the BuildConfig
    /// ([`GitHooks::check_before_body`]); else the answer, 401 or 503, the body unread.
    async fn admit(
        &self,
        namespace: &str,
        config_name: &str,
        provider: Provider,
        headers: &HeaderMap,
    ) -> Result<(), Response> {
        match self
            .check_before_body(namespace, config_name, provider, headers)
            .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => {
                tracing::info!(namespace = %namespace, buildconfig = %config_name, provider = provider.segment(),
                    status = 401, detail = %why, "git webhook (body not read)");
                Err(answer(StatusCode::UNAUTHORIZED, UNAUTHORIZED, None))
            }
            Err(e) => {
                tracing::info!(namespace = %namespace, buildconfig = %config_name, status = 503,
                    detail = %e, "git webhook (body not read)");
                Err(api_failed())
            }
        }
    }

    /// Reserves the body's share of [`MAX_BODIES_BYTES`] (its declared length, else the limit)
    /// and reads it; the body and the reservation, held as long as the body is. 503 when the
    /// budget is spent, 413 over the limit, 400 or 408 when the client fails.
    async fn read_within_budget(
        &self,
        body: Body,
        limit: &BodyLimit,
        declared: Option<usize>,
    ) -> Result<(bytes::Bytes, tokio::sync::OwnedSemaphorePermit), Response> {
        let most = declared.unwrap_or(limit.max);
        let units = u32::try_from(most.div_ceil(BUDGET_UNIT).max(1)).unwrap_or(u32::MAX);
        let Ok(permit) = self.body_budget.clone().try_acquire_many_owned(units) else {
            return Err(busy(&format!(
                "the deliveries being read hold {MAX_BODIES_BYTES} bytes, the most this server holds"
            )));
        };
        match read_body(body, most, declared).await {
            Ok(body) => Ok((body, permit)),
            Err(ReadError::TooLarge) => Err(limit.too_large()),
            Err(ReadError::Answered(refused)) => Err(refused),
        }
    }

    /// Handles a delivery whose body was read: verifies it against the trigger's secret, decides
    /// what its event asks for, and starts the Build once; the answer, logged.
    async fn deliver(&self, call: &Call, headers: &HeaderMap, body: bytes::Bytes) -> Response {
        let generic_extra = (call.provider == Provider::Generic)
            .then(|| headers.get(GENERIC_DELIVERY_HEADER).and_then(|v| v.to_str().ok()))
            .flatten();
        let delivery = Delivery {
            id: call.delivery_id.clone(),
            key: delivery_key(
                &call.namespace,
                &call.config_name,
                call.provider,
                generic_extra,
                &body,
            ),
        };
        let (config, trigger) = match self
            .authenticate(&call.namespace, &call.config_name, call.provider, headers, &body)
            .await
        {
            Ok(Ok(found)) => found,
            Ok(Err(why)) => {
                call.log(StatusCode::UNAUTHORIZED, &why, None);
                return answer(StatusCode::UNAUTHORIZED, UNAUTHORIZED, None);
            }
            Err(e) => {
                call.log(StatusCode::SERVICE_UNAVAILABLE, &e.to_string(), None);
                return api_failed();
            }
        };
        let request = match decide_delivery(call, (&config, &trigger), headers, &body, &delivery) {
            Ok(request) => request,
            Err((status, message)) => return answer(status, message, None),
        };
        let (status, message, build) = self
            .build_detached(call, config, trigger, delivery.key, request)
            .await;
        call.log(status, &message, build.as_deref());
        answer(status, message, build)
    }

    /// [`GitHooks::build_once`] in a task of its own, run to the end even if the caller hangs up
    /// meanwhile (the handler's future is then dropped): a build number once taken must become
    /// its Build, or the numbers would have a gap.
    async fn build_detached(
        &self,
        call: &Call,
        config: Arc<BuildConfig>,
        trigger: WebHookTrigger,
        key: String,
        request: Box<slipway_crds::build::BuildRequest>,
    ) -> (StatusCode, String, Option<String>) {
        let (hooks, namespace, provider) = (self.clone(), call.namespace.clone(), call.provider);
        let building = tokio::spawn(async move {
            hooks
                .build_once(&namespace, &config, (provider, &trigger), &key, &request)
                .await
        });
        building.await.unwrap_or_else(|e| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("starting the build failed: {e}"),
                None,
            )
        })
    }
}

impl GitHooks {
    /// The BuildConfig and the trigger whose secret verifies the delivery, or (inner Err) why
    /// none does — for the log only. The outer Err is an API failure other than "not found".
    ///
    /// The mirrored BuildConfig and Secrets are tried first; when they do not verify the delivery
    /// (or the mirror lacks them) the API server is asked, so that a BuildConfig, trigger or secret
    /// changed a moment ago is seen.
    async fn authenticate(
        &self,
        namespace: &str,
        name: &str,
        provider: Provider,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Result<(Arc<BuildConfig>, WebHookTrigger), String>, kube::Error> {
        let check = |secret: &[u8]| verify(provider, headers, body, secret);
        self.verified_config(namespace, name, provider, check).await
    }

    /// Whether the headers alone may come from a trigger of the BuildConfig (`check_headers`),
    /// or (inner Err) why not, for the log: what is checked before the body is read. The outer
    /// Err is an API failure other than "not found".
    async fn check_before_body(
        &self,
        namespace: &str,
        name: &str,
        provider: Provider,
        headers: &HeaderMap,
    ) -> Result<Result<(), String>, kube::Error> {
        let check = |secret: &[u8]| check_headers(provider, headers, secret);
        let checked = self.verified_config(namespace, name, provider, check).await?;
        Ok(checked.map(|_| ()))
    }

    /// The BuildConfig and the trigger whose secret passes `check`: the mirrored ones first, then
    /// (when they do not pass, or the mirror lacks them) as the API server has them now.
    async fn verified_config(
        &self,
        namespace: &str,
        name: &str,
        provider: Provider,
        check: impl Fn(&[u8]) -> Result<(), super::verify::VerifyError>,
    ) -> Result<Result<(Arc<BuildConfig>, WebHookTrigger), String>, kube::Error> {
        if let Some(config) = self.caches.config(namespace, name)
            && let Ok(Ok(trigger)) = self
                .verifying_trigger(namespace, provider, &config, &check, true)
                .await
        {
            return Ok(Ok((config, trigger)));
        }
        let configs: Api<BuildConfig> = Api::namespaced(self.client.clone(), namespace);
        let Some(config) = configs.get_opt(name).await? else {
            return Ok(Err("no such buildconfig".into()));
        };
        let verified = self
            .verifying_trigger(namespace, provider, &config, &check, false)
            .await?;
        Ok(verified.map(|trigger| (Arc::new(config), trigger)))
    }

    /// The first of `config`'s triggers for `provider` whose secret passes `check` (the
    /// delivery verified, or its headers checked), or why none does. With `mirrored`, Secrets come
    /// from the mirror when they are in it.
    async fn verifying_trigger(
        &self,
        namespace: &str,
        provider: Provider,
        config: &BuildConfig,
        check: impl Fn(&[u8]) -> Result<(), super::verify::VerifyError>,
        mirrored: bool,
    ) -> Result<Result<WebHookTrigger, String>, kube::Error> {
        let triggers: Vec<&WebHookTrigger> = config
            .spec
            .triggers
            .iter()
            .filter_map(|t| provider.trigger(t))
            .collect();
        if triggers.is_empty() {
            return Ok(Err(format!(
                "the buildconfig has no {} trigger",
                provider.segment()
            )));
        }
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let mut reasons = Vec::new();
        for trigger in triggers {
            let secret = match (&trigger.secret_reference, &trigger.secret) {
                (Some(reference), _) => {
                    match mirrored
                        .then(|| self.caches.secret(namespace, &reference.name))
                        .flatten()
                    {
                        Some(mirrored) => Some(mirrored.to_vec()),
                        None => match secrets.get_opt(&reference.name).await? {
                            Some(found) => found
                                .data
                                .and_then(|mut data| data.remove(SECRET_KEY))
                                .map(|bytes| bytes.0),
                            None => {
                                reasons.push(format!("secret {} does not exist", reference.name));
                                continue;
                            }
                        },
                    }
                }
                (None, Some(inline)) => Some(inline.clone().into_bytes()),
                (None, None) => None,
            };
            let Some(secret) = secret.filter(|s| !s.is_empty()) else {
                reasons.push(format!(
                    "the trigger has no secret (key {SECRET_KEY} of its secretReference)"
                ));
                continue;
            };
            match check(&secret) {
                Ok(()) => return Ok(Ok(trigger.clone())),
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
    /// ones are found by label (in the mirror of delivered Builds, else in the API server).
    ///
    /// The mirror lags the API server by a watch event: a copy handled here is in the in-flight
    /// or the recent map, which are consulted first; a copy handled by another replica within
    /// that lag may build again (as two copies arriving at two replicas at once always could).
    async fn build_once(
        &self,
        namespace: &str,
        config: &BuildConfig,
        trigger: (Provider, &WebHookTrigger),
        key: &str,
        request: &slipway_crds::build::BuildRequest,
    ) -> (StatusCode, String, Option<String>) {
        let config_name = config.name_any();
        if slipway_crds::build::needs_binary_input(config) {
            return (
                StatusCode::CONFLICT,
                format!(
                    "buildconfig {namespace}/{config_name} builds uploaded (binary) source, which a webhook does not carry; start it with slip start-build --from-dir, --from-file, --from-archive or --from-repo"
                ),
                None,
            );
        }
        let outcome = {
            let mut slot = self.in_flight.lock(key.to_string()).await;
            let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner()).get(key);
            let known = slot.clone().or(recent);
            let earlier = known
                .is_none()
                .then(|| self.caches.delivered_build(namespace, &config_name, key))
                .flatten();
            let outcome = match (known, earlier) {
                (Some(name), _) | (None, Some(Some(name))) => Ok((false, name)),
                (None, Some(None)) => self
                    .instantiate(namespace, config, trigger, key, request)
                    .await
                    .map(Instantiated::outcome),
                (None, None) => {
                    self.find_or_instantiate(namespace, config, trigger, key, request)
                        .await
                }
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
        answer_outcome(outcome)
    }

    /// (created, name) of the Build for this delivery.
    async fn find_or_instantiate(
        &self,
        namespace: &str,
        config: &BuildConfig,
        trigger: (Provider, &WebHookTrigger),
        key: &str,
        request: &slipway_crds::build::BuildRequest,
    ) -> Result<(bool, String), InstantiateError> {
        let name = config.name_any();
        if let Some(build) = self.delivered_build(namespace, &name, key).await? {
            return Ok((false, build));
        }
        let instantiated = self.instantiate(namespace, config, trigger, key, request).await?;
        Ok(instantiated.outcome())
    }

    /// Starts the next build of `config` (`slipway_operator`'s instantiate, in its two halves).
    ///
    /// Deliveries to one BuildConfig arriving together would all raise its build number at once,
    /// and all but one would conflict, read it again and retry, round after round: a hundred of
    /// them took seconds. So this process takes the numbers of a BuildConfig one at a time, each
    /// raise starting from the freshest copy at hand (the previous raise's answer, the mirror's,
    /// the one the delivery was verified with) — usually the current one, so a delivery costs one
    /// write for its number and one for its Build, and the Builds are created outside the lane.
    /// Other writers (another replica, the operator, `slip start-build`) still race through the
    /// conflicts of the raise.
    ///
    /// The BuildConfig raised must still have the trigger that verified the delivery (the copy it
    /// was verified with may be a moment old), and must not have recorded the delivery: the raise
    /// records it (`status.webhookDeliveries`, [`record_delivery`]) in the same write, so of two
    /// copies of a delivery racing through two replicas one raises and the other, re-reading after
    /// its conflict, finds the record; and a copy arriving after its Build was pruned finds it too.
    async fn instantiate(
        &self,
        namespace: &str,
        config: &BuildConfig,
        (provider, trigger): (Provider, &WebHookTrigger),
        delivery: &str,
        request: &slipway_crds::build::BuildRequest,
    ) -> Result<Instantiated, InstantiateError> {
        let mut duplicate = None;
        let still_triggers = |current: &mut BuildConfig| {
            let kept = current
                .spec
                .triggers
                .iter()
                .filter_map(|t| provider.trigger(t))
                .any(|t| t == trigger);
            if !kept {
                return Err(format!("its {} trigger changed", provider.segment()));
            }
            record_delivery(current, delivery).map_err(|build| {
                duplicate = Some(build);
                "the delivery was recorded before".to_string()
            })
        };
        let key = (namespace.to_string(), config.name_any());
        let raised = {
            let mut last = self.lanes.lock(key.clone()).await;
            let mirrored = self.caches.config(namespace, &key.1);
            let known = freshest([last.as_ref(), mirrored.as_deref(), Some(config)]);
            let raised = take_number(&self.client, namespace, &key.1, known, still_triggers).await;
            *last = raised.as_ref().ok().cloned();
            raised
        };
        match (raised, duplicate) {
            (Err(InstantiateError::Refused { .. }), Some(build)) => Ok(Instantiated::Recorded(build)),
            (raised, _) => Ok(Instantiated::Created(
                create_numbered(&self.client, &raised?, request).await?.name_any(),
            )),
        }
    }
}

/// The answer to a delivery given what [`GitHooks::build_once`] found or did: 201 started, 200
/// started before, 409 paused, 401 gone or no longer triggered, 503 contended or the API failed.
fn answer_outcome(outcome: Result<(bool, String), InstantiateError>) -> (StatusCode, String, Option<String>) {
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
        // Deleted, or the trigger changed, since the delivery was verified (with a copy from the
        // mirror): as if the delivery had come a moment later.
        Err(InstantiateError::NotFound { .. } | InstantiateError::Refused { .. }) => {
            (StatusCode::UNAUTHORIZED, UNAUTHORIZED.to_string(), None)
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the build could not be started: {e}; the provider may redeliver"),
            None,
        ),
    }
}

/// What [`GitHooks::instantiate`] did.
enum Instantiated {
    /// Started the Build of this name.
    Created(String),
    /// Nothing: the BuildConfig had recorded the delivery, with the name of the Build it started.
    Recorded(String),
}

impl Instantiated {
    /// (created, name of the Build).
    fn outcome(self) -> (bool, String) {
        match self {
            Self::Created(name) => (true, name),
            Self::Recorded(name) => (false, name),
        }
    }
}

/// Records the delivery `key` in `config`'s status with the name of the Build the raise is about
/// to number (`lastVersion` + 1), forgetting deliveries older than the retention window and the
/// oldest beyond the count; Err with the Build's name when the delivery is recorded already.
pub fn record_delivery(config: &mut BuildConfig, key: &str) -> Result<(), String> {
    use slipway_crds::build::{MAX_WEBHOOK_DELIVERIES, WEBHOOK_DELIVERY_RETENTION_SECONDS};
    let name = config.name_any();
    let status = config.status.get_or_insert_with(Default::default);
    if let Some(earlier) = status.webhook_deliveries.iter().find(|r| r.key == key) {
        return Err(earlier.build.clone());
    }
    let now = k8s_openapi::jiff::Timestamp::now();
    status
        .webhook_deliveries
        .retain(|r| now.as_second() - r.time.0.as_second() < WEBHOOK_DELIVERY_RETENTION_SECONDS);
    status
        .webhook_deliveries
        .push(slipway_crds::build::WebHookDeliveryRecord {
            key: key.to_string(),
            build: slipway_crds::build::build_name(&name, status.last_version + 1),
            time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now),
        });
    let excess = status
        .webhook_deliveries
        .len()
        .saturating_sub(MAX_WEBHOOK_DELIVERIES);
    status.webhook_deliveries.drain(..excess);
    Ok(())
}

/// Of copies of one object, the one with the highest resourceVersion. resourceVersions are
/// opaque to clients; read as numbers (as the API server makes them) they only pick the copy to
/// try first: a wrong pick costs a conflict and a read, never a wrong number.
fn freshest<const N: usize>(copies: [Option<&BuildConfig>; N]) -> Option<&BuildConfig> {
    copies.into_iter().flatten().max_by_key(|c| {
        c.resource_version()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_answer() {
        let (status, message, build) = answer_outcome(Ok((true, "app-3".into())));
        assert_eq!((status, build.as_deref()), (StatusCode::CREATED, Some("app-3")));
        assert_eq!(message, "build app-3 started");
        let (status, _, build) = answer_outcome(Ok((false, "app-2".into())));
        assert_eq!((status, build.as_deref()), (StatusCode::OK, Some("app-2")));
        let named = |s: &str| (s.to_string(), "app".to_string());
        let (namespace, name) = named("ns");
        let (status, _, build) = answer_outcome(Err(InstantiateError::Paused { namespace, name }));
        assert_eq!((status, build), (StatusCode::CONFLICT, None));
        let (namespace, name) = named("ns");
        let (status, message, _) = answer_outcome(Err(InstantiateError::NotFound { namespace, name }));
        assert_eq!(
            (status, message.as_str()),
            (StatusCode::UNAUTHORIZED, UNAUTHORIZED)
        );
        let (namespace, name) = named("ns");
        let (status, _, _) = answer_outcome(Err(InstantiateError::Contended { namespace, name }));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn delivery_ids_and_declared_lengths() {
        let mut headers = HeaderMap::new();
        assert_eq!(delivery_id(&headers), None);
        headers.insert(GENERIC_DELIVERY_HEADER, "mine".parse().unwrap());
        assert_eq!(delivery_id(&headers).as_deref(), Some("mine"));
        headers.insert("x-github-delivery", "x".repeat(200).parse().unwrap());
        assert_eq!(
            delivery_id(&headers),
            Some("x".repeat(128)),
            "the provider's first, cut"
        );
        assert_eq!(declared_length(&headers), None);
        headers.insert(header::CONTENT_LENGTH, "12".parse().unwrap());
        assert_eq!(declared_length(&headers), Some(12));
        assert_eq!(BodyLimit::new(true).max, MAX_YAML_BODY_BYTES);
        assert_eq!(BodyLimit::new(false).max, MAX_BODY_BYTES);
    }

    #[test]
    fn encodings_by_provider() {
        let json = Some(Ok(Encoding::Json));
        let yaml = Some(Ok(Encoding::Yaml));
        let other = Some(Err("text/plain".to_string()));
        assert!(encoding_refusal(Provider::GitHub, json.as_ref()).is_none());
        assert!(encoding_refusal(Provider::Generic, yaml.as_ref()).is_none());
        assert!(encoding_refusal(Provider::Generic, None).is_none());
        for (provider, encoding) in [
            (Provider::GitHub, yaml.as_ref()),
            (Provider::GitHub, None),
            (Provider::Generic, other.as_ref()),
        ] {
            let refused = encoding_refusal(provider, encoding).expect("refused");
            assert_eq!(refused.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        }
    }
}
