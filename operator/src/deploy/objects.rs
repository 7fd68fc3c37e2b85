//! What the deploy controller creates, built without a client: the ReplicaSet of a version and
//! the pod of an execNewPod hook; and the status it reports.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use slipway_crds::apps::{
    DeploymentDetails, DeploymentPhase, ExecNewPodHook, labels, selector_string, trigger_summary,
};
use slipway_crds::common::{condition_status, new_condition, set_condition};
use slipway_crds::{DeploymentConfig, DeploymentConfigStatus};

use super::strategy::{HookPoint, Params, Version, serving, serving_replicas};

/// The name of version `n`'s ReplicaSet.
pub fn version_name(dc: &str, n: i64) -> String {
    format!("{dc}-{n}")
}

/// The name of a version's hook pod.
pub fn hook_pod_name(version: &str, point: HookPoint) -> String {
    format!("{version}-hook-{}", point.as_str())
}

/// The ReplicaSet of version `n` of `dc`, with no replicas yet: the strategy scales it.
pub fn replica_set(
    dc: &DeploymentConfig,
    owner: OwnerReference,
    n: i64,
    details: Option<&DeploymentDetails>,
) -> Option<ReplicaSet> {
    let dc_name = dc.metadata.name.clone()?;
    let template = dc.spec.template.clone()?;
    let name = version_name(&dc_name, n);
    let mut pod_template: PodTemplateSpec = template.clone();
    let meta = pod_template.metadata.get_or_insert_with(Default::default);
    let pod_labels = meta.labels.get_or_insert_with(Default::default);
    let mut selector = dc.spec.selector.clone().unwrap_or_else(|| pod_labels.clone());
    pod_labels.insert(labels::DEPLOYMENT_CONFIG.into(), dc_name.clone());
    pod_labels.insert(labels::DEPLOYMENT.into(), name.clone());
    selector.insert(labels::DEPLOYMENT.into(), name.clone());
    let cause = details
        .and_then(|d| d.message.clone())
        .unwrap_or_else(|| "config change".into());
    Some(ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: dc.metadata.namespace.clone(),
            labels: Some(BTreeMap::from([(labels::DEPLOYMENT_CONFIG.into(), dc_name)])),
            annotations: Some(BTreeMap::from([
                (labels::LATEST_VERSION.into(), n.to_string()),
                (
                    labels::DEPLOYMENT_PHASE.into(),
                    DeploymentPhase::New.as_str().into(),
                ),
                (
                    labels::ENCODED_TEMPLATE.into(),
                    serde_json::to_string(&template).ok()?,
                ),
                (labels::CAUSE.into(), cause),
            ])),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(0),
            min_ready_seconds: dc.spec.min_ready_seconds,
            selector: LabelSelector {
                match_labels: Some(selector),
                match_expressions: None,
            },
            template: Some(pod_template),
        }),
        status: None,
    })
}

/// The pod of an execNewPod hook: the named container's image, env and volume mounts (only of
/// the volumes the hook lists), the hook's command and extra env; never restarted. Hook pods
/// carry no label a ReplicaSet selects. Err says what is wrong with the hook.
pub fn hook_pod(
    dc: &DeploymentConfig,
    version: &str,
    template: &PodTemplateSpec,
    point: HookPoint,
    hook: &ExecNewPodHook,
    owner: OwnerReference,
) -> Result<Pod, String> {
    let pod_spec = template.spec.clone().unwrap_or_default();
    let Some(mut container) = pod_spec
        .containers
        .iter()
        .find(|c| c.name == hook.container_name)
        .cloned()
    else {
        return Err(format!(
            "the {} hook names container {:?}, which the pod template does not have",
            point.as_str(),
            hook.container_name
        ));
    };
    container.command = Some(hook.command.clone());
    container.args = None;
    container.readiness_probe = None;
    container.liveness_probe = None;
    container.startup_probe = None;
    container.lifecycle = None;
    container.ports = None;
    let mut env = container.env.take().unwrap_or_default();
    env.extend(hook.env.iter().cloned());
    container.env = Some(env);
    if let Some(r) = &dc.spec.strategy.resources {
        container.resources = Some(r.clone());
    }
    let volumes: Vec<_> = pod_spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| hook.volumes.contains(&v.name))
        .cloned()
        .collect();
    container.volume_mounts = container.volume_mounts.map(|mounts| {
        mounts
            .into_iter()
            .filter(|m| hook.volumes.contains(&m.name))
            .collect()
    });
    let dc_name = dc.metadata.name.clone().unwrap_or_default();
    let mut pod_labels = dc.spec.strategy.labels.clone().unwrap_or_default();
    pod_labels.insert(labels::DEPLOYMENT_CONFIG.into(), dc_name);
    pod_labels.insert(labels::HOOK_FOR.into(), version.into());
    pod_labels.insert(labels::HOOK_POINT.into(), point.as_str().into());
    Ok(Pod {
        metadata: ObjectMeta {
            name: Some(hook_pod_name(version, point)),
            namespace: dc.metadata.namespace.clone(),
            labels: Some(pod_labels),
            annotations: dc.spec.strategy.annotations.clone(),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![container],
            volumes: (!volumes.is_empty()).then_some(volumes),
            restart_policy: Some("Never".into()),
            service_account_name: pod_spec.service_account_name.clone(),
            image_pull_secrets: pod_spec.image_pull_secrets.clone(),
            node_selector: pod_spec.node_selector.clone(),
            tolerations: pod_spec.tolerations.clone(),
            active_deadline_seconds: dc.spec.strategy.active_deadline_seconds,
            ..Default::default()
        }),
        status: None,
    })
}

/// Condition types and OpenShift's reasons.
pub mod conditions {
    pub const AVAILABLE: &str = "Available";
    pub const PROGRESSING: &str = "Progressing";
    pub const REPLICA_FAILURE: &str = "ReplicaFailure";
}

/// The status the DeploymentConfig should show: counts over its versions and the conditions
/// Available, Progressing and ReplicaFailure. `latestVersion` and `details` are kept as they are
/// (only the trigger step raises them).
pub fn status(dc: &DeploymentConfig, versions: &[Version]) -> DeploymentConfigStatus {
    use conditions::*;
    let mut status = dc.status.clone().unwrap_or_default();
    let spec = &dc.spec;
    let latest = versions.last();
    let rolled_out = latest.is_some_and(|v| v.phase.is_some_and(DeploymentPhase::is_terminal));
    let desired = if rolled_out && serving(versions).is_some() {
        serving_replicas(spec)
    } else {
        spec.replicas.max(0)
    };
    status.replicas = versions.iter().map(|v| v.current).sum();
    status.updated_replicas = latest.map(|v| v.current).unwrap_or(0);
    status.available_replicas = versions.iter().map(|v| v.available).sum();
    status.ready_replicas = versions.iter().map(|v| v.ready).sum();
    status.unavailable_replicas = (desired - status.available_replicas).max(0);
    status.observed_generation = dc.metadata.generation.unwrap_or(0);
    status.trigger_summary = Some(trigger_summary(spec));
    status.selector = selector_string(spec);
    let generation = dc.metadata.generation;
    let params = Params::of(spec);
    let minimum = if params.rolling {
        desired - params.max_unavailable
    } else {
        desired
    };
    let available = if status.available_replicas >= minimum {
        new_condition(
            AVAILABLE,
            condition_status::TRUE,
            "MinimumReplicasAvailable",
            "Deployment config has minimum availability.",
            generation,
        )
    } else {
        new_condition(
            AVAILABLE,
            condition_status::FALSE,
            "MinimumReplicasUnavailable",
            "Deployment config does not have minimum availability.",
            generation,
        )
    };
    set_condition(&mut status.conditions, available);
    if let Some(v) = latest {
        let (state, reason, message) = progressing(v, spec.paused);
        set_condition(
            &mut status.conditions,
            new_condition(PROGRESSING, state, &reason, &message, generation),
        );
    }
    match versions.iter().rev().find_map(|v| v.replica_failure.clone()) {
        Some((reason, message)) => {
            set_condition(
                &mut status.conditions,
                new_condition(
                    REPLICA_FAILURE,
                    condition_status::TRUE,
                    &reason,
                    &message,
                    generation,
                ),
            );
        }
        None => status.conditions.retain(|c| c.type_ != REPLICA_FAILURE),
    }
    status
}

/// The Progressing condition of the latest version: its state, reason and message.
fn progressing(v: &Version, paused: bool) -> (&'static str, String, String) {
    let phase = v.phase.unwrap_or(DeploymentPhase::New);
    match phase {
        DeploymentPhase::Complete if paused => (
            condition_status::UNKNOWN,
            "DeploymentConfigPaused".to_string(),
            "deployment config is paused".to_string(),
        ),
        DeploymentPhase::Complete => (
            condition_status::TRUE,
            "NewReplicationControllerAvailable".into(),
            format!("replication controller {:?} successfully rolled out", v.name),
        ),
        DeploymentPhase::Failed => {
            let text = v.cause_of_failure();
            let reason = if text.starts_with("RolloutCancelled") {
                "RolloutCancelled"
            } else {
                "ProgressDeadlineExceeded"
            };
            (
                condition_status::FALSE,
                reason.into(),
                format!(
                    "replication controller {:?} has failed progressing: {text}",
                    v.name
                ),
            )
        }
        DeploymentPhase::New | DeploymentPhase::Pending => (
            condition_status::TRUE,
            "NewReplicationControllerCreated".into(),
            format!("replication controller {:?} is waiting for its rollout", v.name),
        ),
        DeploymentPhase::Running => (
            condition_status::TRUE,
            "ReplicationControllerUpdated".into(),
            format!("replication controller {:?} is progressing", v.name),
        ),
    }
}

impl Version {
    /// Why a failed version failed, from its annotation.
    pub fn cause_of_failure(&self) -> String {
        self.status_reason.clone().unwrap_or_else(|| "failed".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, Volume, VolumeMount};
    use slipway_crds::DeploymentConfigSpec;
    use slipway_crds::common::find_condition;

    fn dc() -> DeploymentConfig {
        let mut dc = DeploymentConfig::new(
            "web",
            DeploymentConfigSpec {
                replicas: 2,
                selector: Some(BTreeMap::from([("app".into(), "web".into())])),
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "web".into(),
                            image: Some("img".into()),
                            volume_mounts: Some(vec![
                                VolumeMount {
                                    name: "data".into(),
                                    mount_path: "/data".into(),
                                    ..Default::default()
                                },
                                VolumeMount {
                                    name: "cache".into(),
                                    mount_path: "/cache".into(),
                                    ..Default::default()
                                },
                            ]),
                            ..Default::default()
                        }],
                        volumes: Some(vec![
                            Volume {
                                name: "data".into(),
                                ..Default::default()
                            },
                            Volume {
                                name: "cache".into(),
                                ..Default::default()
                            },
                        ]),
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            },
        );
        dc.metadata.namespace = Some("ns".into());
        dc
    }

    fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: "web-1".into(),
            uid: "u".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_version_selects_only_its_own_pods() {
        let rs = replica_set(&dc(), owner(), 3, None).unwrap();
        assert_eq!(rs.metadata.name.as_deref(), Some("web-3"));
        let spec = rs.spec.unwrap();
        let selector = spec.selector.match_labels.unwrap();
        assert_eq!(selector["app"], "web");
        assert_eq!(selector[labels::DEPLOYMENT], "web-3");
        let pod_labels = spec.template.unwrap().metadata.unwrap().labels.unwrap();
        assert!(selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)));
        assert_eq!(pod_labels[labels::DEPLOYMENT_CONFIG], "web");
        let annotations = rs.metadata.annotations.unwrap();
        assert_eq!(annotations[labels::LATEST_VERSION], "3");
        assert_eq!(annotations[labels::DEPLOYMENT_PHASE], "New");
        let template: PodTemplateSpec = serde_json::from_str(&annotations[labels::ENCODED_TEMPLATE]).unwrap();
        assert_eq!(Some(template), dc().spec.template);
    }

    #[test]
    fn a_hook_pod_takes_the_container_and_only_its_volumes() {
        let dc = dc();
        let hook = ExecNewPodHook {
            command: vec!["migrate".into()],
            env: vec![],
            container_name: "web".into(),
            volumes: vec!["data".into()],
        };
        let template = dc.spec.template.clone().unwrap();
        let pod = hook_pod(&dc, "web-3", &template, HookPoint::Mid, &hook, owner()).unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("web-3-hook-mid"));
        let labels = pod.metadata.labels.unwrap();
        assert!(!labels.contains_key(labels::DEPLOYMENT) && !labels.contains_key("app"));
        let spec = pod.spec.unwrap();
        assert_eq!(spec.containers[0].image.as_deref(), Some("img"));
        assert_eq!(spec.containers[0].command, Some(vec!["migrate".to_string()]));
        assert_eq!(spec.volumes.unwrap().len(), 1);
        assert_eq!(spec.containers[0].volume_mounts.as_ref().unwrap().len(), 1);
        let missing = ExecNewPodHook {
            container_name: "nope".into(),
            ..hook
        };
        let err = hook_pod(&dc, "web-3", &template, HookPoint::Pre, &missing, owner()).unwrap_err();
        assert!(err.contains("\"nope\""), "{err}");
    }

    #[test]
    fn status_counts_versions_and_reports_openshift_reasons() {
        let dc = dc();
        let versions = vec![Version {
            name: "web-1".into(),
            version: 1,
            phase: Some(DeploymentPhase::Complete),
            replicas: 2,
            current: 2,
            ready: 2,
            available: 2,
            settled: true,
            ..Default::default()
        }];
        let status = status(&dc, &versions);
        assert_eq!((status.replicas, status.available_replicas), (2, 2));
        let progressing = find_condition(&status.conditions, conditions::PROGRESSING).unwrap();
        assert_eq!(progressing.reason, "NewReplicationControllerAvailable");
        assert_eq!(
            find_condition(&status.conditions, conditions::AVAILABLE)
                .unwrap()
                .status,
            "True"
        );
        let mut again = dc.clone();
        again.status = Some(status.clone());
        assert_eq!(
            super::status(&again, &versions),
            status,
            "stable when nothing changed"
        );
    }
}
