//! A test's namespace is deleted however the test ends: by `delete`, by the value dropping at the
//! end, or while a failing test unwinds (a panic in its body, or in a task that owns it). Each
//! failing "test" here runs on a runtime of its own, as `#[tokio::test]` makes one, and the
//! namespace is then looked at through the API.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use kube::runtime::wait::{await_condition, conditions};
use slipway_testkit::*;

/// The namespace is Terminating or gone right away (the drop waited for its delete request), and
/// gone soon after (seen on a watch).
async fn deleted(name: &str) {
    let client = client().await;
    let namespaces: Api<Namespace> = Api::all(client);
    if let Some(ns) = namespaces.get_opt(name).await.unwrap() {
        assert!(
            ns.metadata.deletion_timestamp.is_some(),
            "namespace {name} is not being deleted: {:?}",
            ns.status
        );
        let uid = ns.metadata.uid.clone().unwrap();
        tokio::time::timeout(
            Duration::from_secs(60),
            await_condition(namespaces, name, conditions::is_deleted(&uid)),
        )
        .await
        .unwrap_or_else(|_| panic!("namespace {name} still there after 60 s"))
        .unwrap();
    }
}

/// Runs `body` as a test of its own (a thread with its own current-thread runtime); returns the
/// namespace it reported and whether it panicked.
fn run_test<F, Fut>(body: F) -> (String, bool)
where
    F: FnOnce(std::sync::mpsc::Sender<String>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(body(tx));
    })
    .join();
    let name = rx.try_recv().expect("the test made its namespace");
    (name, outcome.is_err())
}

#[tokio::test]
async fn a_test_that_panics_leaves_no_namespace() {
    let (name, panicked) = tokio::task::spawn_blocking(|| {
        run_test(|tx| async move {
            let client = client().await;
            let ns = TestNamespace::new(&client, "drop-panic").await;
            tx.send(ns.name.clone()).unwrap();
            panic!("a failing assertion of the test");
        })
    })
    .await
    .unwrap();
    assert!(panicked);
    deleted(&name).await;
}

#[tokio::test]
async fn a_task_that_panics_leaves_no_namespace() {
    let (name, panicked) = tokio::task::spawn_blocking(|| {
        run_test(|tx| async move {
            let client = client().await;
            // The namespace belongs to a task of the test's runtime: the task's panic drops it
            // on a worker thread of that runtime (blocked meanwhile), and the test goes on.
            let task = tokio::spawn(async move {
                let ns = TestNamespace::new(&client, "drop-task").await;
                tx.send(ns.name.clone()).unwrap();
                panic!("a failing assertion in a task");
            });
            let err = task.await.unwrap_err();
            assert!(err.is_panic());
        })
    })
    .await
    .unwrap();
    assert!(!panicked, "the test itself went on");
    deleted(&name).await;
}

#[tokio::test]
async fn a_test_that_ends_without_delete_leaves_no_namespace() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "drop-end").await;
    let name = ns.name.clone();
    drop(ns);
    deleted(&name).await;
}

#[tokio::test]
async fn delete_still_deletes() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "drop-del").await;
    let name = ns.name.clone();
    ns.delete().await;
    deleted(&name).await;
}

#[tokio::test]
async fn a_namespace_of_a_chosen_name_carries_the_test_label_and_its_own() {
    let client = client().await;
    let name = unique_name("named");
    let ns = TestNamespace::named(&client, &name, serde_json::json!({"owner": "someone"})).await;
    let made = Api::<Namespace>::all(client.clone()).get(&name).await.unwrap();
    let labels = made.metadata.labels.unwrap();
    assert_eq!(labels["slipway.dev/test"], "true");
    assert_eq!(labels["owner"], "someone");
    drop(ns);
    deleted(&name).await;
}
