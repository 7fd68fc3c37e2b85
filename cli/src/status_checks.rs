//! The warnings of `slip status` and what to do about each (pure functions of the project).

use std::fmt::Write as _;

use serde_json::Value;

use crate::status::{Project, followed_tag, name, selects};

/// A build that has not started after this long is stuck.
const STUCK_MINUTES: i64 = 10;

/// One problem: what it is, and what to do about it.
#[derive(Debug, PartialEq, Eq)]
pub struct Warning {
    pub message: String,
    pub suggestion: String,
}

fn warn(message: String, suggestion: String) -> Warning {
    Warning { message, suggestion }
}

/// A BuildConfig's latest build: the one of the highest number among its builds.
pub fn latest_build<'p>(p: &'p Project, bc: &Value) -> Option<&'p Value> {
    let number = |b: &Value| {
        b["metadata"]["labels"]["slipway.dev/build.number"]
            .as_str()
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(0)
    };
    p.builds
        .iter()
        .filter(|b| b["metadata"]["labels"]["slipway.dev/build-config.name"] == name(bc))
        .max_by_key(|b| number(b))
}

fn build_warnings(p: &Project, now: i64, out: &mut Vec<Warning>) {
    for bc in &p.bcs {
        let Some(build) = latest_build(p, bc) else {
            continue;
        };
        let (bname, phase) = (name(build), build["status"]["phase"].as_str().unwrap_or("New"));
        let why = build["status"]["message"]
            .as_str()
            .or_else(|| build["status"]["reason"].as_str())
            .unwrap_or("no reason given");
        if matches!(phase, "Failed" | "Error") {
            out.push(warn(
                format!("build/{bname} of bc/{} failed: {why}", name(bc)),
                format!(
                    "read its log: slip logs build/{bname}; fix the cause, then: slip start-build {}",
                    name(bc)
                ),
            ));
        }
        let created = build["metadata"]["creationTimestamp"]
            .as_str()
            .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
            .map_or(now, |t| t.as_second());
        let minutes = (now - created) / 60;
        if matches!(phase, "New" | "Pending") && minutes >= STUCK_MINUTES {
            out.push(warn(
                format!("build/{bname} has been {} for {minutes} minutes", phase.to_lowercase()),
                format!("its pod cannot start: look at the events: kubectl get events --field-selector involvedObject.name={bname}-build"),
            ));
        }
    }
}

/// Whether a container is crash-looping: waiting in CrashLoopBackOff, or (between two back-offs,
/// when it runs for a moment) restarted at least twice, the last run having failed within
/// [`STUCK_MINUTES`].
fn crash_looping(status: &Value, now: i64) -> bool {
    if status["state"]["waiting"]["reason"] == "CrashLoopBackOff" {
        return true;
    }
    let last = &status["lastState"]["terminated"];
    let failed_at = last["finishedAt"]
        .as_str()
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .map(|t| t.as_second());
    status["restartCount"].as_i64().unwrap_or(0) >= 2
        && last["exitCode"].as_i64().is_some_and(|code| code != 0)
        && failed_at.is_some_and(|t| now - t < STUCK_MINUTES * 60)
}

fn pod_warnings(p: &Project, now: i64, out: &mut Vec<Warning>) {
    for pod in &p.pods {
        for status in pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if crash_looping(status, now) {
                let container = status["name"].as_str().unwrap_or_default();
                out.push(warn(
                    format!(
                        "pod/{} is crash-looping: container {container} restarted {} times",
                        name(pod),
                        status["restartCount"].as_i64().unwrap_or(0)
                    ),
                    format!(
                        "read why it ended: slip logs pod/{} -c {container} --previous",
                        name(pod)
                    ),
                ));
            }
        }
    }
}

fn service_warnings(p: &Project, out: &mut Vec<Warning>) {
    for svc in &p.services {
        let selector = &svc["spec"]["selector"];
        if selector.as_object().is_none_or(serde_json::Map::is_empty) {
            continue;
        }
        let ready = p
            .slices
            .iter()
            .filter(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == name(svc))
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .any(|e| e["conditions"]["ready"] != false);
        if !ready {
            let labels: Vec<String> = selector
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            let labels = labels.join(",");
            let pods = p
                .pods
                .iter()
                .filter(|pod| selects(selector, &pod["metadata"]["labels"]))
                .count();
            out.push(warn(
                format!("svc/{} has no ready endpoints: {pods} pods match its selector {labels}", name(svc)),
                format!("start pods with the labels {labels}, or see why they are not ready: kubectl get pods -l {labels}"),
            ));
        }
    }
}

fn trigger_warnings(p: &Project, out: &mut Vec<Warning>) {
    for w in p.dcs.iter().chain(&p.deployments) {
        let Some(tag) = followed_tag(w) else { continue };
        let (stream, tag_name) = tag.split_once(':').unwrap_or((tag.as_str(), "latest"));
        let what = format!(
            "{}/{}",
            if w["kind"] == "DeploymentConfig" {
                "dc"
            } else {
                "deployment"
            },
            name(w)
        );
        let built = p
            .bcs
            .iter()
            .any(|bc| bc["spec"]["output"]["to"]["name"] == tag.as_str());
        let Some(is) = p.streams.iter().find(|s| name(s) == stream) else {
            out.push(warn(
                format!("{what} follows istag/{tag}, but there is no image stream {stream}"),
                format!("make it: slip import-image {stream}:{tag_name} --from IMAGE, or a build that outputs to it"),
            ));
            continue;
        };
        let has_image = is["status"]["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["tag"] == tag_name && t["items"].as_array().is_some_and(|i| !i.is_empty()));
        if !has_image && !built {
            out.push(warn(
                format!("{what} follows istag/{tag}, which has no image and nothing builds it"),
                format!("point the tag at an image: slip tag IMAGE {stream}:{tag_name}, or build into it"),
            ));
        }
    }
}

/// Every warning of the project, in a stable order.
pub fn warnings(p: &Project) -> Vec<Warning> {
    let mut out = Vec::new();
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    build_warnings(p, now, &mut out);
    pod_warnings(p, now, &mut out);
    service_warnings(p, &mut out);
    trigger_warnings(p, &mut out);
    out
}

/// The warnings section (pure).
pub fn report(warnings: &[Warning], suggest: bool) -> String {
    let mut out = String::new();
    if warnings.is_empty() {
        out.push_str("No problems found.\n");
        return out;
    }
    out.push_str("Warnings:\n");
    for w in warnings {
        let _ = writeln!(out, "  * {}", w.message);
        if suggest {
            let _ = writeln!(out, "    {}", w.suggestion);
        }
    }
    let count = warnings.len();
    let plural = if count == 1 { "" } else { "s" };
    if suggest {
        let _ = writeln!(out, "\n{count} warning{plural} identified.");
    } else {
        let _ = writeln!(
            out,
            "\n{count} warning{plural} identified, use 'slip status --suggest' to see details."
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::status::render;

    fn project() -> Project {
        Project {
            services: vec![
                json!({"metadata": {"name": "web"}, "spec": {"clusterIP": "10.0.0.1", "selector": {"app": "web"},
                "ports": [{"port": 8080, "targetPort": 8080}]}}),
            ],
            ingresses: vec![
                json!({"metadata": {"name": "web"}, "spec": {"tls": [{"hosts": ["web.example.com"]}],
                "rules": [{"host": "web.example.com", "http": {"paths": [{"path": "/", "backend": {"service": {"name": "web"}}}]}}]}}),
            ],
            pods: vec![
                json!({"metadata": {"name": "web-1-abc", "labels": {"app": "web"}},
                "status": {"containerStatuses": [{"name": "web", "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}),
            ],
            dcs: vec![json!({"kind": "DeploymentConfig", "metadata": {"name": "web"},
                "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "web"}}},
                    "triggers": [{"type": "ImageChange", "imageChangeParams": {"from": {"name": "web:latest"}}}]},
                "status": {"latestVersion": 3, "availableReplicas": 1}})],
            deployments: vec![
                json!({"kind": "Deployment", "metadata": {"name": "api", "annotations": {
                "image.openshift.io/triggers": "[{\"from\":{\"kind\":\"ImageStreamTag\",\"name\":\"api:latest\"},\"fieldPath\":\"x\"}]"}},
                "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "api"}}}}}),
            ],
            bcs: vec![
                json!({"metadata": {"name": "web"}, "spec": {"source": {"git": {"uri": "https://git.example.com/web.git"}},
                "strategy": {"type": "Source", "sourceStrategy": {"from": {"name": "builder:1"}}},
                "output": {"to": {"name": "web:latest"}}}}),
            ],
            builds: vec![
                json!({"metadata": {"name": "web-2", "labels": {"slipway.dev/build-config.name": "web", "slipway.dev/build.number": "2"}},
                "status": {"phase": "Failed", "message": "assemble exited 1"}}),
            ],
            streams: vec![
                json!({"metadata": {"name": "web"}, "status": {"tags": [{"tag": "latest", "items": [{"image": "sha256:1"}]}]}}),
            ],
            slices: vec![],
        }
    }

    #[test]
    fn a_container_that_keeps_failing_is_crash_looping_between_back_offs() {
        let now = "2026-12-06T05:00:00Z"
            .parse::<k8s_openapi::jiff::Timestamp>()
            .unwrap()
            .as_second();
        let running = |restarts: i64, exit: i64, at: &str| {
            json!({"restartCount": restarts, "state": {"running": {}},
                   "lastState": {"terminated": {"exitCode": exit, "finishedAt": at}}})
        };
        assert!(crash_looping(&running(2, 3, "2026-12-06T04:59:50Z"), now));
        assert!(
            !crash_looping(&running(1, 3, "2026-12-06T04:59:50Z"), now),
            "once is no loop"
        );
        assert!(
            !crash_looping(&running(5, 0, "2026-12-06T04:59:50Z"), now),
            "it ended well"
        );
        assert!(
            !crash_looping(&running(5, 1, "2026-12-06T03:00:00Z"), now),
            "long ago"
        );
        assert!(crash_looping(
            &json!({"state": {"waiting": {"reason": "CrashLoopBackOff"}}}),
            now
        ));
    }

    #[test]
    fn chains_go_from_the_ingress_to_the_build() {
        assert_eq!(
            render(&project()),
            "https://web.example.com/ (ingress/web) to svc/web\n\
             svc/web - 10.0.0.1:8080 -> 8080\n  \
               dc/web deploys istag/web:latest\n    \
                 bc/web source builds https://git.example.com/web.git on builder:1 -> istag/web:latest\n      \
                   build #2 failed\n    \
                 deployment #3 - 1/2 pods available\n\n\
             deployment/api deploys istag/api:latest\n  \
               revision 0 - 0/1 pods available\n\n"
        );
    }

    #[test]
    fn each_problem_is_a_warning_with_a_suggestion() {
        let found = warnings(&project());
        let messages: Vec<&str> = found.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "build/web-2 of bc/web failed: assemble exited 1",
                "pod/web-1-abc is crash-looping: container web restarted 4 times",
                "svc/web has no ready endpoints: 1 pods match its selector app=web",
                "deployment/api follows istag/api:latest, but there is no image stream api",
            ]
        );
        assert!(
            found[1]
                .suggestion
                .contains("slip logs pod/web-1-abc -c web --previous")
        );
        let text = report(&found, true);
        assert!(
            text.contains("    read its log: slip logs build/web-2")
                && text.ends_with("4 warnings identified.\n")
        );
        assert!(report(&found, false).ends_with("use 'slip status --suggest' to see details.\n"));
        assert_eq!(report(&[], false), "No problems found.\n");
    }
}
