//! The operator's Prometheus metrics, served on `/metrics` with `/healthz` and `/readyz`:
//! reconciliations and their duration per controller, and failures per controller and cause.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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
        Self {
            registry,
            reconciliations,
            failures,
            duration,
        }
    }
}

/// Records a reconciliation's duration when dropped.
pub struct ReconcileTimer {
    metrics: Arc<Metrics>,
    controller: &'static str,
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
    }
}

impl Metrics {
    /// Counts a reconciliation of `controller` and times it until the returned guard drops.
    pub fn reconcile(self: &Arc<Self>, controller: &'static str) -> ReconcileTimer {
        self.reconciliations
            .get_or_create(&ControllerLabels {
                controller: controller.into(),
            })
            .inc();
        ReconcileTimer {
            metrics: self.clone(),
            controller,
            start: Instant::now(),
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

    #[test]
    fn reconciliations_failures_and_durations_are_counted() {
        let metrics = Arc::new(Metrics::default());
        drop(metrics.reconcile("template"));
        drop(metrics.reconcile("template"));
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
                "slipway_reconcile_failures_total{controller=\"project\",error=\"impersonation\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("slipway_reconcile_duration_seconds_count{controller=\"template\"} 2"),
            "{text}"
        );
    }
}
