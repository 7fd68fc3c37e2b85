//! OpenShift's legacy `v1` API: before API groups, OpenShift served its kinds at `/oapi/v1`, and
//! templates still write `apiVersion: v1` for a DeploymentConfig or a Route. `oc process` writes
//! such objects with their group's apiVersion; so does `slip process --no-translate`.

use serde_json::Value;

/// The group apiVersion of an OpenShift kind of the legacy `v1` API, by kind.
fn group_of(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "DeploymentConfig" | "DeploymentConfigRollback" | "DeploymentRequest" | "DeploymentLog" => {
            "apps.openshift.io/v1"
        }
        "Build" | "BuildConfig" | "BuildLog" | "BuildRequest" => "build.openshift.io/v1",
        "Image" | "ImageStream" | "ImageStreamTag" | "ImageStreamImage" | "ImageStreamMapping"
        | "ImageStreamImport" | "ImageSignature" => "image.openshift.io/v1",
        "Route" => "route.openshift.io/v1",
        "Template" | "TemplateInstance" | "BrokerTemplateInstance" => "template.openshift.io/v1",
        "Project" | "ProjectRequest" => "project.openshift.io/v1",
        "Role"
        | "RoleBinding"
        | "ClusterRole"
        | "ClusterRoleBinding"
        | "RoleBindingRestriction"
        | "SubjectAccessReview"
        | "LocalSubjectAccessReview"
        | "ResourceAccessReview"
        | "LocalResourceAccessReview"
        | "SubjectRulesReview"
        | "SelfSubjectRulesReview" => "authorization.openshift.io/v1",
        "User" | "Group" | "Identity" | "UserIdentityMapping" => "user.openshift.io/v1",
        "OAuthClient" | "OAuthClientAuthorization" | "OAuthAccessToken" | "OAuthAuthorizeToken" => {
            "oauth.openshift.io/v1"
        }
        "ClusterNetwork" | "HostSubnet" | "NetNamespace" | "EgressNetworkPolicy" => "network.openshift.io/v1",
        "ClusterResourceQuota" | "AppliedClusterResourceQuota" => "quota.openshift.io/v1",
        "SecurityContextConstraints" => "security.openshift.io/v1",
        _ => return None,
    })
}

/// Rewrites the apiVersion of an object of the legacy `v1` API to its group's. Core kinds
/// (Service, Secret...) are `v1` for real and stay.
pub(crate) fn group_api_version(object: &mut Value) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    if map.get("apiVersion").and_then(Value::as_str) != Some("v1") {
        return;
    }
    if let Some(group) = map.get("kind").and_then(Value::as_str).and_then(group_of) {
        map.insert("apiVersion".to_owned(), Value::String(group.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn legacy_kinds_get_their_group_and_core_kinds_stay() {
        for (kind, expected) in [
            ("DeploymentConfig", "apps.openshift.io/v1"),
            ("Route", "route.openshift.io/v1"),
            ("BuildConfig", "build.openshift.io/v1"),
            ("ImageStream", "image.openshift.io/v1"),
            ("RoleBinding", "authorization.openshift.io/v1"),
            ("OAuthClient", "oauth.openshift.io/v1"),
            ("Service", "v1"),
            ("Secret", "v1"),
        ] {
            let mut object = json!({"apiVersion": "v1", "kind": kind});
            group_api_version(&mut object);
            assert_eq!(object["apiVersion"], expected, "{kind}");
        }
        let mut grouped = json!({"apiVersion": "apps/v1", "kind": "DeploymentConfig"});
        group_api_version(&mut grouped);
        assert_eq!(grouped["apiVersion"], "apps/v1", "only v1 is legacy");
    }
}
