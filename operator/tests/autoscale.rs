//! A HorizontalPodAutoscaler scaling a DeploymentConfig through the CRD's scale subresource,
//! against the dev cluster: the HPA controller is kube-controller-manager's own (dev/cluster-up.sh
//! runs its default controllers, the HPA controller among them), and the deploy controller runs
//! in-process as in the other deploy tests.
//!
//! The dev cluster has no metrics API, so no HPA can compute a recommendation from CPU; what the
//! HPA controller does without one is still real and is what is asserted: it reads the target's
//! scale (replicas and selector), records the replicas in its status, enforces `minReplicas` by
//! writing the scale, and reports that it found the pods' selector but no metrics for them.
#![allow(clippy::unwrap_used)] // tests may panic on broken fixtures

mod deploy_support;
mod support;

use deploy_support::*;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Api, PostParams};
use serde_json::json;
use slipway_testkit::*;

/// The HPA's condition of `type_`, as (status, reason, message).
fn condition(hpa: &HorizontalPodAutoscaler, type_: &str) -> Option<(String, String, String)> {
    let found = hpa
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((
        found.status.clone(),
        found.reason.clone().unwrap_or_default(),
        found.message.clone().unwrap_or_default(),
    ))
}

/// The HPA once the controller has written `currentReplicas == replicas` and a ScalingActive
/// condition (it writes that condition only when the replicas are within min..max and it
/// computes from metrics, which needs the target's selector).
async fn hpa_reading(env: &Env, name: &str, replicas: i32) -> HorizontalPodAutoscaler {
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(env.client.clone(), &env.ns.name);
    eventually(
        &format!("HPA {name} to read {replicas} replicas and try its metrics"),
        WAIT,
        || async {
            let hpa = hpas.get(name).await.ok()?;
            let current = hpa.status.as_ref()?.current_replicas?;
            (current == replicas && condition(&hpa, "ScalingActive").is_some()).then_some(hpa)
        },
    )
    .await
}

#[tokio::test]
async fn a_horizontal_pod_autoscaler_scales_a_deploymentconfig_through_its_scale_subresource() {
    let env = Env::start("dep-hpa").await;
    env.create_dc("web", 1, json!({"type": "Recreate"}), json!({}))
        .await;
    env.wait_complete("web", 1, 1).await;

    // GET .../deploymentconfigs/web/scale: the replicas and the selector the deploy controller
    // keeps in status.selector.
    let scale = env.dcs().get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(1));
    let status = scale.status.unwrap();
    assert_eq!(status.replicas, 1);
    assert_eq!(status.selector.as_deref(), Some("app=web"));

    // An HPA whose target is the DeploymentConfig; minReplicas above its replicas.
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "slipway.dev/v1alpha1", "kind": "DeploymentConfig", "name": "web"},
            "minReplicas": 2, "maxReplicas": 4,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50}}}]
        }
    }))
    .unwrap();
    Api::<HorizontalPodAutoscaler>::namespaced(env.client.clone(), &env.ns.name)
        .create(&PostParams::default(), &hpa)
        .await
        .unwrap();

    // The HPA controller raised the DeploymentConfig to minReplicas through the scale
    // subresource, and the deploy controller scaled the serving version (no new version).
    eventually("the HPA to write replicas 2", WAIT, || async {
        (env.dc("web").await.spec.replicas == 2).then_some(())
    })
    .await;
    env.wait_available("web-1", 2).await;
    assert_eq!(env.dc("web").await.status.unwrap().latest_version, 1);

    // Its status reads the DeploymentConfig's replicas, and it found the pods by the selector:
    // what stops it is the missing metrics API, not the target (InvalidSelector would say
    // "the HPA target's scale is missing a selector").
    let hpa = hpa_reading(&env, "web", 2).await;
    let (status, reason, _) = condition(&hpa, "AbleToScale").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "SucceededGetScale"));
    let (status, reason, message) = condition(&hpa, "ScalingActive").unwrap();
    assert_eq!(status, "False");
    assert_eq!(reason, "FailedGetResourceMetric", "{message}");
    assert_eq!(hpa.status.unwrap().desired_replicas, 2);

    // Replicas changed on the DeploymentConfig are what the HPA reads next.
    env.patch_spec("web", json!({"replicas": 3})).await;
    env.wait_available("web-1", 3).await;
    hpa_reading(&env, "web", 3).await;
    env.stop().await;
}

#[tokio::test]
async fn kubectl_autoscale_takes_a_deploymentconfig() {
    let env = Env::start("dep-hpa").await;
    env.create_dc("web", 1, json!({"type": "Recreate"}), json!({}))
        .await;
    env.wait_complete("web", 1, 1).await;
    let kubectl = dev_tool("kubectl");
    let out = run_program(
        kubectl.to_str().unwrap(),
        None,
        &["autoscale", "dc/web", "--min=2", "--max=3", "-n", &env.ns.name],
    )
    .await;
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(
        output_text(&out).trim(),
        "horizontalpodautoscaler.autoscaling/web autoscaled"
    );
    let hpa = Api::<HorizontalPodAutoscaler>::namespaced(env.client.clone(), &env.ns.name)
        .get("web")
        .await
        .unwrap();
    let target = hpa.spec.unwrap().scale_target_ref;
    assert_eq!(
        (
            target.api_version.as_deref(),
            target.kind.as_str(),
            target.name.as_str()
        ),
        (Some("slipway.dev/v1alpha1"), "DeploymentConfig", "web")
    );
    env.wait_available("web-1", 2).await;
    hpa_reading(&env, "web", 2).await;
    env.stop().await;
}
