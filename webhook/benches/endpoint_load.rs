//! `make bench`: the public git endpoint under the load, on loopback — 50 slow 3 MiB
//! uploads that pass the checks made before the body (a BuildConfig that exists, a signature
//! header of the right form, a wrong signature) and 3,000 idle connections to the git listener —
//! while admission reviews are posted to the admission listener one after another. Reports the
//! reviews' p50/p99, how the uploads were answered, and the resident memory of this process
//! (the servers and the load's clients; the chart's limit for the webhook is 128 Mi).
//!
//! Against the dev cluster (KUBECONFIG); bounded: the load runs for 20 s.
#![allow(clippy::unwrap_used)] // benchmarks may panic on broken fixtures

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use slipway_testkit::{TestNamespace, client, ensure_crds};
use support::*;
use tokio::io::AsyncWriteExt;

const UPLOADS: usize = 50;
const IDLE: usize = 3_000;
const LOAD: Duration = Duration::from_secs(20);

/// A field of /proc/self/status in KiB (VmRSS, VmHWM).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim_start_matches(':')
                .trim()
                .strip_suffix("kB")
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// One slow upload: headers promising 3 MiB, then 16 KiB every 100 ms until answered or the load
/// ends; the status it was answered with (0: never).
async fn slow_upload(hook: &Hook, path: &str, headers: &[(String, String)], until: Instant) -> u16 {
    let mut tls = hook.connect().await;
    let mut request = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", 3 * 1024 * 1024));
    if tls.write_all(request.as_bytes()).await.is_err() {
        return 0;
    }
    let chunk = vec![b' '; 16 * 1024];
    let (mut reader, mut writer) = tokio::io::split(tls);
    let answer = tokio::spawn(async move { read_response(&mut reader).await.0 });
    while Instant::now() < until && !answer.is_finished() {
        if writer.write_all(&chunk).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match tokio::time::timeout(Duration::from_secs(1), answer).await {
        Ok(Ok(status)) => status,
        _ => 0,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    ensure_crds();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = client().await;
        let ns = TestNamespace::new(&client, "hookload").await;
        setup(&client, &ns.name, "app", "Parallel").await;
        let git = Arc::new(Hook::start_synced(client.clone()).await);
        let admission = Hook::admission(client.clone()).await;
        let review = |uid: &str| {
            serde_json::to_vec(&serde_json::json!({
                "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "request": {
                    "uid": uid,
                    "kind": {"group": "slipway.dev", "version": "v1alpha1", "kind": "ProjectRequest"},
                    "resource": {"group": "slipway.dev", "version": "v1alpha1", "resource": "projectrequests"},
                    "name": "bench", "operation": "CREATE",
                    "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
                    "object": {"apiVersion": "slipway.dev/v1alpha1", "kind": "ProjectRequest",
                        "metadata": {"name": "bench"}, "displayName": "Bench"}
                }
            }))
            .unwrap()
        };
        let json = vec![("Content-Type".to_string(), "application/json".to_string())];
        let rss_before = status_kib("VmRSS");

        let until = Instant::now() + LOAD;
        let peak = Arc::new(AtomicU64::new(rss_before));
        let sampler = tokio::spawn({
            let peak = peak.clone();
            async move {
                while Instant::now() < until {
                    peak.fetch_max(status_kib("VmRSS"), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        let path = format!("/webhooks/{}/app/github", ns.name);
        let body = github_push("refs/heads/main", "6666666666666666666666666666666666666666");
        let forged = signed("github", "push", &body, "not-the-secret");
        let uploads: Vec<_> = (0..UPLOADS)
            .map(|_| {
                let (git, path, forged) = (git.clone(), path.clone(), forged.clone());
                tokio::spawn(async move { slow_upload(&git, &path, &forged, until).await })
            })
            .collect();
        let mut idle = Vec::with_capacity(IDLE);
        for _ in 0..IDLE {
            if let Ok(stream) = tokio::net::TcpStream::connect(git.addr).await {
                idle.push(stream);
            }
        }
        let mut latencies = Vec::new();
        let mut wrong = 0;
        while Instant::now() < until {
            let uid = format!("bench-{}", latencies.len());
            let started = Instant::now();
            let (status, answer) = admission.post("/admission/mutate", &json, &review(&uid)).await;
            latencies.push(started.elapsed());
            if status != 200 || answer["response"]["uid"] != uid.as_str() || answer["response"]["allowed"] != true {
                wrong += 1;
            }
        }
        let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
        for upload in uploads {
            *statuses.entry(upload.await.unwrap_or(0)).or_default() += 1;
        }
        sampler.await.unwrap();
        drop(idle);
        latencies.sort();
        println!(
            "admission under load ({UPLOADS} slow 3 MiB uploads + {IDLE} idle connections on the git listener, {LOAD:?}): \
             p50 {:.2?}, p99 {:.2?}, max {:.2?} over {} reviews, {wrong} answered wrongly",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies[latencies.len() - 1],
            latencies.len()
        );
        println!("slow uploads answered (status: count, 0 = no answer within the load): {statuses:?}");
        println!(
            "process memory (servers and clients): RSS {} MiB before, peak {} MiB during; high-water mark {} MiB (the chart's webhook limit: 128 MiB)",
            rss_before / 1024,
            peak.load(Ordering::Relaxed) / 1024,
            status_kib("VmHWM") / 1024
        );
        ns.delete().await;
    });
}
