//! What the webhook registers itself (its admission configurations and the access APIService) is
//! not among the objects Helm made, so `helm uninstall` would leave it behind, pointing at a
//! Service that is gone: with failurePolicy Fail, that would block every write it covers. Each is
//! given an owner reference to a cluster-scoped object Helm does make (the webhook's
//! ClusterRole), so Kubernetes' garbage collector removes them when the release goes.

use k8s_openapi::Resource;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// The field manager of the owner references alone (apart from the registration's own fields).
const MANAGER: &str = "slipway-webhook-owner";

/// Makes ClusterRole `owner` the owner of the webhook configurations `configuration` and, when
/// given, of APIService `api_service`.
pub async fn adopt(
    client: &Client,
    owner: &str,
    configuration: &str,
    api_service: Option<&str>,
) -> Result<(), kube::Error> {
    let role = Api::<ClusterRole>::all(client.clone()).get(owner).await?;
    let reference = json!({
        "apiVersion": ClusterRole::API_VERSION, "kind": ClusterRole::KIND,
        "name": owner, "uid": role.metadata.uid,
    });
    let params = PatchParams::apply(MANAGER).force();
    let body = |api_version: &str, kind: &str, name: &str| {
        json!({
            "apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "ownerReferences": [reference.clone()]},
        })
    };
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .patch(
            configuration,
            &params,
            &Patch::Apply(body(
                MutatingWebhookConfiguration::API_VERSION,
                MutatingWebhookConfiguration::KIND,
                configuration,
            )),
        )
        .await?;
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .patch(
            configuration,
            &params,
            &Patch::Apply(body(
                ValidatingWebhookConfiguration::API_VERSION,
                ValidatingWebhookConfiguration::KIND,
                configuration,
            )),
        )
        .await?;
    if let Some(name) = api_service {
        Api::<APIService>::all(client.clone())
            .patch(
                name,
                &params,
                &Patch::Apply(body(APIService::API_VERSION, APIService::KIND, name)),
            )
            .await?;
    }
    Ok(())
}
