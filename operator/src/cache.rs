//! The watch and cache of a controller's own kind, shared by all controllers: the cache keeps
//! objects without their managedFields, which no reconcile reads and which are often the largest
//! part of an object, so that thousands of objects fit in a small operator; and the controller's
//! initial sync is followed in the metrics ([`crate::metrics`]).

use std::fmt::Debug;

use futures::StreamExt;
use kube::Resource;
use kube::api::Api;
use kube::runtime::controller::Controller;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde::de::DeserializeOwned;

use crate::Context;

/// How many reconciles of one controller run at once. Without a bound, a restart with thousands
/// of objects starts thousands of reconciles together: as many connections to the API server
/// (kube's client speaks HTTP/1.1), each with its buffers, all slower than a few at a time.
pub const CONCURRENCY: u16 = 16;

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
    let (reader, writer) = reflector::store();
    let store = reader.clone();
    let metrics = ctx.metrics.clone();
    metrics.expect_list(name);
    let mut first_list = true;
    let stream = watcher(api, config)
        .modify(lean)
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
