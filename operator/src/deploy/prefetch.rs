//! The first reconcile of each DeploymentConfig after a start, served by one read per namespace.
//!
//! After a start every DeploymentConfig is reconciled once, and each reconcile reads its
//! DeploymentConfig and lists its ReplicaSets live: with thousands of them, as many round trips
//! twice over, when nearly all of them are at rest. Instead, the first reconcile in a namespace
//! lists the namespace's DeploymentConfigs and ReplicaSets once (two requests), and decides for
//! each DeploymentConfig there whether its reconcile would do anything ([`super::at_rest`]:
//! the reconcile's own decisions, on what it would have read). Only that verdict is kept, as the
//! resourceVersion the DeploymentConfig was at rest at, not the objects: the reconciles come in
//! no particular order (kube-runtime's queue), so objects kept for the namespace's later
//! reconciles would be most of the namespace's objects at once, cluster-wide.
//!
//! A reconcile takes its DeploymentConfig's verdict (once: it is removed) and returns at once
//! when the cache still holds that resourceVersion and no ReplicaSet or hook pod of the namespace
//! has changed since the lists were read (the watches report each change here before it triggers
//! a reconcile, and drop the namespace's verdicts; a change during the lists discards them).
//! Whatever is not at rest, or changed, or is new, is reconciled as always, reading live. A
//! change after the lists that has not reached the watches yet will reach them: its event
//! reconciles the DeploymentConfig again, live (its verdict is gone). So a verdict stands for a
//! live read made when the lists were, as a live read stands for the time it was made; nothing
//! is written on a verdict.
//!
//! Only DeploymentConfigs without image triggers or hooks get verdicts (theirs read nothing
//! else); all prefetching stops, and what is kept is dropped, once the controller's initial sync
//! is done (see [`crate::metrics`]). Memory: a verdict is a name and a resourceVersion; a
//! namespace with more objects than one list page here is not prefetched, and at most
//! [`LISTING_AT_ONCE`] namespaces are listed at a time.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, ObjectList};
use kube::core::PartialObjectMeta;
use kube::{Resource, ResourceExt};
use slipway_crds::DeploymentConfig;
use slipway_crds::apps::labels;
use tokio::sync::{OnceCell, Semaphore};

use crate::Context;

/// DeploymentConfigs in one namespace's list; a namespace with more is reconciled live.
const MAX_DEPLOYMENT_CONFIGS: u32 = 20;
/// ReplicaSets in one namespace's list; a namespace with more is reconciled live.
const MAX_REPLICA_SETS: u32 = 100;
/// Namespaces listed at once (each list holds up to the maxima above while it is judged).
const LISTING_AT_ONCE: usize = 8;

/// The verdicts of the namespaces prefetched so far, shared by the controller's reconciles.
pub struct Prefetch {
    controller: &'static str,
    state: Mutex<State>,
    listing: Semaphore,
}

#[derive(Default)]
struct State {
    /// The initial sync is done: no more prefetching, nothing kept.
    closed: bool,
    /// The namespaces prefetched or being prefetched: a reconcile in one waits for its lists.
    namespaces: HashMap<String, Arc<OnceCell<()>>>,
    /// Namespaces whose lists are being read.
    listing: HashSet<String>,
    /// Of those, the ones where a ReplicaSet or hook pod changed meanwhile.
    changed_while_listing: HashSet<String>,
    /// DeploymentConfigs found at rest: namespace → name → resourceVersion.
    at_rest: HashMap<String, HashMap<String, String>>,
}

impl Prefetch {
    /// For the controller named `controller` in the metrics.
    pub fn new(controller: &'static str) -> Self {
        Self {
            controller,
            state: Mutex::default(),
            listing: Semaphore::new(LISTING_AT_ONCE),
        }
    }

    /// A ReplicaSet or hook pod in `namespace` changed (reported by the watch before the change
    /// triggers a reconcile): the namespace's verdicts may no longer hold.
    pub fn changed(&self, namespace: Option<String>) {
        let Some(namespace) = namespace else {
            return;
        };
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.closed {
            return;
        }
        state.at_rest.remove(&namespace);
        if state.listing.contains(&namespace) {
            state.changed_while_listing.insert(namespace);
        }
    }

    /// Whether `cached` (the cache's metadata) is at rest as its namespace's prefetch found it;
    /// its verdict is taken either way. The namespace is listed first if it has not been.
    pub async fn at_rest(&self, ctx: &Context, cached: &PartialObjectMeta<DeploymentConfig>) -> bool {
        let (Some(namespace), Some(version)) = (cached.namespace(), cached.resource_version()) else {
            return false;
        };
        let Some(cell) = self.namespace(&namespace, ctx.metrics.initial_sync_done(self.controller)) else {
            return false;
        };
        cell.get_or_init(|| self.list(ctx, &namespace)).await;
        self.take(&namespace, &cached.name_any(), &version)
    }

    /// The prefetch of `namespace`, None once the initial sync is `done` (all is dropped then).
    fn namespace(&self, namespace: &str, done: bool) -> Option<Arc<OnceCell<()>>> {
        let mut state = self.state.lock().ok()?;
        if state.closed {
            return None;
        }
        if done {
            *state = State {
                closed: true,
                ..State::default()
            };
            return None;
        }
        Some(state.namespaces.entry(namespace.to_string()).or_default().clone())
    }

    /// Takes the verdict of `namespace/name`: whether it was at rest at `version`.
    fn take(&self, namespace: &str, name: &str, version: &str) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        let Some(verdicts) = state.at_rest.get_mut(namespace) else {
            return false;
        };
        let verdict = verdicts.remove(name);
        if verdicts.is_empty() {
            state.at_rest.remove(namespace);
        }
        verdict.as_deref() == Some(version)
    }

    /// The lists of `namespace` are about to be read: a change reported from now on may be
    /// newer or older than what they show.
    fn begin(&self, namespace: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.listing.insert(namespace.to_string());
        }
    }

    /// The lists of `namespace` were read and judged: keeps `verdicts`, unless a change was
    /// reported meanwhile.
    fn end(&self, namespace: &str, verdicts: HashMap<String, String>) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.listing.remove(namespace);
        let changed = state.changed_while_listing.remove(namespace);
        if !state.closed && !changed && !verdicts.is_empty() {
            state.at_rest.insert(namespace.to_string(), verdicts);
        }
    }

    /// Lists the DeploymentConfigs and ReplicaSets of `namespace` and keeps the verdicts of
    /// those at rest. A failed or too long list keeps none: their reconciles read live.
    async fn list(&self, ctx: &Context, namespace: &str) {
        let Ok(_permit) = self.listing.acquire().await else {
            return;
        };
        self.begin(namespace);
        let dcs: Api<DeploymentConfig> = Api::namespaced(ctx.client.clone(), namespace);
        let rss: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), namespace);
        let mut dc_params = ListParams::default().limit(MAX_DEPLOYMENT_CONFIGS);
        if let Some(selector) = &ctx.label_selector {
            dc_params = dc_params.labels(selector);
        }
        let rs_params = ListParams::default()
            .labels(labels::DEPLOYMENT_CONFIG)
            .limit(MAX_REPLICA_SETS);
        let listed = futures::try_join!(dcs.list(&dc_params), rss.list(&rs_params));
        let verdicts = match listed {
            Ok((dcs, rss)) if complete(&dcs) && complete(&rss) => {
                judge(dcs.items, rss.items, Timestamp::now())
            }
            Ok(_) => HashMap::new(),
            Err(e) => {
                tracing::debug!(error = %e, namespace, "prefetching deployment configs");
                HashMap::new()
            }
        };
        self.end(namespace, verdicts);
    }
}

/// Whether a list came in one page.
fn complete<K>(list: &ObjectList<K>) -> bool
where
    K: Clone,
{
    list.metadata.continue_.as_deref().unwrap_or_default().is_empty()
}

/// The resourceVersions of the DeploymentConfigs at rest, by name.
fn judge(dcs: Vec<DeploymentConfig>, rss: Vec<ReplicaSet>, now: Timestamp) -> HashMap<String, String> {
    let mut by_config: HashMap<String, Vec<ReplicaSet>> = HashMap::new();
    for rs in rss {
        if let Some(name) = rs.labels().get(labels::DEPLOYMENT_CONFIG).cloned() {
            by_config.entry(name).or_default().push(rs);
        }
    }
    dcs.into_iter()
        .filter(super::reads_only_replica_sets)
        .filter_map(|dc| {
            let name = dc.name_any();
            let own = by_config.remove(&name).unwrap_or_default();
            let observed = super::observed_from(&dc, own, &[]);
            let version = dc.meta().resource_version.clone()?;
            super::at_rest(&dc, &observed, now).then_some((name, version))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::ReplicaSetStatus;
    use serde_json::json;
    use slipway_crds::DeploymentConfigStatus;

    use super::*;

    fn dc(name: &str, image: &str, triggers: serde_json::Value) -> DeploymentConfig {
        serde_json::from_value(
            json!({"apiVersion": "slipway.dev/v1alpha1", "kind": "DeploymentConfig",
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                "resourceVersion": "7", "generation": 1},
            "spec": {"replicas": 1, "selector": {"app": name}, "triggers": triggers,
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "web", "image": image}]}}}}),
        )
        .unwrap()
    }

    fn config_change() -> serde_json::Value {
        json!([{"type": "ConfigChange"}])
    }

    /// Version 1 of `dc`, rolled out: Complete, its one replica available.
    fn rolled_out(dc: &DeploymentConfig) -> ReplicaSet {
        let owner = dc.controller_owner_ref(&()).unwrap();
        let mut rs = super::super::objects::replica_set(dc, owner, 1, None).unwrap();
        rs.annotations_mut()
            .insert(labels::DEPLOYMENT_PHASE.into(), "Complete".into());
        rs.metadata.generation = Some(1);
        rs.spec.as_mut().unwrap().replicas = Some(1);
        rs.status = Some(ReplicaSetStatus {
            replicas: 1,
            ready_replicas: Some(1),
            available_replicas: Some(1),
            observed_generation: Some(1),
            ..Default::default()
        });
        rs
    }

    /// `dc` at version 1 with the status its reconcile gives it for `rs`.
    fn with_status(mut dc: DeploymentConfig, rs: &ReplicaSet) -> DeploymentConfig {
        dc.status = Some(DeploymentConfigStatus {
            latest_version: 1,
            ..Default::default()
        });
        let observed = super::super::observed_from(&dc, vec![rs.clone()], &[]);
        dc.status = Some(super::super::objects::status(&dc, &observed.versions));
        dc
    }

    #[test]
    fn only_deployment_configs_at_rest_get_a_verdict() {
        // At rest: rolled out, its status as the reconcile would write it.
        let web = dc("web", "web:1", config_change());
        let web_rs = rolled_out(&web);
        let web = with_status(web, &web_rs);
        // Its template changed after its version was made: a new version is due.
        let api = dc("api", "api:1", config_change());
        let api_rs = rolled_out(&api);
        let mut api = with_status(api, &api_rs);
        api.spec
            .template
            .as_mut()
            .unwrap()
            .spec
            .as_mut()
            .unwrap()
            .containers[0]
            .image = Some("api:2".into());
        // Its status is behind (a reconcile would write it).
        let db = dc("db", "db:1", config_change());
        let db_rs = rolled_out(&db);
        let mut db = with_status(db, &db_rs);
        db.status.as_mut().unwrap().available_replicas = 0;
        // Never rolled out: its first version is due.
        let new = dc("new", "new:1", config_change());
        // An image trigger reads a stream: no verdict, whatever it is.
        let img = dc(
            "img",
            "img:1",
            json!([{"type": "ImageChange", "imageChangeParams": {"automatic": true, "containerNames": ["web"],
                "from": {"kind": "ImageStreamTag", "name": "img:latest"}}}]),
        );
        let img_rs = rolled_out(&img);
        let img = with_status(img, &img_rs);
        // Another DeploymentConfig's ReplicaSet named after it (not its owner) is not its.
        let other = dc("other", "other:1", config_change());
        let mut stray = rolled_out(&dc("x", "x:1", config_change()));
        stray
            .labels_mut()
            .insert(labels::DEPLOYMENT_CONFIG.into(), "other".into());
        let other_rs = rolled_out(&other);
        let other = with_status(other, &other_rs);

        let verdicts = judge(
            vec![web, api, db, new, img, other],
            vec![web_rs, api_rs, db_rs, img_rs, stray, other_rs],
            Timestamp::now(),
        );
        let mut at_rest: Vec<&str> = verdicts.keys().map(String::as_str).collect();
        at_rest.sort();
        assert_eq!(at_rest, ["other", "web"]);
        assert_eq!(verdicts["web"], "7");
    }

    #[test]
    fn a_verdict_is_taken_once_and_only_at_its_resource_version() {
        let prefetch = Prefetch::new("deploy");
        let verdicts = || {
            HashMap::from([
                ("web".to_string(), "7".to_string()),
                ("api".to_string(), "7".to_string()),
            ])
        };
        prefetch.begin("ns");
        prefetch.end("ns", verdicts());
        assert!(prefetch.take("ns", "web", "7"));
        assert!(!prefetch.take("ns", "web", "7"), "taken twice");
        assert!(!prefetch.take("ns", "api", "8"), "changed since the list");
        assert!(
            !prefetch.take("ns", "api", "7"),
            "a stale verdict is dropped when taken"
        );
        assert!(!prefetch.take("other", "web", "7"));
    }

    #[test]
    fn a_change_in_the_namespace_drops_its_verdicts() {
        let prefetch = Prefetch::new("deploy");
        let verdicts = || HashMap::from([("web".to_string(), "7".to_string())]);
        // After the lists.
        prefetch.begin("ns");
        prefetch.end("ns", verdicts());
        prefetch.changed(Some("ns".into()));
        assert!(!prefetch.take("ns", "web", "7"));
        // While they are read: what they show may be older than the change.
        prefetch.begin("ns");
        prefetch.changed(Some("ns".into()));
        prefetch.end("ns", verdicts());
        assert!(!prefetch.take("ns", "web", "7"));
        // Another namespace's change does not matter; before the lists it is in them.
        prefetch.changed(Some("ns".into()));
        prefetch.begin("ns");
        prefetch.changed(Some("elsewhere".into()));
        prefetch.end("ns", verdicts());
        assert!(prefetch.take("ns", "web", "7"));
    }

    #[test]
    fn nothing_is_kept_once_the_initial_sync_is_done() {
        let prefetch = Prefetch::new("deploy");
        assert!(prefetch.namespace("ns", false).is_some());
        prefetch.begin("ns");
        prefetch.end("ns", HashMap::from([("web".to_string(), "7".to_string())]));
        assert!(prefetch.namespace("ns", true).is_none());
        assert!(!prefetch.take("ns", "web", "7"));
        assert!(prefetch.namespace("ns", false).is_none(), "closed for good");
    }
}
