//! The operator's Prometheus metrics, served on `/metrics` with `/healthz` and `/readyz`:
//! reconciliations and their duration per controller, failures per controller and cause,
//! reconciliations running now, and each controller's initial sync.
//!
//! The initial sync of a controller is done when its cache holds the initial list of its objects
//! and every object of that list has been reconciled once (the reconcile ended). After a restart
//! with nothing changed, all controllers done and nothing running means the operator has
//! converged: `slipway_initial_sync_done` is 1 for every controller and
//! `slipway_reconciles_in_flight` 0.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    controller: String,
    error: String,
}

/// The metrics of all controllers, in one registry with the prefix `slipway`.
pub struct Metrics {
    registry: Registry,
    reconciliations: Family<ControllerLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    duration: Family<ControllerLabels, Histogram>,
    in_flight: Family<ControllerLabels, Gauge>,
    sync_done: Family<ControllerLabels, Gauge>,
    sync_seconds: Family<ControllerLabels, Gauge<f64, AtomicU64>>,
    /// The initial syncs not done yet, per controller.
    syncs: Mutex<HashMap<&'static str, InitialSync>>,
    /// When the metrics were made: the operator's start.
    started: Instant,
}

/// One controller's initial sync while it is not done.
#[derive(Default)]
struct InitialSync {
    /// Caches whose initial list has not arrived yet.
    listing: usize,
    /// Objects (hashes of their uid) whose reconcile ended, while a cache is still listing.
    reconciled: HashSet<u64>,
    /// Objects of the initial lists not reconciled yet.
    pending: HashSet<u64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("slipway");
        let reconciliations = Family::<ControllerLabels, Counter>::default();
        let failures = Family::<FailureLabels, Counter>::default();
        // From 1 ms to about 16 s: reconciles are API round trips.
        let duration = Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        });
        registry.register(
            "reconciliations",
            "Reconciliations started, per controller",
            reconciliations.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Reconciliations that failed, per controller and cause",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "How long reconciliations take",
            duration.clone(),
        );
        let in_flight = Family::<ControllerLabels, Gauge>::default();
        registry.register(
            "reconciles_in_flight",
            "Reconciliations running now, per controller",
            in_flight.clone(),
        );
        let sync_done = Family::<ControllerLabels, Gauge>::default();
        registry.register(
            "initial_sync_done",
            "1 when the controller has listed its objects and reconciled each of them once",
            sync_done.clone(),
        );
        let sync_seconds = Family::<ControllerLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "initial_sync_seconds",
            "Seconds from the operator's start until the controller's initial sync was done",
            sync_seconds.clone(),
        );
        Self {
            registry,
            reconciliations,
            failures,
            duration,
            in_flight,
            sync_done,
            sync_seconds,
            syncs: Mutex::default(),
            started: Instant::now(),
        }
    }
}

/// Records a reconciliation's duration and end when dropped.
pub struct ReconcileTimer {
    metrics: Arc<Metrics>,
    controller: &'static str,
    object: u64,
    start: Instant,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        let labels = ControllerLabels {
            controller: self.controller.into(),
        };
        self.metrics
            .duration
            .get_or_create(&labels)
            .observe(self.start.elapsed().as_secs_f64());
        self.metrics.in_flight.get_or_create(&labels).dec();
        self.metrics.reconciled(self.controller, self.object);
    }
}

/// An object's key in an initial sync: a hash of its uid (unique across kinds).
fn object_key(meta: &ObjectMeta) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.uid.hash(&mut hasher);
    hasher.finish()
}

impl Metrics {
    /// Counts a reconciliation of `object` by `controller` and times it until the returned guard
    /// drops.
    pub fn reconcile(
        self: &Arc<Self>,
        controller: &'static str,
        object: &impl kube::Resource,
    ) -> ReconcileTimer {
        let labels = ControllerLabels {
            controller: controller.into(),
        };
        self.reconciliations.get_or_create(&labels).inc();
        self.in_flight.get_or_create(&labels).inc();
        ReconcileTimer {
            metrics: self.clone(),
            controller,
            object: object_key(object.meta()),
            start: Instant::now(),
        }
    }

    /// Expects the initial list of one cache of `controller` (a controller with several caches
    /// expects each); its initial sync is done when every expected list has come
    /// ([`Metrics::listed`]) and every object in them has been reconciled once.
    pub fn expect_list(&self, controller: &'static str) {
        self.sync_done
            .get_or_create(&ControllerLabels {
                controller: controller.into(),
            })
            .set(0);
        if let Ok(mut syncs) = self.syncs.lock() {
            syncs.entry(controller).or_default().listing += 1;
        }
    }

    /// Whether the initial sync of `controller` is done.
    pub fn initial_sync_done(&self, controller: &'static str) -> bool {
        self.sync_done
            .get_or_create(&ControllerLabels {
                controller: controller.into(),
            })
            .get()
            == 1
    }

    /// The initial list of one cache of `controller` has come, with `objects`.
    pub fn listed<'a>(&self, controller: &'static str, objects: impl IntoIterator<Item = &'a ObjectMeta>) {
        let Ok(mut syncs) = self.syncs.lock() else {
            return;
        };
        let Some(sync) = syncs.get_mut(controller) else {
            return;
        };
        sync.listing = sync.listing.saturating_sub(1);
        for key in objects.into_iter().map(object_key) {
            if !sync.reconciled.contains(&key) {
                sync.pending.insert(key);
            }
        }
        if sync.listing == 0 {
            sync.reconciled = HashSet::new();
        }
        self.check_sync(&mut syncs, controller);
    }

    /// Notes the end of a reconcile for the initial sync of `controller`.
    fn reconciled(&self, controller: &'static str, object: u64) {
        let Ok(mut syncs) = self.syncs.lock() else {
            return;
        };
        let Some(sync) = syncs.get_mut(controller) else {
            return;
        };
        sync.pending.remove(&object);
        if sync.listing > 0 {
            sync.reconciled.insert(object);
        }
        self.check_sync(&mut syncs, controller);
    }

    /// Marks the initial sync of `controller` done (and forgets it) when it is.
    fn check_sync(&self, syncs: &mut HashMap<&'static str, InitialSync>, controller: &'static str) {
        if syncs
            .get(controller)
            .is_some_and(|s| s.listing == 0 && s.pending.is_empty())
        {
            syncs.remove(controller);
            let labels = ControllerLabels {
                controller: controller.into(),
            };
            self.sync_done.get_or_create(&labels).set(1);
            self.sync_seconds
                .get_or_create(&labels)
                .set(self.started.elapsed().as_secs_f64());
        }
    }

    /// Counts a failed reconciliation.
    pub fn failure(&self, controller: &'static str, error: &crate::Error) {
        let labels = FailureLabels {
            controller: controller.into(),
            error: error.metric_label().into(),
        };
        self.failures.get_or_create(&labels).inc();
    }

    /// The metrics in Prometheus' text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// `/metrics`, `/healthz` and `/readyz`.
    pub fn router(self: &Arc<Self>) -> Router {
        let metrics = self.clone();
        Router::new()
            .route(
                "/metrics",
                get(move || {
                    let metrics = metrics.clone();
                    async move {
                        (
                            [(
                                CONTENT_TYPE,
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )],
                            metrics.encode(),
                        )
                            .into_response()
                    }
                }),
            )
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(|| async { "ok" }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_map(uid: &str) -> k8s_openapi::api::core::v1::ConfigMap {
        let mut object = k8s_openapi::api::core::v1::ConfigMap::default();
        object.metadata.name = Some(format!("cm-{uid}"));
        object.metadata.namespace = Some("ns".into());
        object.metadata.uid = Some(uid.into());
        object
    }

    #[test]
    fn reconciliations_failures_and_durations_are_counted() {
        let metrics = Arc::new(Metrics::default());
        let object = config_map("a");
        drop(metrics.reconcile("template", &object));
        let running = metrics.reconcile("template", &object);
        assert!(
            metrics
                .encode()
                .contains("slipway_reconciles_in_flight{controller=\"template\"} 1")
        );
        drop(running);
        metrics.failure(
            "project",
            &crate::Error::Impersonation {
                user: "u".into(),
                message: "m".into(),
            },
        );
        let text = metrics.encode();
        assert!(
            text.contains("slipway_reconciliations_total{controller=\"template\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "slipway_reconcile_failures_total{controller=\"project\",error=\"invalid_spec\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("slipway_reconcile_duration_seconds_count{controller=\"template\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("slipway_reconciles_in_flight{controller=\"template\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn the_initial_sync_is_done_when_every_listed_object_was_reconciled() {
        let metrics = Arc::new(Metrics::default());
        let done = |m: &Metrics| {
            m.encode()
                .contains("slipway_initial_sync_done{controller=\"deploy\"} 1")
        };
        metrics.expect_list("deploy");
        assert!(
            metrics
                .encode()
                .contains("slipway_initial_sync_done{controller=\"deploy\"} 0")
        );
        // A reconcile may end before the list is complete: it counts.
        drop(metrics.reconcile("deploy", &config_map("a")));
        let listed = ["a", "b", "c"].map(config_map);
        metrics.listed("deploy", listed.iter().map(|o| &o.metadata));
        assert!(!done(&metrics));
        drop(metrics.reconcile("deploy", &config_map("b")));
        // Another controller's reconcile of the same object does not count.
        drop(metrics.reconcile("template", &config_map("c")));
        assert!(!done(&metrics));
        drop(metrics.reconcile("deploy", &config_map("c")));
        assert!(done(&metrics), "{}", metrics.encode());
        assert!(
            metrics
                .encode()
                .contains("slipway_initial_sync_seconds{controller=\"deploy\"}")
        );
    }

    #[test]
    fn an_empty_list_is_done_at_once_and_every_cache_of_a_controller_counts() {
        let metrics = Arc::new(Metrics::default());
        metrics.expect_list("image-trigger");
        metrics.expect_list("image-trigger");
        metrics.listed("image-trigger", []);
        assert!(
            metrics
                .encode()
                .contains("slipway_initial_sync_done{controller=\"image-trigger\"} 0")
        );
        metrics.listed("image-trigger", []);
        assert!(
            metrics
                .encode()
                .contains("slipway_initial_sync_done{controller=\"image-trigger\"} 1")
        );
    }
}
