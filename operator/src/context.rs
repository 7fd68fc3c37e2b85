//! What every controller gets: a client acting as the operator, the configuration to act as
//! someone else, and an event recorder.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::EventType;

use crate::Error;
use crate::events::{Note, Recorder};

/// Shared by the reconciles of all controllers.
#[derive(Clone)]
pub struct Context {
    /// Acts with the operator's own rights.
    pub client: Client,
    /// The configuration `client` was made from, to derive impersonating clients.
    config: kube::Config,
    /// Publishes Events for the objects the operator reconciles.
    pub recorder: std::sync::Arc<Recorder>,
    /// Resolves the kinds of objects that templates bring, through cached discovery.
    pub resolver: std::sync::Arc<crate::dynamic::Resolver>,
    /// Counts and times reconciliations (served on /metrics).
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Only objects with these labels are reconciled (the watches of the controllers' own kinds
    /// select them), e.g. `app=x,tier!=test`; all when None.
    pub label_selector: Option<String>,
    /// The keys that verify requester stamps ([`crate::requester`]); none by default.
    pub requester_keys: std::sync::Arc<crate::requester::RequesterKeys>,
    /// The operator's own namespace (`POD_NAMESPACE`), whose service accounts it never acts as.
    pub own_namespace: String,
    /// The transient failures of each object, for the error policy's backoff ([`crate::error`]).
    pub retries: std::sync::Arc<crate::error::Retries>,
}

impl Context {
    pub fn new(config: kube::Config) -> Result<Self, Error> {
        let client = Client::try_from(config.clone())?;
        Ok(Self {
            recorder: std::sync::Arc::new(Recorder::new(
                client.clone(),
                "slipway-operator",
                std::env::var("POD_NAME").ok(),
            )),
            client,
            config,
            metrics: Default::default(),
            resolver: Default::default(),
            label_selector: None,
            requester_keys: Default::default(),
            retries: Default::default(),
            own_namespace: std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "slipway-system".into()),
        })
    }

    /// The watcher configuration of a controller's own kind: `label_selector` applied.
    pub fn watcher_config(&self) -> kube::runtime::watcher::Config {
        let config = kube::runtime::watcher::Config::default();
        match &self.label_selector {
            Some(selector) => config.labels(selector),
            None => config,
        }
    }

    /// A client that acts as `user` with `groups`, so the API server applies that user's RBAC to
    /// everything done on their behalf (and the operator never lends its own rights).
    pub fn impersonating(&self, user: &str, groups: &[String]) -> Result<Client, Error> {
        let mut config = self.config.clone();
        config.auth_info.impersonate = Some(user.to_string());
        config.auth_info.impersonate_groups = (!groups.is_empty()).then(|| groups.to_vec());
        Client::try_from(config).map_err(|e| Error::Impersonation {
            user: user.to_string(),
            message: e.to_string(),
        })
    }

    /// Publishes an Event about `regarding`; a failure to publish is logged, never fatal.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        action: &str,
        reason: &str,
        note: &str,
    ) {
        // An event note is limited to 1 kB.
        let note: String = note.chars().take(1000).collect();
        let note = Note {
            type_,
            action,
            reason,
            note: &note,
        };
        if let Err(e) = self.recorder.publish(&note, regarding).await {
            tracing::warn!(error = %e, "publishing an event");
        }
    }
}
