//! `make bench`: git webhooks (targets from DESIGN.md: delivery received → Build created with
//! p99 ≤ 50 ms on loopback, and ≥ 1,000 verified deliveries per second).
//!
//! Against the dev cluster (KUBECONFIG), with the server in-process on a loopback port and its
//! caches (BuildConfigs, webhook Secrets, delivered Builds) listed:
//! - latency: signed GitHub pushes of distinct commits, one after another, each on a new TLS
//!   connection (as providers deliver), timed from the first byte sent to the 201 read — this
//!   includes the lookups (from the caches), the lastVersion raise and the Build creation;
//! - throughput: the verification path alone (HMAC over the raw body, then the payload read and
//!   the decision), in-process; signed pings through HTTPS (verified, nothing built); and signed
//!   pushes through HTTPS, each making a Build, to one BuildConfig and spread over 16.
#![allow(clippy::unwrap_used)] // benchmarks may panic on broken fixtures

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use http::HeaderMap;
use slipway_crds::BuildConfig;
use slipway_testkit::{TestNamespace, client, ensure_crds};
use slipway_webhook::git::{Delivery, Provider, decide, delivery_key, payload, verify};
use support::*;

/// A body and the headers that sign it.
type Signed = (Vec<u8>, Vec<(String, String)>);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn report(what: &str, mut samples: Vec<Duration>, target: Duration) {
    samples.sort();
    let p50 = percentile(&samples, 0.5);
    let p99 = percentile(&samples, 0.99);
    let verdict = if p99 <= target { "met" } else { "MISSED" };
    println!(
        "{what}: p50 {p50:.2?}, p99 {p99:.2?}, max {:.2?} over {} deliveries  (target p99 ≤ {target:?}: {verdict})",
        samples[samples.len() - 1],
        samples.len()
    );
}

fn rate(what: &str, count: usize, elapsed: Duration, target: f64) {
    let per_second = count as f64 / elapsed.as_secs_f64();
    let verdict = if per_second >= target { "met" } else { "MISSED" };
    println!("{what}: {per_second:.0}/s ({count} in {elapsed:.2?})  (target ≥ {target:.0}/s: {verdict})");
}

fn header_map(pairs: &[(String, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.insert(
            http::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    map
}

/// The verification path without the network: HMAC-SHA256 over the raw body, then the payload
/// read and the decision, for the documented GitHub push (about 5 KB).
fn verification_path() {
    let body = fixture("github-push.json");
    let headers = header_map(&signed("github", "push", &body, SECRET));
    let config: BuildConfig = serde_json::from_value(serde_json::json!({
        "apiVersion": "slipway.dev/v1alpha1", "kind": "BuildConfig", "metadata": {"name": "app"},
        "spec": {"strategy": {"type": "Docker"}, "source": {"type": "Git", "git": {"uri": "https://x/y.git", "ref": "main"}}}
    }))
    .unwrap();
    let trigger = slipway_crds::build::WebHookTrigger::default();
    let run = |n: usize| {
        let started = Instant::now();
        for _ in 0..n {
            verify::verify(Provider::GitHub, &headers, &body, SECRET.as_bytes()).unwrap();
            let event = payload::parse(Provider::GitHub, &headers, &body).unwrap();
            let delivery = Delivery {
                id: None,
                key: delivery_key("ns", "app", Provider::GitHub, None, &body),
            };
            let decision = decide(Provider::GitHub, &trigger, &config, event, &delivery);
            assert!(matches!(decision, slipway_webhook::git::Decision::Build(_)));
        }
        started.elapsed()
    };
    run(1_000);
    let n = 50_000;
    rate(
        &format!(
            "verify + read + decide, in-process ({} B GitHub push)",
            body.len()
        ),
        n,
        run(n),
        1_000.0,
    );
}

fn main() {
    verification_path();
    ensure_crds();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = client().await;
        let ns = TestNamespace::new(&client, "hookbench").await;
        // No pods here: an operator running in the cluster would otherwise start a build pod for
        // each of the bench's Builds (about 1,000), loading the shared cluster it measures.
        let quota: k8s_openapi::api::core::v1::ResourceQuota = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}
        }))
        .unwrap();
        kube::Api::namespaced(client.clone(), &ns.name)
            .create(&kube::api::PostParams::default(), &quota)
            .await
            .unwrap();
        setup(&client, &ns.name, "app", "Parallel").await;
        for i in 0..16 {
            setup(&client, &ns.name, &format!("repo{i}"), "Parallel").await;
        }
        let scale = setup(&client, &ns.name, "scale", "Parallel").await;
        let hook = Hook::start_synced(client.clone()).await;
        let path = format!("/webhooks/{}/app/github", ns.name);

        // For scale: API server round trips on this machine now. A delivery that builds makes
        // two writes (the lastVersion raise and the Build creation); its reads come from the
        // caches.
        let configs: kube::Api<BuildConfig> = kube::Api::namespaced(client.clone(), &ns.name);
        let mut reads = Vec::new();
        for _ in 0..300 {
            let started = Instant::now();
            configs.get("app").await.unwrap();
            reads.push(started.elapsed());
        }
        // The floor under a delivery: its two writes, one after the other, made directly.
        let builds: kube::Api<slipway_crds::Build> = kube::Api::namespaced(client.clone(), &ns.name);
        let (mut raises, mut creates, mut both) = (Vec::new(), Vec::new(), Vec::new());
        let mut current = scale;
        for _ in 0..100 {
            let started = Instant::now();
            current.status.get_or_insert_with(Default::default).last_version += 1;
            current = configs
                .replace_status("scale", &kube::api::PostParams::default(), &current)
                .await
                .unwrap();
            let raised = started.elapsed();
            let number = current.status.as_ref().unwrap().last_version;
            let build = slipway_crds::build::new_build(&current, number, &Default::default());
            builds
                .create(&kube::api::PostParams::default(), &build)
                .await
                .unwrap();
            raises.push(raised);
            creates.push(started.elapsed() - raised);
            both.push(started.elapsed());
        }
        for (what, mut samples) in [
            ("GET buildconfig", reads),
            ("PUT buildconfig/status", raises),
            ("POST build", creates),
            ("the PUT and the POST, one after the other", both),
        ] {
            samples.sort();
            println!(
                "for scale, API server round trips ({what}): p50 {:.2?}, p99 {:.2?}",
                percentile(&samples, 0.5),
                percentile(&samples, 0.99)
            );
        }

        // Delivery → Build created, one at a time.
        let deliveries: Vec<Signed> = (0..320)
            .map(|i| {
                let body = github_push("refs/heads/main", &format!("be4c40{i:034x}"));
                let headers = signed("github", "push", &body, SECRET);
                (body, headers)
            })
            .collect();
        let mut samples = Vec::new();
        for (i, (body, headers)) in deliveries.iter().enumerate() {
            let started = Instant::now();
            let (status, answer) = hook.post(&path, headers, body).await;
            let elapsed = started.elapsed();
            assert_eq!(status, 201, "{answer}");
            if i >= 20 {
                samples.push(elapsed); // the first 20 warm up connections and caches
            }
        }
        report(
            "git webhook: delivery received → Build created (HTTPS, loopback, dev cluster)",
            samples,
            Duration::from_millis(50),
        );

        // Verified deliveries per second through HTTPS: pings, 16 clients at a time, first each on
        // a new connection (TLS handshake included), then on kept-alive connections.
        let ping = fixture("github-ping.json");
        let headers = signed("github", "ping", &ping, SECRET);
        let hook = std::sync::Arc::new(hook);
        for keep_alive in [false, true] {
            let n = 2_000;
            let started = Instant::now();
            let mut tasks = Vec::new();
            for worker in 0..16 {
                let (hook, path, headers, ping) = (hook.clone(), path.clone(), headers.clone(), ping.clone());
                tasks.push(tokio::spawn(async move {
                    let mut connection = if keep_alive {
                        Some(hook.connect().await)
                    } else {
                        None
                    };
                    for _ in (worker..n).step_by(16) {
                        let (status, _) = match connection.as_mut() {
                            Some(tls) => Hook::post_on(tls, &path, &headers, &ping).await,
                            None => hook.post(&path, &headers, &ping).await,
                        };
                        assert_eq!(status, 200);
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            let how = if keep_alive {
                "kept-alive connections"
            } else {
                "a new TLS connection each"
            };
            rate(
                &format!("git webhook: verified deliveries over HTTPS, {how} (pings)"),
                n,
                started.elapsed(),
                1_000.0,
            );
        }

        // Pushes that each make a Build, 16 clients at a time on kept-alive connections: to one
        // BuildConfig (its numbers are taken one at a time), then each client to its own.
        for spread in [false, true] {
            let n = 320;
            let started = Instant::now();
            let mut tasks = Vec::new();
            for worker in 0..16 {
                let hook = hook.clone();
                let (config, tag) = if spread {
                    (format!("repo{worker}"), "5b")
                } else {
                    ("app".to_string(), "1b")
                };
                let path = format!("/webhooks/{}/{config}/github", ns.name);
                tasks.push(tokio::spawn(async move {
                    let mut tls = hook.connect().await;
                    for i in (worker..n).step_by(16) {
                        let body = github_push("refs/heads/main", &format!("{tag}{i:038x}"));
                        let headers = signed("github", "push", &body, SECRET);
                        let (status, answer) = Hook::post_on(&mut tls, &path, &headers, &body).await;
                        assert_eq!(status, 201, "{answer}");
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            let how = if spread {
                "16 BuildConfigs, one per client"
            } else {
                "one BuildConfig"
            };
            rate(
                &format!("git webhook: pushes → Builds over HTTPS, kept-alive connections, {how}"),
                n,
                started.elapsed(),
                1_000.0,
            );
        }
        ns.delete().await;
    });
}
