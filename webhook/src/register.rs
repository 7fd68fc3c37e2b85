//! Registers the admission hooks with the API server: a MutatingWebhookConfiguration (stamp the
//! requester) and a ValidatingWebhookConfiguration (check it, and free project names), both
//! trusting the webhook's own CA, failing closed.

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference, ValidatingWebhook,
    ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::Client;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams};

/// Where the API server reaches the webhook.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// A URL (the dev cluster, where the webhook runs beside the API server).
    Url(String),
    /// A Service in the cluster (the Helm chart).
    Service {
        namespace: String,
        name: String,
        port: i32,
    },
}

/// What to register.
#[derive(Clone, Debug)]
pub struct Registration {
    /// Name of both configurations.
    pub name: String,
    pub endpoint: Endpoint,
    /// PEM of the CAs the serving certificate is verified with (around a CA rotation, both the
    /// old and the new one: `crate::certs`).
    pub ca_pem: String,
    /// Only objects with these labels go through the hooks (tests); all when None.
    pub object_selector: Option<LabelSelector>,
}

fn client_config(registration: &Registration, path: &str) -> WebhookClientConfig {
    let ca_bundle = Some(ByteString(registration.ca_pem.clone().into_bytes()));
    match &registration.endpoint {
        Endpoint::Url(url) => WebhookClientConfig {
            url: Some(format!("{}{path}", url.trim_end_matches('/'))),
            ca_bundle,
            service: None,
        },
        Endpoint::Service {
            namespace,
            name,
            port,
        } => WebhookClientConfig {
            service: Some(ServiceReference {
                namespace: namespace.clone(),
                name: name.clone(),
                path: Some(path.to_string()),
                port: Some(*port),
            }),
            ca_bundle,
            url: None,
        },
    }
}

fn rules() -> Vec<RuleWithOperations> {
    vec![RuleWithOperations {
        api_groups: Some(vec![slipway_crds::GROUP.into()]),
        api_versions: Some(vec![slipway_crds::VERSION.into()]),
        operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
        resources: Some(vec![
            "projectrequests".into(),
            "projects".into(),
            "templateinstances".into(),
        ]),
        scope: Some("*".into()),
    }]
}

/// ImageStream lookup (`lookupPolicy.local`) for Pods, Deployments and DeploymentConfigs; failing
/// open, since an unresolved `stream:tag` is what the object would have without Slipway.
fn image_lookup_hook(registration: &Registration) -> MutatingWebhook {
    let rule = |group: &str, version: &str, resource: &str| RuleWithOperations {
        api_groups: Some(vec![group.into()]),
        api_versions: Some(vec![version.into()]),
        operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
        resources: Some(vec![resource.into()]),
        scope: Some("Namespaced".into()),
    };
    MutatingWebhook {
        name: "image-lookup.slipway.dev".into(),
        client_config: client_config(registration, "/admission/image-lookup"),
        rules: Some(vec![
            rule("", "v1", "pods"),
            rule("apps", "v1", "deployments"),
            rule(slipway_crds::GROUP, slipway_crds::VERSION, "deploymentconfigs"),
        ]),
        failure_policy: Some("Ignore".into()),
        side_effects: "None".into(),
        admission_review_versions: vec!["v1".into()],
        object_selector: registration.object_selector.clone(),
        timeout_seconds: Some(5),
        ..Default::default()
    }
}

/// Pod Security defaults ([`crate::pod_defaults`]) for pods created in projects that enforce
/// `restricted`; failing open, since Pod Security itself still refuses what it must.
fn pod_defaults_hook(registration: &Registration) -> MutatingWebhook {
    let requirement = |key: &str, operator: &str, values: Option<Vec<String>>| LabelSelectorRequirement {
        key: key.into(),
        operator: operator.into(),
        values,
    };
    let namespaces = LabelSelector {
        match_expressions: Some(vec![
            requirement("slipway.dev/project", "Exists", None),
            requirement(
                "pod-security.kubernetes.io/enforce",
                "In",
                Some(vec!["restricted".into()]),
            ),
        ]),
        match_labels: None,
    };
    MutatingWebhook {
        name: "pod-security-defaults.slipway.dev".into(),
        client_config: client_config(registration, "/admission/pod-defaults"),
        rules: Some(vec![RuleWithOperations {
            api_groups: Some(vec![String::new()]),
            api_versions: Some(vec!["v1".into()]),
            operations: Some(vec!["CREATE".into()]),
            resources: Some(vec!["pods".into()]),
            scope: Some("Namespaced".into()),
        }]),
        failure_policy: Some("Ignore".into()),
        side_effects: "None".into(),
        admission_review_versions: vec!["v1".into()],
        namespace_selector: Some(namespaces),
        object_selector: registration.object_selector.clone(),
        timeout_seconds: Some(5),
        // After the image lookup and any other mutation, so that what they add is defaulted too.
        reinvocation_policy: Some("IfNeeded".into()),
        ..Default::default()
    }
}

/// Creates or updates both configurations (server-side apply).
pub async fn register(client: &Client, registration: &Registration) -> Result<(), kube::Error> {
    let params = PatchParams::apply("slipway-webhook").force();
    let mut mutating = MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(registration.name.clone()),
            ..Default::default()
        },
        webhooks: Some(vec![MutatingWebhook {
            name: "requester.slipway.dev".into(),
            client_config: client_config(registration, "/admission/mutate"),
            rules: Some(rules()),
            failure_policy: Some("Fail".into()),
            side_effects: "None".into(),
            admission_review_versions: vec!["v1".into()],
            object_selector: registration.object_selector.clone(),
            timeout_seconds: Some(5),
            reinvocation_policy: Some("IfNeeded".into()),
            ..Default::default()
        }]),
    };
    mutating
        .webhooks
        .get_or_insert_with(Vec::new)
        .push(image_lookup_hook(registration));
    mutating
        .webhooks
        .get_or_insert_with(Vec::new)
        .push(pod_defaults_hook(registration));
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .patch(&registration.name, &params, &Patch::Apply(&mutating))
        .await?;
    let validating = ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(registration.name.clone()),
            ..Default::default()
        },
        webhooks: Some(vec![ValidatingWebhook {
            name: "requester.slipway.dev".into(),
            client_config: client_config(registration, "/admission/validate"),
            rules: Some(rules()),
            failure_policy: Some("Fail".into()),
            side_effects: "None".into(),
            admission_review_versions: vec!["v1".into()],
            object_selector: registration.object_selector.clone(),
            timeout_seconds: Some(5),
            ..Default::default()
        }]),
    };
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .patch(&registration.name, &params, &Patch::Apply(&validating))
        .await?;
    Ok(())
}

/// Removes both configurations (a test's, or on uninstall).
pub async fn unregister(client: &Client, name: &str) -> Result<(), kube::Error> {
    for result in [
        Api::<MutatingWebhookConfiguration>::all(client.clone())
            .delete(name, &DeleteParams::default())
            .await
            .map(|_| ()),
        Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .delete(name, &DeleteParams::default())
            .await
            .map(|_| ()),
    ] {
        match result {
            Ok(()) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
