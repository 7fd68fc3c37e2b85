//! The watch and cache of a controller's own kind, shared by all controllers: the cache keeps
//! objects without their managedFields, which no reconcile reads and which are often the largest
//! part of an object, so that thousands of objects fit in a small operator; and the controller's
//! initial sync is followed in the metrics ([`crate::metrics`]).
//!
//! Every watch goes through [`watch`]: an object that the API server accepted but that does not
//! decode as the operator's type (a field of the wrong type, an older or newer operator's
//! schema) is logged and left out, instead of failing the list and stalling the controller for
//! every other object of the kind (kube's `DeserializeGuard`).

use std::borrow::Cow;
use std::fmt::Debug;

use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::api::Api;
use kube::core::{DeserializeGuard, DynamicResourceScope};
use kube::runtime::controller::Controller;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde::de::DeserializeOwned;

use crate::Context;

/// How many reconciles of one controller run at once. Without a bound, a restart with thousands
/// of objects starts thousands of reconciles together: as many connections to the API server
/// (kube's client speaks HTTP/1.1), each with its buffers, all slower than a few at a time.
pub const CONCURRENCY: u16 = 32;

/// Objects per page of a controller's initial list.
pub const PAGE_SIZE: u32 = 100;

/// Which objects follow which (the DeploymentConfigs that the image triggers of which name an
/// ImageStream, say), recorded by the reconciles, which read the followers live: a controller
/// whose cache holds metadata only still maps a change of the followed to its followers. After
/// a start every follower is reconciled once, reading what it follows live, so nothing is missed
/// before it has been recorded.
#[derive(Default)]
pub struct Followers {
    /// (namespace, name) of a follower → the keys of what it follows.
    follows: std::sync::Mutex<std::collections::HashMap<(String, String), Vec<String>>>,
}

impl Followers {
    /// Records what the follower `namespace/name` follows now (nothing: forgets it).
    pub fn record(&self, namespace: &str, name: &str, followed: Vec<String>) {
        let Ok(mut follows) = self.follows.lock() else {
            return;
        };
        let key = (namespace.to_string(), name.to_string());
        if followed.is_empty() {
            follows.remove(&key);
        } else {
            follows.insert(key, followed);
        }
    }

    /// The (namespace, name) of the followers of `followed`.
    pub fn of(&self, followed: &str) -> Vec<(String, String)> {
        let Ok(follows) = self.follows.lock() else {
            return Vec::new();
        };
        follows
            .iter()
            .filter(|(_, keys)| keys.iter().any(|k| k == followed))
            .map(|(follower, _)| follower.clone())
            .collect()
    }
}

/// An object of kind `K` as a watch reads it: decoded, or why not (with its metadata). As
/// [`DeserializeGuard`], with a dynamic scope so that one function serves namespaced and
/// cluster-scoped kinds, and metadata-only kinds stay metadata-only.
#[derive(Clone, Debug)]
pub struct Guarded<K>(pub DeserializeGuard<K>);

impl<K: Resource> Resource for Guarded<K> {
    type DynamicType = K::DynamicType;
    type Scope = DynamicResourceScope;

    fn kind(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::version(dt)
    }

    fn plural(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn metadata_api() -> bool {
        K::metadata_api()
    }

    fn meta(&self) -> &ObjectMeta {
        self.0.meta()
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.0.meta_mut()
    }
}

impl<'de, K> serde::Deserialize<'de> for Guarded<K>
where
    K: serde::Deserialize<'de> + Resource,
{
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        DeserializeGuard::deserialize(deserializer).map(Guarded)
    }
}

/// The object of an event, or None (logged) when it did not decode.
fn decoded<K: Resource<DynamicType = ()>>(guarded: Guarded<K>) -> Option<K> {
    match guarded.0.0 {
        Ok(object) => Some(object),
        Err(invalid) => {
            tracing::warn!(
                kind = %K::kind(&()),
                namespace = invalid.metadata.namespace.as_deref().unwrap_or_default(),
                name = invalid.metadata.name.as_deref().unwrap_or_default(),
                error = %invalid.error,
                "an object that does not decode is left out"
            );
            None
        }
    }
}

/// `watcher(api, config)`, with objects that do not decode left out (see the module docs).
pub fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let client = api.clone().into_client();
    let guarded: Api<Guarded<K>> = match api.namespace() {
        Some(ns) => Api::namespaced_with(client, ns, &()),
        None => Api::all_with(client, &()),
    };
    watcher(guarded, config).filter_map(|event| {
        use watcher::Event;
        futures::future::ready(match event {
            Err(e) => Some(Err(e)),
            Ok(Event::Init) => Some(Ok(Event::Init)),
            Ok(Event::InitDone) => Some(Ok(Event::InitDone)),
            Ok(Event::InitApply(o)) => decoded(o).map(|o| Ok(Event::InitApply(o))),
            Ok(Event::Apply(o)) => decoded(o).map(|o| Ok(Event::Apply(o))),
            Ok(Event::Delete(o)) => decoded(o).map(|o| Ok(Event::Delete(o))),
        })
    })
}

/// A Controller of `api`'s kind, selected by `config`, named `name` in the metrics.
///
/// As `Controller::new`, but the cache is lean (see [`lean`]), at most [`CONCURRENCY`]
/// reconciles run at once, and the initial list is reported to the metrics.
/// (`Store::wait_until_ready` cannot tell it: its one-shot channel wakes one waiter, and the
/// controller is already waiting on it.)
pub fn controller<K>(ctx: &Context, name: &'static str, api: Api<K>, config: watcher::Config) -> Controller<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    controller_after(ctx, name, api, config, futures::future::ready(()))
}

/// As [`controller`], but the watch of the controller's own kind starts once `after` is ready:
/// when the secondary watches have listed (see [`quiet_first_list`]).
pub fn controller_after<K>(
    ctx: &Context,
    name: &'static str,
    api: Api<K>,
    config: watcher::Config,
    after: impl Future<Output = ()> + Send + 'static,
) -> Controller<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    controller_trimmed(ctx, name, api, config, after, |_| {})
}

/// As [`controller_after`], with `trim` removing from each cached object what the controller
/// reads live anyway.
pub fn controller_trimmed<K>(
    ctx: &Context,
    name: &'static str,
    api: Api<K>,
    config: watcher::Config,
    after: impl Future<Output = ()> + Send + 'static,
    mut trim: impl FnMut(&mut K) + Send + 'static,
) -> Controller<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let store = reader.clone();
    let metrics = ctx.metrics.clone();
    metrics.expect_list(name);
    let mut first_list = true;
    // Small pages: a page of full objects is parsed whole, and the allocator keeps the peak.
    let config = config.page_size(PAGE_SIZE);
    let stream = futures::stream::once(after)
        .flat_map(move |()| watch(api.clone(), config.clone()))
        .modify(move |object| {
            lean(object);
            trim(object);
        })
        .reflect(writer)
        .inspect(move |event| {
            // Later lists (after a watch expired) are not the initial sync.
            if first_list && matches!(event, Ok(watcher::Event::InitDone)) {
                first_list = false;
                let objects = store.state();
                metrics.listed(name, objects.iter().map(|o| o.meta()));
            }
        })
        .applied_objects();
    Controller::for_stream(stream, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(CONCURRENCY))
}

/// A secondary watch (objects that trigger reconciles of the controller's own kind) whose first
/// list triggers nothing, and a future ready once that list has come (or the watch failed).
///
/// After a start, every object of the controller's own kind is reconciled anyway. When its own
/// watch starts only after the secondary watches have listed ([`controller_after`]), those
/// reconciles read the secondary objects as they are then or later, so the triggers of the
/// first lists would only reconcile everything a second time. Later lists (after a watch
/// expired) trigger as usual: changes may hide in them.
pub fn quiet_first_list<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
) -> (
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    impl Future<Output = ()> + Send + 'static,
)
where
    K: Send + 'static,
{
    let (listed_tx, listed_rx) = futures::channel::oneshot::channel::<()>();
    let mut listed_tx = Some(listed_tx);
    let stream = events.filter_map(move |event| {
        let first = listed_tx.is_some();
        let item = match event {
            Ok(watcher::Event::InitDone) => {
                if let Some(tx) = listed_tx.take() {
                    let _ = tx.send(());
                }
                None
            }
            // A failing watch must not hold the controller back.
            Err(e) => {
                if let Some(tx) = listed_tx.take() {
                    let _ = tx.send(());
                }
                Some(Err(e))
            }
            Ok(watcher::Event::Init) => None,
            Ok(watcher::Event::InitApply(_)) if first => None,
            Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o) | watcher::Event::InitApply(o)) => {
                Some(Ok(o))
            }
        };
        futures::future::ready(item)
    });
    // A dropped sender (the controller stopped) is ready too.
    (stream, async move {
        let _ = listed_rx.await;
    })
}

/// Removes from a cached object what no reconcile reads: its managedFields. A cached object
/// written back whole (a replace) keeps the server's: an update without managedFields leaves
/// them as they are. (kubectl's last-applied annotation stays: a replace would remove it.)
pub fn lean<K: Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn followers_are_found_by_what_they_follow_and_forgotten() {
        let followers = Followers::default();
        followers.record("a", "web", vec!["a/app".into(), "b/base".into()]);
        followers.record("a", "api", vec!["a/app".into()]);
        let mut of_app = followers.of("a/app");
        of_app.sort();
        assert_eq!(
            of_app,
            vec![("a".into(), "api".into()), ("a".into(), "web".into())]
        );
        followers.record("a", "web", vec![]);
        assert_eq!(followers.of("b/base"), vec![]);
    }

    #[test]
    fn lean_objects_keep_everything_but_managed_fields() {
        let mut object: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "a", "namespace": "n", "uid": "u", "resourceVersion": "7",
                "labels": {"app": "a"},
                "annotations": {"keep": "me"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:data": {}}}]},
            "data": {"k": "v"}
        }))
        .unwrap_or_default();
        lean(&mut object);
        let value = serde_json::to_value(&object).unwrap_or_default();
        assert_eq!(
            value,
            serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "a", "namespace": "n", "uid": "u", "resourceVersion": "7",
                    "labels": {"app": "a"}, "annotations": {"keep": "me"}},
                "data": {"k": "v"}
            })
        );
    }
}
