//! The pure decisions of the build controller: which queued builds may run under the run policy,
//! which queued builds SerialLatestOnly cancels, and which finished builds the history limits
//! prune. No client here: these are plain functions over what the controller observed.

use slipway_crds::build::{BuildPhase, BuildRunPolicy, labels};
use slipway_crds::{Build, BuildConfig};

/// How many successful (and, separately, failed) builds are kept when the BuildConfig says nothing.
pub const DEFAULT_HISTORY_LIMIT: usize = 5;

/// What the run policy needs to know of one build of a BuildConfig.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sibling {
    pub name: String,
    pub number: i64,
    pub phase: BuildPhase,
    /// `status.cancelled` is set but the build has not reached Cancelled yet.
    pub cancelling: bool,
}

impl Sibling {
    /// The sibling view of a Build; builds without a number sort first (number 0).
    pub fn of(build: &Build) -> Self {
        let status = build.status.clone().unwrap_or_default();
        Self {
            name: build.metadata.name.clone().unwrap_or_default(),
            number: build_number(build),
            phase: status.phase,
            cancelling: status.cancelled && !status.phase.is_terminal(),
        }
    }

    fn active(&self) -> bool {
        matches!(self.phase, BuildPhase::Pending | BuildPhase::Running)
    }

    fn queued(&self) -> bool {
        self.phase == BuildPhase::New && !self.cancelling
    }

    /// Queued, or admitted at some point (its pod was made): everything but a cancelled build.
    fn live_or_ran(&self) -> bool {
        self.queued() || !matches!(self.phase, BuildPhase::New | BuildPhase::Cancelled) && !self.cancelling
    }
}

/// The build number from the annotation (`slipway.dev/build.number`), else from the name's
/// `-<n>` suffix, else 0.
pub fn build_number(build: &Build) -> i64 {
    let annotated = build
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(labels::BUILD_NUMBER))
        .and_then(|n| n.parse().ok());
    annotated
        .or_else(|| {
            build
                .metadata
                .name
                .as_deref()
                .and_then(|n| n.rsplit_once('-'))
                .and_then(|(_, n)| n.parse().ok())
        })
        .unwrap_or(0)
}

/// The run policy a build carries in its label (Serial when absent or unknown, as in OpenShift).
pub fn run_policy(build: &Build) -> BuildRunPolicy {
    match build
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::BUILD_RUN_POLICY))
        .map(String::as_str)
    {
        Some("Parallel") => BuildRunPolicy::Parallel,
        Some("SerialLatestOnly") => BuildRunPolicy::SerialLatestOnly,
        _ => BuildRunPolicy::Serial,
    }
}

/// What the run policy says about one queued (New) build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Create its pod now.
    Run,
    /// Wait: `blocker` runs or comes first.
    Wait { blocker: String },
    /// SerialLatestOnly: a newer build is queued (or already ran), so this one is cancelled.
    Superseded { by: String },
}

/// Whether the New build `me` may run, given all builds of its BuildConfig (`me` included).
///
/// Serial: only when no build is Pending or Running and `me` is the lowest-numbered queued build.
/// SerialLatestOnly: a queued build older than the newest queued one is superseded, and so is one
/// older than a build that was already admitted (builds are created concurrently, so an older
/// build can appear after a newer one started: running it would put an older commit after a newer
/// one); the newest runs when no build is active. Parallel: always. Builds being cancelled neither
/// run nor block.
pub fn admit(policy: BuildRunPolicy, me: &Sibling, siblings: &[Sibling]) -> Admission {
    if policy == BuildRunPolicy::Parallel {
        return Admission::Run;
    }
    let others = || siblings.iter().filter(|s| s.name != me.name);
    if policy == BuildRunPolicy::SerialLatestOnly
        && let Some(newer) = others()
            .filter(|s| s.live_or_ran() && s.number > me.number)
            .max_by_key(|s| s.number)
    {
        return Admission::Superseded {
            by: newer.name.clone(),
        };
    }
    if let Some(active) = others().find(|s| s.active()) {
        return Admission::Wait {
            blocker: active.name.clone(),
        };
    }
    if policy == BuildRunPolicy::Serial
        && let Some(earlier) = others()
            .filter(|s| s.queued() && s.number < me.number)
            .min_by_key(|s| s.number)
    {
        return Admission::Wait {
            blocker: earlier.name.clone(),
        };
    }
    Admission::Run
}

/// The limits of a BuildConfig: (successful, failed), defaults 5 each.
pub fn history_limits(config: Option<&BuildConfig>) -> (usize, usize) {
    let limit = |v: Option<i32>| v.map_or(DEFAULT_HISTORY_LIMIT, |n| usize::try_from(n).unwrap_or(0));
    match config {
        Some(c) => (
            limit(c.spec.successful_builds_history_limit),
            limit(c.spec.failed_builds_history_limit),
        ),
        None => (DEFAULT_HISTORY_LIMIT, DEFAULT_HISTORY_LIMIT),
    }
}

/// The finished builds to delete so that at most `successful` Complete builds and at most
/// `failed` Failed, Error or Cancelled builds remain: the oldest (lowest-numbered) go first.
pub fn prune(siblings: &[Sibling], successful: usize, failed: usize) -> Vec<String> {
    let mut complete: Vec<&Sibling> = siblings
        .iter()
        .filter(|s| s.phase == BuildPhase::Complete)
        .collect();
    let mut unsuccessful: Vec<&Sibling> = siblings
        .iter()
        .filter(|s| {
            matches!(
                s.phase,
                BuildPhase::Failed | BuildPhase::Error | BuildPhase::Cancelled
            )
        })
        .collect();
    let mut doomed = Vec::new();
    for (list, keep) in [(&mut complete, successful), (&mut unsuccessful, failed)] {
        // Newest first; everything after the first `keep` goes.
        list.sort_by_key(|s| std::cmp::Reverse(s.number));
        doomed.extend(list.iter().skip(keep).map(|s| s.name.clone()));
    }
    doomed.sort();
    doomed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(number: i64, phase: BuildPhase) -> Sibling {
        Sibling {
            name: format!("app-{number}"),
            number,
            phase,
            cancelling: false,
        }
    }

    fn queue(n: i64) -> Vec<Sibling> {
        (1..=n).map(|i| s(i, BuildPhase::New)).collect()
    }

    #[test]
    fn serial_runs_the_lowest_queued_build_only() {
        let all = queue(10);
        assert_eq!(admit(BuildRunPolicy::Serial, &all[0], &all), Admission::Run);
        for me in &all[1..] {
            assert_eq!(
                admit(BuildRunPolicy::Serial, me, &all),
                Admission::Wait {
                    blocker: "app-1".into()
                }
            );
        }
    }

    #[test]
    fn serial_waits_for_an_active_build() {
        let mut all = queue(3);
        all[0].phase = BuildPhase::Running;
        assert_eq!(
            admit(BuildRunPolicy::Serial, &all[1], &all),
            Admission::Wait {
                blocker: "app-1".into()
            }
        );
        all[0].phase = BuildPhase::Failed;
        assert_eq!(admit(BuildRunPolicy::Serial, &all[1], &all), Admission::Run);
        assert_eq!(
            admit(BuildRunPolicy::Serial, &all[2], &all),
            Admission::Wait {
                blocker: "app-2".into()
            }
        );
    }

    #[test]
    fn a_build_being_cancelled_does_not_block() {
        let mut all = queue(2);
        all[0].cancelling = true;
        assert_eq!(admit(BuildRunPolicy::Serial, &all[1], &all), Admission::Run);
    }

    #[test]
    fn parallel_runs_everything() {
        let mut all = queue(10);
        all[3].phase = BuildPhase::Running;
        for me in &all {
            assert_eq!(admit(BuildRunPolicy::Parallel, me, &all), Admission::Run);
        }
    }

    #[test]
    fn serial_latest_only_supersedes_older_queued_builds() {
        let mut all = queue(10);
        all[0].phase = BuildPhase::Running;
        for me in &all[1..9] {
            assert_eq!(
                admit(BuildRunPolicy::SerialLatestOnly, me, &all),
                Admission::Superseded { by: "app-10".into() }
            );
        }
        assert_eq!(
            admit(BuildRunPolicy::SerialLatestOnly, &all[9], &all),
            Admission::Wait {
                blocker: "app-1".into()
            }
        );
        all[0].phase = BuildPhase::Complete;
        assert_eq!(
            admit(BuildRunPolicy::SerialLatestOnly, &all[9], &all),
            Admission::Run
        );
    }

    #[test]
    fn serial_latest_only_never_runs_an_older_build_after_a_newer_one() {
        // app-1 shows up after app-2 was admitted (or finished, or failed): it is superseded.
        for phase in [
            BuildPhase::Pending,
            BuildPhase::Running,
            BuildPhase::Complete,
            BuildPhase::Failed,
        ] {
            let mut all = queue(2);
            all[1].phase = phase;
            assert_eq!(
                admit(BuildRunPolicy::SerialLatestOnly, &all[0], &all),
                Admission::Superseded { by: "app-2".into() },
                "{phase:?}"
            );
        }
        // A newer build that was cancelled supersedes nothing.
        let mut all = queue(2);
        all[1].phase = BuildPhase::Cancelled;
        assert_eq!(
            admit(BuildRunPolicy::SerialLatestOnly, &all[0], &all),
            Admission::Run
        );
        // Nor does one being cancelled (it still blocks until its pod is gone).
        all[1].phase = BuildPhase::Running;
        all[1].cancelling = true;
        assert_eq!(
            admit(BuildRunPolicy::SerialLatestOnly, &all[0], &all),
            Admission::Wait {
                blocker: "app-2".into()
            }
        );
    }

    #[test]
    fn policy_and_number_come_from_labels_and_annotations() {
        let mut build = Build::new("app-12", Default::default());
        assert_eq!(build_number(&build), 12);
        assert_eq!(run_policy(&build), BuildRunPolicy::Serial);
        build.metadata.annotations = Some([(labels::BUILD_NUMBER.to_string(), "3".to_string())].into());
        build.metadata.labels = Some(
            [(
                labels::BUILD_RUN_POLICY.to_string(),
                "SerialLatestOnly".to_string(),
            )]
            .into(),
        );
        assert_eq!(build_number(&build), 3);
        assert_eq!(run_policy(&build), BuildRunPolicy::SerialLatestOnly);
        assert_eq!(build_number(&Build::new("odd", Default::default())), 0);
    }

    #[test]
    fn prune_keeps_the_newest_of_each_kind() {
        let mut all: Vec<Sibling> = (1..=8).map(|i| s(i, BuildPhase::Complete)).collect();
        all.extend((9..=12).map(|i| s(i, BuildPhase::Failed)));
        all.push(s(13, BuildPhase::Cancelled));
        all.push(s(14, BuildPhase::Running));
        all.push(s(15, BuildPhase::New));
        let doomed = prune(&all, 5, 2);
        let mut expected: Vec<String> = ["app-1", "app-2", "app-3", "app-9", "app-10", "app-11"]
            .iter()
            .map(|n| n.to_string())
            .collect();
        expected.sort();
        assert_eq!(doomed, expected);
        assert!(prune(&all, 100, 100).is_empty());
        assert_eq!(prune(&all, 0, 0).len(), 13);
    }

    #[test]
    fn history_limits_default_to_five() {
        assert_eq!(history_limits(None), (5, 5));
        let mut bc = BuildConfig::new("app", Default::default());
        bc.spec.successful_builds_history_limit = Some(2);
        bc.spec.failed_builds_history_limit = Some(-1);
        assert_eq!(history_limits(Some(&bc)), (2, 0));
    }
}
