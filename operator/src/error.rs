//! The operator's errors and the one error policy of all controllers.
//!
//! Every failure of a reconcile falls into one [`Class`], and the class alone decides what the
//! controller does next:
//!
//! | class | what happened | next |
//! | --- | --- | --- |
//! | [`Class::InvalidSpec`] | the object asks for what cannot be done as written (a 400/422 answer, a missing field) | a Warning Event on the object, then wait for a change: no timer |
//! | [`Class::Conflict`] | someone else changed the object first (409) | look again at once (100 ms) |
//! | [`Class::Transient`] | the API server or a registry failed in a way that may pass | exponential backoff per object, 0.5 s doubling to 5 min, forgotten on success |
//! | [`Class::Forbidden`] | the operator, or the user it acts for, may not do it (403) | a Warning Event naming the refusal, then wait for a change: no retry loop |
//!
//! The failure counter of the metrics is labelled with the class.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use kube::Resource;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use crate::context::Context;

/// An error of a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the API server failed; the answer's status code gives the class.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The object asks for something that cannot be done as written.
    #[error("{0}")]
    InvalidSpec(String),
    /// Another writer changed the object first.
    #[error("{0}")]
    Conflict(String),
    /// A failure that may pass by itself (a registry, a hook asked to be retried).
    #[error("{0}")]
    Transient(String),
    /// The operator, or the user it acts for, is not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// A client for a requester could not be built (the requester's name cannot be used).
    #[error("impersonating {user}: {message}")]
    Impersonation { user: String, message: String },
    /// The requester keys cannot be read (they may be mounted later).
    #[error("requester keys: {0}")]
    RequesterKeys(String),
}

/// What kind of failure an [`Error`] is: it decides the retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    InvalidSpec,
    Conflict,
    Transient,
    Forbidden,
}

impl Error {
    /// The class of the failure.
    pub fn class(&self) -> Class {
        match self {
            Self::Kube(kube::Error::Api(status)) => match status.code {
                409 => Class::Conflict,
                403 => Class::Forbidden,
                400 | 422 => Class::InvalidSpec,
                _ => Class::Transient,
            },
            Self::Kube(_) | Self::Transient(_) | Self::RequesterKeys(_) => Class::Transient,
            Self::InvalidSpec(_) | Self::Impersonation { .. } => Class::InvalidSpec,
            Self::Conflict(_) => Class::Conflict,
            Self::Forbidden(_) => Class::Forbidden,
        }
    }

    /// The label of the failure counter of the metrics.
    pub fn metric_label(&self) -> &'static str {
        match self.class() {
            Class::InvalidSpec => "invalid_spec",
            Class::Conflict => "conflict",
            Class::Transient => "transient",
            Class::Forbidden => "forbidden",
        }
    }
}

/// The first pause after a transient failure; each further failure doubles it.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest pause after transient failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How many objects' failures are kept before the stale ones are looked for.
const PRUNE_ABOVE: usize = 1024;
/// The pause after a conflict.
pub const CONFLICT_RETRY: Duration = Duration::from_millis(100);

/// The transient failures in a row of each object, for its backoff.
#[derive(Default)]
pub struct Retries {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Retries {
    /// What to do after `error` in the reconcile of the object `key`.
    pub fn decide(&self, key: &str, error: &Error) -> Action {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match error.class() {
            Class::Conflict => Action::requeue(CONFLICT_RETRY),
            Class::InvalidSpec | Class::Forbidden => {
                failures.remove(key);
                Action::await_change()
            }
            Class::Transient => {
                // Objects deleted while failing are dropped once their backoff has long passed;
                // looked for only when the map has grown, not on every failure.
                if failures.len() >= PRUNE_ABOVE {
                    failures.retain(|_, (_, at)| at.elapsed() < MAX_BACKOFF * 2);
                }
                let entry = failures.entry(key.to_string()).or_insert((0, Instant::now()));
                entry.0 = entry.0.saturating_add(1);
                entry.1 = Instant::now();
                Action::requeue(backoff(entry.0))
            }
        }
    }

    /// Forgets the failures of `key` (its reconcile succeeded).
    pub fn forget(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// The pause after the `n`th transient failure in a row (n ≥ 1).
pub fn backoff(n: u32) -> Duration {
    let doublings = n.saturating_sub(1).min(20);
    FIRST_BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

/// What a controller's shared state gives the error policy.
pub trait Shared: Send + Sync + 'static {
    fn context(&self) -> &Context;
}

impl Shared for Context {
    fn context(&self) -> &Context {
        self
    }
}

fn key_of<K: Resource>(controller: &str, object: &K) -> String {
    format!(
        "{controller}/{}/{}",
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    )
}

/// The error policy of the controller `controller`: counts the failure, tells the object's
/// owner through an Event when waiting for a change, and decides the retry by the class.
pub fn policy<K, S>(controller: &'static str) -> impl Fn(Arc<K>, &Error, Arc<S>) -> Action
where
    K: Resource<DynamicType = ()>,
    S: Shared,
{
    move |object, error, shared| {
        let ctx = shared.context();
        ctx.metrics.failure(controller, error);
        let class = error.class();
        tracing::warn!(controller, error = %error, ?class, "reconcile failed");
        if matches!(class, Class::InvalidSpec | Class::Forbidden) {
            let (reason, what) = match class {
                Class::Forbidden => ("Forbidden", "not allowed"),
                _ => ("InvalidSpec", "cannot be done as written"),
            };
            let note = format!("{what}; waiting for a change of the object: {error}");
            let reference = object.object_ref(&());
            let ctx = ctx.clone();
            tokio::spawn(async move {
                ctx.publish(&reference, EventType::Warning, "Reconcile", reason, &note)
                    .await;
            });
        }
        ctx.retries.decide(&key_of(controller, object.as_ref()), error)
    }
}

/// Wraps the reconcile of `controller` so that a success forgets the object's failures (its
/// next transient failure starts the backoff anew).
pub fn tracked<K, S, F, Fut>(
    controller: &'static str,
    mut reconcile: F,
) -> impl FnMut(Arc<K>, Arc<S>) -> BoxFuture<'static, Result<Action, Error>>
where
    K: Resource + Send + Sync + 'static,
    S: Shared,
    F: FnMut(Arc<K>, Arc<S>) -> Fut,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    move |object, shared| {
        let key = key_of(controller, object.as_ref());
        let reconciled = reconcile(object, shared.clone());
        Box::pin(async move {
            let result = reconciled.await;
            if result.is_ok() {
                shared.context().retries.forget(&key);
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> Error {
        Error::Kube(kube::Error::Api(
            kube::core::Status::failure("refused", "Refused")
                .with_code(code)
                .boxed(),
        ))
    }

    #[test]
    fn an_invalid_spec_waits_for_a_change_without_a_timer() {
        let retries = Retries::default();
        for error in [api(422), api(400), Error::InvalidSpec("no template".into())] {
            assert_eq!(error.class(), Class::InvalidSpec);
            assert_eq!(retries.decide("c/ns/a", &error), Action::await_change());
        }
    }

    #[test]
    fn forbidden_waits_for_a_change_without_a_retry_loop() {
        let retries = Retries::default();
        for error in [api(403), Error::Forbidden("may not".into())] {
            assert_eq!(error.class(), Class::Forbidden);
            assert_eq!(retries.decide("c/ns/a", &error), Action::await_change());
        }
    }

    #[test]
    fn a_conflict_looks_again_at_once() {
        let retries = Retries::default();
        for _ in 0..5 {
            assert_eq!(
                retries.decide("c/ns/a", &api(409)),
                Action::requeue(CONFLICT_RETRY)
            );
        }
    }

    #[test]
    fn a_transient_failure_backs_off_per_object_and_success_resets_it() {
        let retries = Retries::default();
        let unavailable = api(503);
        let waits: Vec<Action> = (0..4).map(|_| retries.decide("c/ns/a", &unavailable)).collect();
        assert_eq!(
            waits,
            [500, 1000, 2000, 4000].map(|ms| Action::requeue(Duration::from_millis(ms)))
        );
        // Another object has its own count.
        assert_eq!(
            retries.decide("c/ns/b", &Error::Transient("registry down".into())),
            Action::requeue(FIRST_BACKOFF)
        );
        retries.forget("c/ns/a");
        assert_eq!(
            retries.decide("c/ns/a", &unavailable),
            Action::requeue(FIRST_BACKOFF)
        );
    }

    #[test]
    fn the_backoff_stops_growing_at_its_maximum() {
        assert_eq!(backoff(1), FIRST_BACKOFF);
        assert_eq!(backoff(10), Duration::from_secs(256));
        assert_eq!(backoff(11), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn metric_labels_are_the_classes() {
        assert_eq!(api(500).metric_label(), "transient");
        assert_eq!(api(409).metric_label(), "conflict");
        assert_eq!(Error::Forbidden("x".into()).metric_label(), "forbidden");
        assert_eq!(
            Error::Impersonation {
                user: "u".into(),
                message: "m".into()
            }
            .metric_label(),
            "invalid_spec"
        );
    }
}
