//! Watch-fed mirrors of what a delivery reads, so that a verified delivery costs no API server
//! round trip before the build number is raised:
//!
//! - BuildConfigs (all of them, without managed fields and kubectl's last-applied annotation);
//! - the webhook secrets: the key `WebHookSecretKey` of the Secrets labelled
//!   [`labels::WEBHOOK_SECRET`] (`slip set triggers` labels the Secrets it writes; other Secrets are
//!   read from the API server at each delivery) — nothing else of any Secret is kept;
//! - which Build each delivery made: the metadata of the Builds labelled [`DELIVERY_LABEL`].
//!
//! A mirror answers only once its first list is complete and while its watch is healthy; when a
//! watch fails the mirror answers nothing (callers read the API server) until a fresh list is
//! complete. A BuildConfig or Secret the mirror does not have — e.g. created a moment ago — is read
//! from the API server. A mirror lags the API server by the time a watch event takes to arrive
//! (milliseconds): callers re-read when a mirrored copy refuses a delivery, and the build number is
//! raised with the copy's resourceVersion, so a stale copy never starts a build by itself.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use slipway_crds::build::labels;
use slipway_crds::{Build, BuildConfig};

use super::DELIVERY_LABEL;
use super::verify::SECRET_KEY;

/// The annotation `kubectl apply` keeps a whole copy of the object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The mirrors, fed by watches that run as long as a clone of this exists.
#[derive(Clone)]
pub struct Caches {
    configs: Arc<Mirror<Arc<BuildConfig>>>,
    secrets: Arc<Mirror<Arc<[u8]>>>,
    deliveries: Arc<Mirror<Delivered>>,
    /// Whether the webhook Secrets are watched at all.
    watch_secrets: bool,
    watches: Arc<Watches>,
}

/// A Build that a delivery made: its delivery key and BuildConfig.
#[derive(Clone, Debug, PartialEq)]
struct Delivered {
    key: String,
    config: String,
}

impl Caches {
    /// Starts the watches (on the current tokio runtime) with `client`'s rights: list and watch
    /// on buildconfigs, builds and secrets. Without a right, that mirror stays empty and every
    /// read goes to the API server.
    pub fn start(client: &Client) -> Self {
        Self::start_with(client, true)
    }

    /// [`Caches::start`]; without `watch_secrets`, no Secret is watched (the server needs only
    /// `get` on Secrets) and each delivery reads its Secret from the API server.
    pub fn start_with(client: &Client, watch_secrets: bool) -> Self {
        let configs = Arc::new(Mirror::default());
        let secrets = Arc::new(Mirror::default());
        let deliveries = Arc::new(Mirror::default());
        let mut watches = vec![
            tokio::spawn(feed(
                Api::<DeserializeGuard<BuildConfig>>::all(client.clone()),
                watcher::Config::default(),
                configs.clone(),
                config_entry,
                "buildconfigs",
            )),
            tokio::spawn(feed(
                Api::<PartialObjectMeta<Build>>::all(client.clone()),
                watcher::Config::default().labels(DELIVERY_LABEL),
                deliveries.clone(),
                delivery_entry,
                "webhook builds",
            )),
        ];
        if watch_secrets {
            watches.push(tokio::spawn(feed(
                Api::<Secret>::all(client.clone()),
                watcher::Config::default().labels(labels::WEBHOOK_SECRET),
                secrets.clone(),
                secret_entry,
                "webhook secrets",
            )));
        }
        Self {
            configs,
            secrets,
            deliveries,
            watch_secrets,
            watches: Arc::new(Watches(watches)),
        }
    }

    /// The mirrored BuildConfig; None: read it from the API server.
    pub fn config(&self, namespace: &str, name: &str) -> Option<Arc<BuildConfig>> {
        self.configs.get(namespace, name).into_option().flatten()
    }

    /// The mirrored secret (the key `WebHookSecretKey`) of Secret `name`; None: read it from the
    /// API server.
    pub fn secret(&self, namespace: &str, name: &str) -> Option<Arc<[u8]>> {
        self.secrets.get(namespace, name).into_option().flatten()
    }

    /// The Build that the delivery `key` to BuildConfig `config` made: Some(None) when the mirror
    /// knows of none, None when the mirror cannot tell (look it up in the API server).
    pub fn delivered_build(&self, namespace: &str, config: &str, key: &str) -> Option<Option<String>> {
        self.deliveries
            .find(namespace, |d| d.key == key && d.config == config)
            .into_option()
    }

    /// Whether every mirror has listed its objects and is watching (for tests and benchmarks).
    pub fn synced(&self) -> bool {
        self.configs.is_live() && (!self.watch_secrets || self.secrets.is_live()) && self.deliveries.is_live()
    }

    /// Stops the watches but keeps the mirrors answering with what they have: mirrors that lag
    /// as far as they can, for tests of what guards against a stale copy.
    pub fn freeze(&self) {
        self.watches.abort();
    }
}

/// The watch tasks; they stop when the last [`Caches`] goes.
struct Watches(Vec<tokio::task::JoinHandle<()>>);

impl Watches {
    fn abort(&self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl Drop for Watches {
    fn drop(&mut self) {
        self.abort();
    }
}

/// A mirror's answer.
#[derive(Debug, PartialEq)]
enum Cached<V> {
    /// The mirror cannot tell (not listed yet, or its watch failed).
    Unknown,
    /// The mirror is current and has nothing.
    Absent,
    Present(V),
}

impl<V> Cached<V> {
    /// None for Unknown, Some(None) for Absent.
    fn into_option(self) -> Option<Option<V>> {
        match self {
            Cached::Unknown => None,
            Cached::Absent => Some(None),
            Cached::Present(v) => Some(Some(v)),
        }
    }
}

/// Objects of one kind by namespace and name, reduced to a value `V`.
struct Mirror<V> {
    state: RwLock<MirrorState<V>>,
}

struct MirrorState<V> {
    /// Listed and watching: the objects are current (up to the watch's lag).
    live: bool,
    objects: Objects<V>,
    /// A list in progress; it replaces `objects` when complete.
    listing: Option<Objects<V>>,
}

type Objects<V> = HashMap<String, HashMap<String, V>>;

impl<V> Default for Mirror<V> {
    fn default() -> Self {
        Self {
            state: RwLock::new(MirrorState {
                live: false,
                objects: HashMap::new(),
                listing: None,
            }),
        }
    }
}

/// What a mirror keeps of an object: its namespace, name and value (None: the object is not
/// mirrored, e.g. it failed to deserialize — reads of it go to the API server).
type Entry<V> = (String, String, Option<V>);

impl<V: Clone> Mirror<V> {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, MirrorState<V>> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, MirrorState<V>> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn is_live(&self) -> bool {
        self.read().live
    }

    fn get(&self, namespace: &str, name: &str) -> Cached<V> {
        let state = self.read();
        if !state.live {
            return Cached::Unknown;
        }
        match state.objects.get(namespace).and_then(|names| names.get(name)) {
            Some(value) => Cached::Present(value.clone()),
            None => Cached::Absent,
        }
    }

    /// The name of an object of `namespace` whose value satisfies `predicate`.
    fn find(&self, namespace: &str, predicate: impl Fn(&V) -> bool) -> Cached<String> {
        let state = self.read();
        if !state.live {
            return Cached::Unknown;
        }
        state
            .objects
            .get(namespace)
            .and_then(|names| names.iter().find(|(_, v)| predicate(v)))
            .map_or(Cached::Absent, |(name, _)| Cached::Present(name.clone()))
    }

    /// Applies a watch event; true when a list has just completed.
    fn apply<K>(&self, event: watcher::Event<K>, entry: fn(K) -> Entry<V>) -> bool {
        let mut state = self.write();
        match event {
            watcher::Event::Init => {
                state.listing = Some(HashMap::new());
                false
            }
            watcher::Event::InitApply(object) => {
                if let (namespace, name, Some(value)) = entry(object) {
                    let listing = state.listing.get_or_insert_with(HashMap::new);
                    listing.entry(namespace).or_default().insert(name, value);
                }
                false
            }
            watcher::Event::InitDone => {
                state.objects = state.listing.take().unwrap_or_default();
                state.live = true;
                true
            }
            watcher::Event::Apply(object) => {
                let (namespace, name, value) = entry(object);
                match value {
                    Some(value) => {
                        state.objects.entry(namespace).or_default().insert(name, value);
                    }
                    None => remove(&mut state.objects, &namespace, &name),
                }
                false
            }
            watcher::Event::Delete(object) => {
                let (namespace, name, _) = entry(object);
                remove(&mut state.objects, &namespace, &name);
                false
            }
        }
    }

    /// The watch failed: answer nothing until the next complete list.
    fn lose(&self) {
        let mut state = self.write();
        state.live = false;
        state.listing = None;
    }
}

fn remove<V>(objects: &mut Objects<V>, namespace: &str, name: &str) {
    if let Some(names) = objects.get_mut(namespace) {
        names.remove(name);
        if names.is_empty() {
            objects.remove(namespace);
        }
    }
}

/// Feeds `mirror` from a watch of `api` for as long as the task runs. A failed watch is started
/// afresh (a new list) after a pause that doubles up to 30 s and resets once a list completes;
/// a forbidden one (the chart may grant only get on Secrets) is tried again every 5 minutes.
async fn feed<K, V>(
    api: Api<K>,
    config: watcher::Config,
    mirror: Arc<Mirror<V>>,
    entry: fn(K) -> Entry<V>,
    what: &'static str,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    V: Clone,
{
    const FIRST_PAUSE: Duration = Duration::from_millis(500);
    const FORBIDDEN_PAUSE: Duration = Duration::from_secs(300);
    let mut pause = FIRST_PAUSE;
    loop {
        let mut events = std::pin::pin!(watcher(api.clone(), config.clone()));
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => {
                    if mirror.apply(event, entry) {
                        pause = FIRST_PAUSE;
                        tracing::debug!(cache = what, "cache listed; watching");
                    }
                }
                Err(e) => {
                    mirror.lose();
                    if forbidden(&e) {
                        pause = FORBIDDEN_PAUSE;
                        tracing::info!(
                            cache = what,
                            "not allowed to list and watch {what}; each delivery reads them from the API server (trying again in 5 minutes)"
                        );
                    } else {
                        tracing::warn!(
                            cache = what,
                            error = %e,
                            retry_in_ms = pause.as_millis() as u64,
                            "watch failed; reading the API server instead until the cache is listed again"
                        );
                    }
                    break;
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(30));
    }
}

fn forbidden(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.is_forbidden(),
        watcher::Error::WatchError(status) => status.is_forbidden(),
        _ => false,
    }
}

fn place<K: Resource>(object: &K) -> (String, String) {
    let meta = object.meta();
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// A BuildConfig without what the webhook never reads and what takes the most room.
fn config_entry(guarded: DeserializeGuard<BuildConfig>) -> Entry<Arc<BuildConfig>> {
    match guarded.0 {
        Ok(mut config) => {
            let (namespace, name) = place(&config);
            config.metadata.managed_fields = None;
            config.annotations_mut().remove(LAST_APPLIED);
            (namespace, name, Some(Arc::new(config)))
        }
        Err(invalid) => (
            invalid.metadata.namespace.unwrap_or_default(),
            invalid.metadata.name.unwrap_or_default(),
            None,
        ),
    }
}

/// Of a Secret, only the key `WebHookSecretKey` (a labelled Secret without it is not mirrored:
/// its reads go to the API server, which answers the same).
fn secret_entry(secret: Secret) -> Entry<Arc<[u8]>> {
    let (namespace, name) = place(&secret);
    let value = secret
        .data
        .and_then(|mut data| data.remove(SECRET_KEY))
        .map(|bytes| Arc::from(bytes.0));
    (namespace, name, value)
}

fn delivery_entry(build: PartialObjectMeta<Build>) -> Entry<Delivered> {
    let (namespace, name) = place(&build);
    let labels = build.labels();
    let value = labels.get(DELIVERY_LABEL).map(|key| Delivered {
        key: key.clone(),
        config: labels.get(labels::BUILD_CONFIG).cloned().unwrap_or_default(),
    });
    (namespace, name, value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(namespace: &str, name: &str, value: Option<&str>) -> Secret {
        let mut secret = Secret::default();
        secret.metadata.namespace = Some(namespace.into());
        secret.metadata.name = Some(name.into());
        secret.data = value.map(|v| [(SECRET_KEY.to_string(), ByteString(v.as_bytes().to_vec()))].into());
        secret
    }

    #[test]
    fn a_mirror_answers_only_once_listed_and_while_watching() {
        let mirror = Mirror::default();
        assert_eq!(mirror.get("ns", "a"), Cached::Unknown);
        mirror.apply(watcher::Event::Init, secret_entry);
        mirror.apply(
            watcher::Event::InitApply(secret("ns", "a", Some("1"))),
            secret_entry,
        );
        assert_eq!(mirror.get("ns", "a"), Cached::Unknown, "the list is not complete");
        assert!(mirror.apply(watcher::Event::InitDone, secret_entry));
        assert_eq!(mirror.get("ns", "a"), Cached::Present(Arc::from(&b"1"[..])));
        assert_eq!(mirror.get("ns", "b"), Cached::Absent);
        assert_eq!(mirror.get("other", "a"), Cached::Absent);
        mirror.lose();
        assert_eq!(mirror.get("ns", "a"), Cached::Unknown);
    }

    #[test]
    fn events_update_and_a_new_list_replaces_everything() {
        let mirror = Mirror::default();
        for event in [
            watcher::Event::Init,
            watcher::Event::InitApply(secret("ns", "a", Some("1"))),
            watcher::Event::InitApply(secret("ns", "b", Some("2"))),
            watcher::Event::InitDone,
            watcher::Event::Apply(secret("ns", "a", Some("changed"))),
            watcher::Event::Delete(secret("ns", "b", Some("2"))),
            // Losing the key: no longer mirrored, read from the API server.
            watcher::Event::Apply(secret("ns", "c", Some("3"))),
            watcher::Event::Apply(secret("ns", "c", None)),
        ] {
            mirror.apply(event, secret_entry);
        }
        assert_eq!(mirror.get("ns", "a"), Cached::Present(Arc::from(&b"changed"[..])));
        assert_eq!(mirror.get("ns", "b"), Cached::Absent);
        assert_eq!(mirror.get("ns", "c"), Cached::Absent);
        // A relist (after a 410, say) drops what it does not list, and serves the old state
        // until it is complete.
        mirror.apply(watcher::Event::Init, secret_entry);
        mirror.apply(
            watcher::Event::InitApply(secret("ns", "d", Some("4"))),
            secret_entry,
        );
        assert_eq!(mirror.get("ns", "a"), Cached::Present(Arc::from(&b"changed"[..])));
        mirror.apply(watcher::Event::InitDone, secret_entry);
        assert_eq!(mirror.get("ns", "a"), Cached::Absent);
        assert_eq!(mirror.get("ns", "d"), Cached::Present(Arc::from(&b"4"[..])));
    }

    #[test]
    fn deliveries_are_found_by_key_and_buildconfig() {
        let build = |name: &str, key: &str, config: &str| {
            serde_json::from_value::<PartialObjectMeta<Build>>(serde_json::json!({
                "apiVersion": "slipway.dev/v1alpha1", "kind": "Build",
                "metadata": {"namespace": "ns", "name": name,
                    "labels": {DELIVERY_LABEL: key, labels::BUILD_CONFIG: config}},
            }))
            .unwrap()
        };
        let mirror = Mirror::default();
        assert_eq!(mirror.find("ns", |_: &Delivered| true), Cached::Unknown);
        mirror.apply(watcher::Event::Init, delivery_entry);
        mirror.apply(
            watcher::Event::InitApply(build("app-1", "k1", "app")),
            delivery_entry,
        );
        mirror.apply(watcher::Event::InitDone, delivery_entry);
        mirror.apply(watcher::Event::Apply(build("app-2", "k2", "app")), delivery_entry);
        let find = |key: &str, config: &str| mirror.find("ns", |d| d.key == key && d.config == config);
        assert_eq!(find("k2", "app"), Cached::Present("app-2".into()));
        assert_eq!(find("k1", "app"), Cached::Present("app-1".into()));
        assert_eq!(find("k1", "other"), Cached::Absent);
        mirror.apply(
            watcher::Event::Delete(build("app-1", "k1", "app")),
            delivery_entry,
        );
        assert_eq!(find("k1", "app"), Cached::Absent);
    }

    #[test]
    fn configs_are_kept_without_managed_fields_or_the_last_applied_copy() {
        let mut config: BuildConfig = serde_json::from_value(serde_json::json!({
            "apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig",
            "metadata": {"name": "app", "namespace": "ns",
                "annotations": {LAST_APPLIED: "{...}", labels::BUILD_CONFIG_PAUSED: "true"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
            "spec": {"strategy": {"type": "Docker"}, "source": {"type": "Git", "git": {"uri": "https://x/y.git"}}}
        }))
        .unwrap();
        let (namespace, name, kept) = config_entry(DeserializeGuard(Ok(config.clone())));
        let kept = kept.unwrap();
        assert_eq!((namespace.as_str(), name.as_str()), ("ns", "app"));
        assert!(kept.metadata.managed_fields.is_none());
        assert_eq!(
            kept.annotations().keys().collect::<Vec<_>>(),
            [labels::BUILD_CONFIG_PAUSED]
        );
        config.metadata.managed_fields = None;
        config.annotations_mut().remove(LAST_APPLIED);
        assert_eq!(
            serde_json::to_value(&*kept).unwrap(),
            serde_json::to_value(&config).unwrap()
        );
    }
}
