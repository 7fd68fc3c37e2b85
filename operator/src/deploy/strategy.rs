//! The next step of a DeploymentConfig's rollout, as a pure function of what its ReplicaSets,
//! their annotations and its hook pods say. Nothing here remembers anything: the operator can be
//! stopped between any two steps and the next reconcile picks up where the last one left off.

use std::time::Duration;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use slipway_crds::DeploymentConfigSpec;
use slipway_crds::apps::{
    DeploymentPhase, DeploymentStrategyType, LifecycleHook, LifecycleHookFailurePolicy,
};

/// Where a hook runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookPoint {
    Pre,
    Mid,
    Post,
}

impl HookPoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pre => "pre",
            Self::Mid => "mid",
            Self::Post => "post",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "pre" => Some(Self::Pre),
            "mid" => Some(Self::Mid),
            "post" => Some(Self::Post),
            _ => None,
        }
    }
}

/// The recorded outcome of a hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookOutcome {
    Complete,
    Failed,
}

/// One version's ReplicaSet as observed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Version {
    pub name: String,
    pub version: i64,
    pub phase: Option<DeploymentPhase>,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `status.replicas`: pods that exist and are not terminating.
    pub current: i32,
    pub ready: i32,
    pub available: i32,
    /// The ReplicaSet controller has acted on the latest spec and its counts agree with it; only
    /// then are its counts a safe basis for the next step.
    pub settled: bool,
    pub cancelled: bool,
    pub started_at: Option<Timestamp>,
    pub last_step: Option<Timestamp>,
    pub hooks: Vec<(HookPoint, HookOutcome)>,
    /// The ReplicaSet's ReplicaFailure condition (reason, message) when it is True.
    pub replica_failure: Option<(String, String)>,
    pub template: Option<PodTemplateSpec>,
    pub cause: Option<String>,
    /// Why the rollout ended as it did (`Reason: message`).
    pub status_reason: Option<String>,
}

impl Version {
    fn phase(&self) -> DeploymentPhase {
        self.phase.unwrap_or(DeploymentPhase::New)
    }

    fn hook(&self, point: HookPoint) -> Option<HookOutcome> {
        self.hooks.iter().find(|(p, _)| *p == point).map(|(_, o)| *o)
    }
}

/// The phase of a hook pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookPodPhase {
    Running,
    Succeeded,
    Failed,
    /// Being deleted (a retry waits for it to go).
    Terminating,
}

/// A hook pod as observed.
#[derive(Clone, Debug, PartialEq)]
pub struct HookPod {
    pub version: String,
    pub point: HookPoint,
    pub phase: HookPodPhase,
}

/// What the reconcile does next. One step at a time; each is idempotent.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Nothing to do until something changes, or until this long has passed.
    Wait(Option<Duration>),
    /// The rollout of a version begins (phase Running, the timeout clock starts).
    Start {
        version: String,
    },
    /// Set a ReplicaSet's replicas. `progress` stamps the rollout's last scaling step.
    Scale {
        version: String,
        from: i32,
        to: i32,
        progress: bool,
    },
    /// Run a hook: create its pod, or tag its images.
    RunHook {
        version: String,
        point: HookPoint,
        hook: LifecycleHook,
    },
    /// Delete a failed hook pod so it is run again (failurePolicy Retry).
    RetryHook {
        version: String,
        point: HookPoint,
    },
    /// Record a hook's outcome on the ReplicaSet.
    RecordHook {
        version: String,
        point: HookPoint,
        outcome: HookOutcome,
    },
    Complete {
        version: String,
    },
    Fail {
        version: String,
        reason: String,
        message: String,
    },
    /// Delete an old ReplicaSet beyond revisionHistoryLimit.
    Prune {
        version: String,
    },
}

/// Seconds a rollout may take by default, as in OpenShift.
pub const DEFAULT_TIMEOUT_SECONDS: i64 = 600;

/// The rollout parameters in effect, with OpenShift's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub rolling: bool,
    pub max_surge: i32,
    pub max_unavailable: i32,
    pub interval: Duration,
    pub update_period: Duration,
    pub timeout: Duration,
    pub pre: Option<LifecycleHook>,
    pub mid: Option<LifecycleHook>,
    pub post: Option<LifecycleHook>,
}

impl Params {
    pub fn of(spec: &DeploymentConfigSpec) -> Self {
        let desired = spec.replicas.max(0);
        let strategy = &spec.strategy;
        match strategy.type_ {
            DeploymentStrategyType::Recreate => {
                let p = strategy.recreate_params.clone().unwrap_or_default();
                Self {
                    rolling: false,
                    max_surge: 0,
                    max_unavailable: desired,
                    interval: Duration::from_secs(1),
                    update_period: Duration::from_secs(1),
                    timeout: seconds(p.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS)),
                    pre: p.pre,
                    mid: p.mid,
                    post: p.post,
                }
            }
            // Custom deployers are not run; their versions roll like Rolling ones.
            DeploymentStrategyType::Rolling | DeploymentStrategyType::Custom => {
                let p = strategy.rolling_params.clone().unwrap_or_default();
                let quarter = IntOrString::String("25%".into());
                let max_surge = resolve(p.max_surge.as_ref().unwrap_or(&quarter), desired, true);
                let mut max_unavailable =
                    resolve(p.max_unavailable.as_ref().unwrap_or(&quarter), desired, false);
                if max_surge == 0 && max_unavailable == 0 {
                    // As Kubernetes does: something has to give.
                    max_unavailable = 1;
                }
                Self {
                    rolling: true,
                    max_surge,
                    max_unavailable,
                    interval: seconds(p.interval_seconds.unwrap_or(1)),
                    update_period: seconds(p.update_period_seconds.unwrap_or(1)),
                    timeout: seconds(p.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS)),
                    pre: p.pre,
                    mid: None,
                    post: p.post,
                }
            }
        }
    }
}

fn seconds(s: i64) -> Duration {
    Duration::from_secs(u64::try_from(s).unwrap_or(1).max(1))
}

/// A number or a percentage of `total`; percentages round up for surge and down for
/// unavailability, as Kubernetes rounds them. Malformed values count as zero.
pub fn resolve(value: &IntOrString, total: i32, round_up: bool) -> i32 {
    match value {
        IntOrString::Int(n) => (*n).max(0),
        IntOrString::String(s) => {
            let percent: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let scaled = percent.max(0) * i64::from(total);
            let n = if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            };
            i32::try_from(n).unwrap_or(i32::MAX)
        }
    }
}

/// The replicas the serving version should have: none in test mode once rolled out.
pub fn serving_replicas(spec: &DeploymentConfigSpec) -> i32 {
    if spec.test { 0 } else { spec.replicas.max(0) }
}

/// The version that serves when no rollout runs: the latest if it completed, else the newest
/// one that did.
pub fn serving(versions: &[Version]) -> Option<&Version> {
    versions
        .iter()
        .rev()
        .find(|v| v.phase() == DeploymentPhase::Complete)
}

/// The next step for a DeploymentConfig whose versions (ReplicaSets, oldest first) and hook
/// pods are as observed, at `now`.
pub fn next_step(
    spec: &DeploymentConfigSpec,
    versions: &[Version],
    hook_pods: &[HookPod],
    now: Timestamp,
) -> Step {
    let Some((latest, older)) = versions.split_last() else {
        return Step::Wait(None);
    };
    // A newer version cancels an older rollout that is still running.
    if let Some(stale) = older.iter().find(|v| !v.phase().is_terminal()) {
        return Step::Fail {
            version: stale.name.clone(),
            reason: "NewerVersion".into(),
            message: format!("cancelled: version {} replaces it", latest.version),
        };
    }
    match latest.phase() {
        DeploymentPhase::New | DeploymentPhase::Pending => {
            if latest.cancelled {
                cancelled(latest)
            } else {
                Step::Start {
                    version: latest.name.clone(),
                }
            }
        }
        DeploymentPhase::Running => rollout_step(spec, latest, older, hook_pods, now),
        DeploymentPhase::Complete | DeploymentPhase::Failed => steady_step(spec, versions),
    }
}

fn cancelled(latest: &Version) -> Step {
    Step::Fail {
        version: latest.name.clone(),
        reason: "RolloutCancelled".into(),
        message: "the rollout was cancelled".into(),
    }
}

fn rollout_step(
    spec: &DeploymentConfigSpec,
    latest: &Version,
    older: &[Version],
    hook_pods: &[HookPod],
    now: Timestamp,
) -> Step {
    if latest.cancelled {
        return cancelled(latest);
    }
    let params = Params::of(spec);
    let started = latest.started_at.unwrap_or(now);
    let elapsed = elapsed(started, now);
    if elapsed >= params.timeout {
        return Step::Fail {
            version: latest.name.clone(),
            reason: "ProgressDeadlineExceeded".into(),
            message: format!(
                "version {} did not roll out within {} s",
                latest.version,
                params.timeout.as_secs()
            ),
        };
    }
    // Wake up for the timeout even when nothing else happens.
    let tick = params.interval.min(params.timeout - elapsed);
    let desired = spec.replicas.max(0);
    let old: Vec<&Version> = older.iter().filter(|v| v.replicas > 0 || v.current > 0).collect();
    let hook = |point: HookPoint, hook: &Option<LifecycleHook>| {
        hook.as_ref()
            .and_then(|h| hook_step(latest, point, h, hook_pods, tick))
    };
    if let Some(step) = hook(HookPoint::Pre, &params.pre) {
        return step;
    }
    if params.rolling && !old.is_empty() {
        if let Some(step) = rolling_scale_step(latest, &old, desired, &params, now, tick) {
            return step;
        }
    } else {
        // Recreate, and the first version of Rolling: the old version goes first, entirely.
        if let Some(o) = old.iter().find(|o| o.replicas > 0) {
            return scale(o, 0, false);
        }
        if old.iter().any(|o| o.current > 0 || !o.settled) {
            return Step::Wait(Some(tick));
        }
        if let Some(step) = hook(HookPoint::Mid, &params.mid) {
            return step;
        }
        if latest.replicas != desired {
            return scale(latest, desired, true);
        }
        if !latest.settled || latest.available < desired {
            return Step::Wait(Some(tick));
        }
    }
    if let Some(step) = hook(HookPoint::Post, &params.post) {
        return step;
    }
    Step::Complete {
        version: latest.name.clone(),
    }
}

/// Time from `since` to `now`; zero when the clock went back.
fn elapsed(since: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(since)).unwrap_or_default()
}

fn scale(v: &Version, to: i32, progress: bool) -> Step {
    Step::Scale {
        version: v.name.clone(),
        from: v.replicas,
        to,
        progress,
    }
}

/// One step of a rolling update, or None once the new version has all replicas available and
/// the old ones are gone. Every step is taken only while all ReplicaSets are settled, so the
/// counts it rests on are the cluster's, and it keeps
/// `pods ≤ desired + maxSurge` and `available ≥ desired − maxUnavailable`.
fn rolling_scale_step(
    latest: &Version,
    old: &[&Version],
    desired: i32,
    params: &Params,
    now: Timestamp,
    tick: Duration,
) -> Option<Step> {
    if !latest.settled || old.iter().any(|o| !o.settled) {
        return Some(Step::Wait(Some(tick)));
    }
    let old_replicas: i32 = old.iter().map(|o| o.replicas).sum();
    if latest.replicas >= desired && latest.available >= desired && old_replicas == 0 {
        return old
            .iter()
            .any(|o| o.current > 0)
            .then_some(Step::Wait(Some(tick)));
    }
    if let Some(last) = latest.last_step {
        let since = elapsed(last, now);
        if since < params.update_period {
            return Some(Step::Wait(Some(params.update_period - since)));
        }
    }
    let total = latest.replicas + old_replicas;
    // Up: the new version grows into the room the surge leaves.
    if latest.replicas < desired {
        let room = desired + params.max_surge - total;
        if room > 0 {
            return Some(scale(latest, (latest.replicas + room).min(desired), true));
        }
    }
    // Down: first old pods that are not available (removing them costs no availability) ...
    let min_available = desired - params.max_unavailable;
    let new_unavailable = latest.replicas - latest.available;
    let max_scaled_down = total - min_available - new_unavailable;
    if max_scaled_down > 0
        && let Some(o) = old.iter().find(|o| o.replicas > o.available)
    {
        let removable = (o.replicas - o.available).min(max_scaled_down);
        return Some(scale(o, o.replicas - removable, true));
    }
    // ... then available ones, as far as the unavailability budget allows.
    let available: i32 = latest.available + old.iter().map(|o| o.available).sum::<i32>();
    let budget = available - min_available;
    if budget > 0
        && let Some(o) = old.iter().find(|o| o.replicas > 0)
    {
        return Some(scale(o, o.replicas - budget.min(o.replicas), true));
    }
    Some(Step::Wait(Some(tick)))
}

/// The step a hook needs, or None when it is done (or failed and is ignored).
fn hook_step(
    latest: &Version,
    point: HookPoint,
    hook: &LifecycleHook,
    pods: &[HookPod],
    tick: Duration,
) -> Option<Step> {
    let fail = || Step::Fail {
        version: latest.name.clone(),
        reason: "HookFailed".into(),
        message: format!("the {} hook failed (failurePolicy Abort)", point.as_str()),
    };
    match latest.hook(point) {
        Some(HookOutcome::Complete) => return None,
        Some(HookOutcome::Failed) => {
            return (hook.failure_policy == LifecycleHookFailurePolicy::Abort).then(fail);
        }
        None => {}
    }
    let pod = pods.iter().find(|p| p.version == latest.name && p.point == point);
    let record = |outcome| Step::RecordHook {
        version: latest.name.clone(),
        point,
        outcome,
    };
    Some(match pod.map(|p| p.phase) {
        None => Step::RunHook {
            version: latest.name.clone(),
            point,
            hook: hook.clone(),
        },
        Some(HookPodPhase::Running | HookPodPhase::Terminating) => Step::Wait(Some(tick)),
        Some(HookPodPhase::Succeeded) => record(HookOutcome::Complete),
        Some(HookPodPhase::Failed) => match hook.failure_policy {
            LifecycleHookFailurePolicy::Retry => Step::RetryHook {
                version: latest.name.clone(),
                point,
            },
            LifecycleHookFailurePolicy::Abort | LifecycleHookFailurePolicy::Ignore => {
                record(HookOutcome::Failed)
            }
        },
    })
}

/// No rollout runs: the serving version has its replicas, every other one none, and old ones
/// beyond the history limit go.
fn steady_step(spec: &DeploymentConfigSpec, versions: &[Version]) -> Step {
    let serving = serving(versions);
    // Restore (or scale) the serving version first, so a failed rollout's pods go only once the
    // previous version is back.
    if let Some(s) = serving {
        let want = serving_replicas(spec);
        if s.replicas != want {
            return scale(s, want, false);
        }
    }
    let is_serving = |v: &Version| serving.is_some_and(|s| s.name == v.name);
    if let Some(other) = versions.iter().rev().find(|v| !is_serving(v) && v.replicas > 0) {
        return scale(other, 0, false);
    }
    if let Some(name) = prunable(spec, versions).into_iter().next() {
        return Step::Prune { version: name };
    }
    Step::Wait(None)
}

/// Old versions beyond `revisionHistoryLimit` (default 10), oldest first; never the latest, the
/// serving one, or one that still has replicas.
pub fn prunable(spec: &DeploymentConfigSpec, versions: &[Version]) -> Vec<String> {
    let limit = usize::try_from(spec.revision_history_limit.unwrap_or(10).max(0)).unwrap_or(10);
    let Some(latest) = versions.last() else {
        return vec![];
    };
    let serving = serving(versions).map(|v| v.name.as_str());
    let candidates: Vec<&Version> = versions
        .iter()
        .filter(|v| v.name != latest.name && Some(v.name.as_str()) != serving)
        .collect();
    let excess = candidates.len().saturating_sub(limit);
    candidates
        .into_iter()
        .take(excess)
        .filter(|v| v.replicas == 0 && v.current == 0)
        .map(|v| v.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_crds::apps::{
        DeploymentStrategy, ExecNewPodHook, RecreateDeploymentStrategyParams, RollingDeploymentStrategyParams,
    };

    fn now() -> Timestamp {
        Timestamp::from_second(1_000_000).unwrap()
    }

    fn v(n: i64, phase: DeploymentPhase, replicas: i32, available: i32) -> Version {
        Version {
            name: format!("web-{n}"),
            version: n,
            phase: Some(phase),
            replicas,
            current: replicas,
            ready: available,
            available,
            settled: true,
            started_at: Some(now()),
            ..Default::default()
        }
    }

    fn rolling(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> DeploymentConfigSpec {
        DeploymentConfigSpec {
            replicas,
            strategy: DeploymentStrategy {
                rolling_params: Some(RollingDeploymentStrategyParams {
                    max_surge: Some(surge),
                    max_unavailable: Some(unavailable),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn hook(policy: LifecycleHookFailurePolicy) -> LifecycleHook {
        LifecycleHook {
            failure_policy: policy,
            exec_new_pod: Some(ExecNewPodHook {
                command: vec!["true".into()],
                env: vec![],
                container_name: "web".into(),
                volumes: vec![],
            }),
            tag_images: vec![],
        }
    }

    fn recreate(pre: Option<LifecycleHook>, mid: Option<LifecycleHook>) -> DeploymentConfigSpec {
        DeploymentConfigSpec {
            replicas: 2,
            strategy: DeploymentStrategy {
                type_: DeploymentStrategyType::Recreate,
                recreate_params: Some(RecreateDeploymentStrategyParams {
                    pre,
                    mid,
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Plays the ReplicaSet controller and kwok: every ReplicaSet gets the pods it asks for,
    /// all of them available at once.
    fn settle(versions: &mut [Version]) {
        for v in versions {
            v.current = v.replicas;
            v.ready = v.replicas;
            v.available = v.replicas;
        }
    }

    #[test]
    fn percentages_round_like_kubernetes() {
        let pct = |s: &str| IntOrString::String(s.into());
        assert_eq!(resolve(&pct("25%"), 10, true), 3);
        assert_eq!(resolve(&pct("25%"), 10, false), 2);
        assert_eq!(resolve(&IntOrString::Int(2), 10, false), 2);
        assert_eq!(resolve(&pct("junk"), 10, true), 0);
        let p = Params::of(&rolling(4, IntOrString::Int(0), IntOrString::Int(0)));
        assert_eq!((p.max_surge, p.max_unavailable), (0, 1));
    }

    #[test]
    fn rolling_keeps_its_bounds_at_every_step() {
        for (surge, unavailable) in [(1, 0), (0, 1), (2, 2), (3, 1), (10, 10)] {
            let spec = rolling(4, IntOrString::Int(surge), IntOrString::Int(unavailable));
            let mut versions = vec![
                v(1, DeploymentPhase::Complete, 4, 4),
                v(2, DeploymentPhase::Running, 0, 0),
            ];
            let mut steps = 0;
            loop {
                steps += 1;
                assert!(
                    steps < 100,
                    "no progress with surge {surge} unavailable {unavailable}"
                );
                // Time moves on past the update period between steps.
                let at = now() + k8s_openapi::jiff::SignedDuration::from_secs(steps * 10);
                match next_step(&spec, &versions, &[], at) {
                    Step::Scale { version, to, .. } => {
                        let i = versions.iter().position(|v| v.name == version).unwrap();
                        // Scaling down removes pods at once; scaling up makes pods that are not
                        // available yet.
                        let before_available: i32 = versions.iter().map(|v| v.available).sum();
                        versions[i].replicas = to;
                        versions[i].current = to;
                        versions[i].available = versions[i].available.min(to);
                        let pods: i32 = versions.iter().map(|v| v.current).sum();
                        assert!(pods <= 4 + surge, "{pods} pods with surge {surge}");
                        let available: i32 = versions.iter().map(|v| v.available).sum();
                        let floor = 4 - Params::of(&spec).max_unavailable;
                        assert!(
                            available >= floor.min(before_available),
                            "{available} available with unavailable {unavailable}"
                        );
                        versions[1].last_step = Some(at);
                    }
                    Step::Wait(_) => settle(&mut versions),
                    Step::Complete { .. } => break,
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert_eq!((versions[0].replicas, versions[1].replicas), (0, 4));
        }
    }

    #[test]
    fn rolling_waits_for_unsettled_replica_sets() {
        let spec = rolling(4, IntOrString::Int(1), IntOrString::Int(1));
        let mut versions = vec![
            v(1, DeploymentPhase::Complete, 4, 4),
            v(2, DeploymentPhase::Running, 1, 0),
        ];
        versions[0].settled = false;
        assert!(matches!(
            next_step(&spec, &versions, &[], now()),
            Step::Wait(Some(_))
        ));
    }

    #[test]
    fn the_first_rolling_version_comes_up_at_once() {
        let spec = rolling(3, IntOrString::Int(1), IntOrString::Int(0));
        let versions = vec![v(1, DeploymentPhase::Running, 0, 0)];
        assert_eq!(
            next_step(&spec, &versions, &[], now()),
            Step::Scale {
                version: "web-1".into(),
                from: 0,
                to: 3,
                progress: true
            }
        );
    }

    #[test]
    fn recreate_runs_pre_then_scales_down_then_mid_then_up() {
        let spec = recreate(
            Some(hook(LifecycleHookFailurePolicy::Abort)),
            Some(hook(LifecycleHookFailurePolicy::Abort)),
        );
        let mut versions = vec![
            v(1, DeploymentPhase::Complete, 2, 2),
            v(2, DeploymentPhase::Running, 0, 0),
        ];
        let step = next_step(&spec, &versions, &[], now());
        assert!(
            matches!(
                step,
                Step::RunHook {
                    point: HookPoint::Pre,
                    ..
                }
            ),
            "{step:?}"
        );
        let running = HookPod {
            version: "web-2".into(),
            point: HookPoint::Pre,
            phase: HookPodPhase::Running,
        };
        assert!(matches!(
            next_step(&spec, &versions, std::slice::from_ref(&running), now()),
            Step::Wait(_)
        ));
        let done = HookPod {
            phase: HookPodPhase::Succeeded,
            ..running
        };
        assert!(matches!(
            next_step(&spec, &versions, &[done], now()),
            Step::RecordHook {
                outcome: HookOutcome::Complete,
                ..
            }
        ));
        versions[1].hooks.push((HookPoint::Pre, HookOutcome::Complete));
        assert!(matches!(
            next_step(&spec, &versions, &[], now()),
            Step::Scale { to: 0, ref version, .. } if version == "web-1"
        ));
        versions[0].replicas = 0;
        // Pods still terminating: the mid hook waits.
        assert!(matches!(next_step(&spec, &versions, &[], now()), Step::Wait(_)));
        versions[0].current = 0;
        assert!(matches!(
            next_step(&spec, &versions, &[], now()),
            Step::RunHook {
                point: HookPoint::Mid,
                ..
            }
        ));
        versions[1].hooks.push((HookPoint::Mid, HookOutcome::Complete));
        assert!(matches!(
            next_step(&spec, &versions, &[], now()),
            Step::Scale { to: 2, .. }
        ));
        versions[1].replicas = 2;
        settle(&mut versions);
        assert!(matches!(
            next_step(&spec, &versions, &[], now()),
            Step::Complete { .. }
        ));
    }

    #[test]
    fn failed_hooks_follow_their_policy() {
        let failed = |version: &str| HookPod {
            version: version.into(),
            point: HookPoint::Pre,
            phase: HookPodPhase::Failed,
        };
        let versions = vec![
            v(1, DeploymentPhase::Complete, 2, 2),
            v(2, DeploymentPhase::Running, 0, 0),
        ];
        let retry = recreate(Some(hook(LifecycleHookFailurePolicy::Retry)), None);
        assert!(matches!(
            next_step(&retry, &versions, &[failed("web-2")], now()),
            Step::RetryHook { .. }
        ));
        let abort = recreate(Some(hook(LifecycleHookFailurePolicy::Abort)), None);
        assert!(matches!(
            next_step(&abort, &versions, &[failed("web-2")], now()),
            Step::RecordHook {
                outcome: HookOutcome::Failed,
                ..
            }
        ));
        let mut recorded = versions.clone();
        recorded[1].hooks.push((HookPoint::Pre, HookOutcome::Failed));
        assert!(matches!(
            next_step(&abort, &recorded, &[], now()),
            Step::Fail { ref reason, .. } if reason == "HookFailed"
        ));
        let ignore = recreate(Some(hook(LifecycleHookFailurePolicy::Ignore)), None);
        assert!(matches!(
            next_step(&ignore, &recorded, &[], now()),
            Step::Scale { to: 0, .. }
        ));
    }

    #[test]
    fn a_failed_version_gives_way_to_the_previous_complete_one() {
        let spec = rolling(3, IntOrString::Int(1), IntOrString::Int(1));
        let mut versions = vec![
            v(1, DeploymentPhase::Complete, 1, 1),
            v(2, DeploymentPhase::Failed, 3, 3),
        ];
        assert!(matches!(
            next_step(&spec, &versions, &[], now()),
            Step::Scale { ref version, to: 3, .. } if version == "web-1"
        ));
        versions[0].replicas = 3;
        assert!(matches!(
            next_step(&spec, &versions, &[], now()),
            Step::Scale { ref version, to: 0, .. } if version == "web-2"
        ));
        versions[1].replicas = 0;
        assert_eq!(next_step(&spec, &versions, &[], now()), Step::Wait(None));
    }

    #[test]
    fn timeouts_and_cancellation_fail_the_rollout() {
        let spec = rolling(3, IntOrString::Int(1), IntOrString::Int(1));
        let mut versions = vec![
            v(1, DeploymentPhase::Complete, 3, 3),
            v(2, DeploymentPhase::Running, 0, 0),
        ];
        let late = now() + k8s_openapi::jiff::SignedDuration::from_secs(601);
        assert!(matches!(
            next_step(&spec, &versions, &[], late),
            Step::Fail { ref reason, .. } if reason == "ProgressDeadlineExceeded"
        ));
        versions[1].cancelled = true;
        assert!(matches!(
            next_step(&spec, &versions, &[], now()),
            Step::Fail { ref reason, .. } if reason == "RolloutCancelled"
        ));
    }

    #[test]
    fn a_newer_version_cancels_an_older_rollout() {
        let spec = rolling(3, IntOrString::Int(1), IntOrString::Int(1));
        let versions = vec![
            v(1, DeploymentPhase::Running, 1, 0),
            v(2, DeploymentPhase::New, 0, 0),
        ];
        assert!(matches!(
            next_step(&spec, &versions, &[], now()),
            Step::Fail { ref version, .. } if version == "web-1"
        ));
    }

    #[test]
    fn test_mode_scales_to_zero_after_the_rollout() {
        let mut spec = rolling(2, IntOrString::Int(1), IntOrString::Int(1));
        spec.test = true;
        let versions = vec![v(1, DeploymentPhase::Complete, 2, 2)];
        assert!(matches!(
            next_step(&spec, &versions, &[], now()),
            Step::Scale { to: 0, .. }
        ));
    }

    #[test]
    fn history_keeps_the_limit_and_never_versions_with_replicas() {
        let mut spec = rolling(1, IntOrString::Int(1), IntOrString::Int(1));
        spec.revision_history_limit = Some(2);
        let mut versions: Vec<Version> = (1..=6).map(|n| v(n, DeploymentPhase::Complete, 0, 0)).collect();
        versions[5].replicas = 1;
        versions[0].current = 1; // still has a pod: kept
        assert_eq!(
            prunable(&spec, &versions),
            vec!["web-2".to_string(), "web-3".to_string()]
        );
        assert_eq!(
            next_step(&spec, &versions, &[], now()),
            Step::Prune {
                version: "web-2".into()
            }
        );
    }
}
