//! Leader election against the real API server: one of two candidates leads, the other takes
//! over when the leader releases the Lease or stops renewing it.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use slipway_operator::leader::{Settings, release, try_acquire_or_renew};
use slipway_testkit::*;

fn settings(namespace: &str, identity: &str) -> Settings {
    Settings {
        lease_duration: Duration::from_secs(2),
        renew_period: Duration::from_millis(500),
        retry_period: Duration::from_millis(100),
        ..Settings::new(namespace, "slipway-operator", identity)
    }
}

#[tokio::test]
async fn one_candidate_leads_and_the_other_takes_over_on_release_or_expiry() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "leader").await;
    let api: Api<Lease> = Api::namespaced(client.clone(), &ns.name);
    let (a, b) = (settings(&ns.name, "replica-a"), settings(&ns.name, "replica-b"));

    assert!(
        try_acquire_or_renew(&api, &a).await.unwrap(),
        "the first candidate creates the Lease"
    );
    assert!(
        !try_acquire_or_renew(&api, &b).await.unwrap(),
        "the second waits while a renews"
    );
    assert!(try_acquire_or_renew(&api, &a).await.unwrap(), "the leader renews");
    let lease = api.get("slipway-operator").await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some("replica-a"));

    // a releases on shutdown: b takes over at once, and a is now the one who waits.
    release(&client, &a).await;
    assert!(try_acquire_or_renew(&api, &b).await.unwrap());
    assert!(!try_acquire_or_renew(&api, &a).await.unwrap());
    let lease = api.get("slipway-operator").await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some("replica-b"));
    assert_eq!(lease.lease_transitions, Some(1));

    // b stops renewing (a crashed leader): once the Lease expires, a takes it.
    eventually(
        "a to take over the expired lease",
        Duration::from_secs(20),
        || async { try_acquire_or_renew(&api, &a).await.unwrap().then_some(()) },
    )
    .await;
    let lease = api.get("slipway-operator").await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some("replica-a"));
    assert_eq!(lease.lease_transitions, Some(2));
    ns.delete().await;
}

#[tokio::test]
async fn racing_candidates_never_both_win() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "leader-race").await;
    let api: Api<Lease> = Api::namespaced(client.clone(), &ns.name);
    // Ten candidates try at once, several rounds: each round, at most one holds the Lease.
    let candidates: Vec<Settings> = (0..10)
        .map(|i| settings(&ns.name, &format!("replica-{i}")))
        .collect();
    let wins = futures::future::join_all(candidates.iter().map(|s| try_acquire_or_renew(&api, s))).await;
    let winners: Vec<_> = wins.into_iter().filter(|w| *w.as_ref().unwrap()).collect();
    assert_eq!(winners.len(), 1, "exactly one candidate creates the Lease");
    ns.delete().await;
}
