//! Leader election through a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does:
//! one replica holds the Lease and runs the controllers; the others wait and take over when it
//! stops renewing. Written here because kube-runtime 5 has no leader election, and the crates
//! that add one lag behind kube's major versions.
//!
//! Every write is a replace with the resourceVersion that was read, so two candidates that both
//! see an expired Lease cannot both win: one of them gets a conflict.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};

/// Timings, as client-go names them.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The Lease's namespace and name.
    pub namespace: String,
    pub name: String,
    /// Who this replica is (the pod name).
    pub identity: String,
    /// How long a Lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How often the leader renews.
    pub renew_period: Duration,
    /// How often a candidate retries.
    pub retry_period: Duration,
}

impl Settings {
    /// client-go's defaults: 15 s lease, renew every 10 s... here a little tighter: renew every
    /// 5 s, retry every 2 s.
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_period: Duration::from_secs(5),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What a candidate does about the Lease it read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// There is no Lease: create it, held by us.
    Create,
    /// We hold it: renew.
    Renew,
    /// Someone else held it and let it expire (or released it): take it over.
    TakeOver,
    /// Someone else holds it: wait.
    Wait { holder: String },
}

/// Decides, from the Lease as read and the time, what `identity` does (a pure function).
pub fn decide(lease: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Step {
    let Some(spec) = lease else {
        return Step::Create;
    };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder == identity {
        return Step::Renew;
    }
    if holder.is_empty() {
        return Step::TakeOver;
    }
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(15)));
    match renewed {
        Some(at) if at.checked_add(duration).is_ok_and(|expiry| expiry > now) => Step::Wait { holder },
        _ => Step::TakeOver,
    }
}

/// The Lease spec after `step` by `identity` at `now`.
fn next_spec(old: Option<&LeaseSpec>, step: &Step, settings: &Settings, now: Timestamp) -> LeaseSpec {
    let mut spec = old.cloned().unwrap_or_default();
    let now = MicroTime(now);
    if *step != Step::Renew {
        spec.acquire_time = Some(now.clone());
        spec.lease_transitions =
            Some(old.and_then(|s| s.lease_transitions).unwrap_or(0) + i32::from(old.is_some()));
    }
    spec.holder_identity = Some(settings.identity.clone());
    spec.lease_duration_seconds = Some(i32::try_from(settings.lease_duration.as_secs()).unwrap_or(15));
    spec.renew_time = Some(now);
    spec
}

/// One attempt to acquire or renew; `Ok(true)` when we hold the Lease afterwards.
pub async fn try_acquire_or_renew(api: &Api<Lease>, settings: &Settings) -> Result<bool, kube::Error> {
    let current = api.get_opt(&settings.name).await?;
    let now = Timestamp::now();
    let step = decide(
        current.as_ref().and_then(|l| l.spec.as_ref()),
        &settings.identity,
        now,
    );
    if let Step::Wait { .. } = step {
        return Ok(false);
    }
    let spec = next_spec(
        current.as_ref().and_then(|l| l.spec.as_ref()),
        &step,
        settings,
        now,
    );
    let result = match current {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(settings.name.clone()),
                    namespace: Some(settings.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(spec),
            };
            api.create(&PostParams::default(), &lease).await
        }
        Some(mut lease) => {
            // The resourceVersion read above makes this a compare-and-swap.
            lease.spec = Some(spec);
            api.replace(&settings.name, &PostParams::default(), &lease).await
        }
    };
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Waits until this replica holds the Lease.
pub async fn acquire(client: &Client, settings: &Settings) {
    let api: Api<Lease> = Api::namespaced(client.clone(), &settings.namespace);
    let mut logged = false;
    loop {
        match try_acquire_or_renew(&api, settings).await {
            Ok(true) => {
                tracing::info!(lease = %settings.name, identity = %settings.identity, "became the leader");
                return;
            }
            Ok(false) if !logged => {
                tracing::info!(lease = %settings.name, "another replica leads; waiting");
                logged = true;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, lease = %settings.name, "reading the lease"),
        }
        tokio::time::sleep(settings.retry_period).await;
    }
}

/// Renews the Lease while this replica leads; returns when leadership is lost (a renewal did not
/// succeed within the lease duration, or someone else holds the Lease). The caller must then stop
/// its controllers: the usual answer is to exit and let the pod restart as a candidate.
pub async fn hold(client: &Client, settings: &Settings) {
    let api: Api<Lease> = Api::namespaced(client.clone(), &settings.namespace);
    let mut last_renewal = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(settings.renew_period).await;
        match try_acquire_or_renew(&api, settings).await {
            Ok(true) => last_renewal = tokio::time::Instant::now(),
            Ok(false) => {
                tracing::error!(lease = %settings.name, "another replica took the lease");
                return;
            }
            Err(e) => tracing::warn!(error = %e, lease = %settings.name, "renewing the lease"),
        }
        if last_renewal.elapsed() >= settings.lease_duration {
            tracing::error!(lease = %settings.name, "could not renew the lease in time");
            return;
        }
    }
}

/// Gives the Lease up (on shutdown) so that another replica takes over at once.
pub async fn release(client: &Client, settings: &Settings) {
    let api: Api<Lease> = Api::namespaced(client.clone(), &settings.namespace);
    if let Ok(Some(mut lease)) = api.get_opt(&settings.name).await
        && let Some(spec) = lease.spec.as_mut()
        && spec.holder_identity.as_deref() == Some(settings.identity.as_str())
    {
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        if let Err(e) = api.replace(&settings.name, &PostParams::default(), &lease).await {
            tracing::warn!(error = %e, "releasing the lease");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed_secs_ago: i64, now: Timestamp) -> LeaseSpec {
        LeaseSpec {
            holder_identity: (!holder.is_empty()).then(|| holder.to_string()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(now - SignedDuration::from_secs(renewed_secs_ago))),
            ..Default::default()
        }
    }

    #[test]
    fn candidates_create_renew_wait_or_take_over() {
        let now = Timestamp::now();
        assert_eq!(decide(None, "a", now), Step::Create);
        assert_eq!(decide(Some(&spec("a", 3, now)), "a", now), Step::Renew);
        assert_eq!(decide(Some(&spec("a", 30, now)), "a", now), Step::Renew);
        assert_eq!(
            decide(Some(&spec("b", 3, now)), "a", now),
            Step::Wait { holder: "b".into() }
        );
        assert_eq!(decide(Some(&spec("b", 16, now)), "a", now), Step::TakeOver);
        assert_eq!(decide(Some(&spec("", 1, now)), "a", now), Step::TakeOver);
        let mut never_renewed = spec("b", 0, now);
        never_renewed.renew_time = None;
        assert_eq!(decide(Some(&never_renewed), "a", now), Step::TakeOver);
    }

    #[test]
    fn taking_over_counts_a_transition_and_renewing_does_not() {
        let now = Timestamp::now();
        let settings = Settings::new("ns", "lease", "a");
        let old = spec("b", 20, now);
        let taken = next_spec(Some(&old), &Step::TakeOver, &settings, now);
        assert_eq!(taken.holder_identity.as_deref(), Some("a"));
        assert_eq!(taken.lease_transitions, Some(1));
        assert_eq!(taken.acquire_time, Some(MicroTime(now)));
        let renewed = next_spec(Some(&taken), &Step::Renew, &settings, now);
        assert_eq!(renewed.lease_transitions, Some(1));
        let created = next_spec(None, &Step::Create, &settings, now);
        assert_eq!(created.lease_transitions, Some(0));
    }
}
