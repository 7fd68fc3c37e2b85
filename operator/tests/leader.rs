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

/// Rounds of the race: the first for the Lease's creation, each later one for the Lease its last
/// winner released. Each round is a few round trips per candidate (about 20 ms in the dev cluster).
const ROUNDS: i32 = 20;
const CANDIDATES: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_candidates_never_both_win() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "leader-race").await;
    let api: Api<Lease> = Api::namespaced(client.clone(), &ns.name);
    // Ten candidates try at once, round after round: each round, exactly one wins, and the
    // Lease names it.
    let candidates: Vec<Settings> = (0..CANDIDATES)
        .map(|i| settings(&ns.name, &format!("replica-{i}")))
        .collect();
    let mut winners_of_rounds = Vec::new();
    for round in 0..ROUNDS {
        let wins = futures::future::join_all(candidates.iter().map(|s| try_acquire_or_renew(&api, s))).await;
        let winners: Vec<&Settings> = candidates
            .iter()
            .zip(wins)
            .filter(|(_, won)| *won.as_ref().unwrap())
            .map(|(s, _)| s)
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one candidate {}",
            if round == 0 {
                "creates the Lease"
            } else {
                "takes the released Lease over"
            }
        );
        let winner = winners[0];
        let lease = api.get("slipway-operator").await.unwrap().spec.unwrap();
        assert_eq!(
            lease.holder_identity.as_deref(),
            Some(winner.identity.as_str()),
            "round {round}"
        );
        // One transition per takeover, none for the creation.
        assert_eq!(lease.lease_transitions, Some(round), "round {round}");
        winners_of_rounds.push(winner.identity.clone());
        // The winner lets go: the next round races for a Lease nobody holds.
        release(&client, winner).await;
    }
    eprintln!("the winners of {ROUNDS} rounds: {winners_of_rounds:?}");
    ns.delete().await;
}
