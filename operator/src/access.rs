//! Image references that cross projects, checked as the tenant.
//!
//! A Build's output, a Source or Docker strategy's `from`, a DeploymentConfig's image-change
//! trigger and its `tagImages` hook may name an ImageStream in another namespace. The operator may
//! read and write every ImageStream, so it never decides with its own rights: it asks the API
//! server, with a SubjectAccessReview, whether the object's service account may `get` (pull) or
//! `update` (push) `imagestreams/layers` in that namespace, as OpenShift's `system:image-puller`
//! and `system:image-pusher` roles grant. A reference within the object's own namespace needs no
//! check.

use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::Client;
use kube::api::{Api, PostParams};

use crate::Error;

/// How often a refused reference is asked about again: RBAC changes are not watched, so a
/// right granted later is seen within this.
pub const REFUSED_RETRY: std::time::Duration = std::time::Duration::from_secs(15);

/// The condition of a BuildConfig or DeploymentConfig that says which of its image triggers
/// follow streams of other namespaces it may not pull from.
pub const IMAGE_ACCESS: &str = "ImageAccess";

/// Keeps the [`IMAGE_ACCESS`] condition in `conditions` as `refused` says (pure): False,
/// `ImagePullForbidden`, with the refusals while there are any (its transition time kept while
/// they stand); gone otherwise. True when `conditions` changed.
pub fn mark_refused(
    conditions: &mut Vec<slipway_crds::common::Condition>,
    refused: &[String],
    generation: Option<i64>,
) -> bool {
    use slipway_crds::common::{condition_status, new_condition, set_condition};
    if refused.is_empty() {
        let before = conditions.len();
        conditions.retain(|c| c.type_ != IMAGE_ACCESS);
        return conditions.len() != before;
    }
    let condition = new_condition(
        IMAGE_ACCESS,
        condition_status::FALSE,
        "ImagePullForbidden",
        &refused.join("; "),
        generation,
    );
    set_condition(conditions, condition)
}

/// The API group of Slipway's ImageStreams, which the review names.
pub const IMAGE_GROUP: &str = "slipway.dev";

/// What a reference does with the other namespace's images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageAccess {
    /// Pull: `get imagestreams/layers` (`system:image-puller`).
    Pull,
    /// Push or tag: `update imagestreams/layers` (`system:image-pusher`).
    Push,
}

impl ImageAccess {
    pub fn verb(self) -> &'static str {
        match self {
            Self::Pull => "get",
            Self::Push => "update",
        }
    }

    /// The ClusterRole that grants it.
    pub fn role(self) -> &'static str {
        match self {
            Self::Pull => "system:image-puller",
            Self::Push => "system:image-pusher",
        }
    }
}

/// The service account whose rights a reference is checked with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccount {
    pub namespace: String,
    pub name: String,
}

impl ServiceAccount {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The account builds of `namespace` run as: `service_account` when set, else `builder`.
    pub fn builder(namespace: &str, service_account: Option<&str>) -> Self {
        let name = service_account.filter(|s| !s.is_empty()).unwrap_or("builder");
        Self::new(namespace, name)
    }

    /// The account pods of `namespace` run as: their template's `serviceAccountName`, else
    /// `default` (whose rights an image reference of theirs is checked with).
    pub fn of_pods(namespace: &str, service_account_name: Option<&str>) -> Self {
        let name = service_account_name
            .filter(|s| !s.is_empty())
            .unwrap_or("default");
        Self::new(namespace, name)
    }

    /// `system:serviceaccount:NS:NAME`, the user name the API server gives its tokens.
    pub fn user(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }

    /// The groups every token of the account carries.
    pub fn groups(&self) -> Vec<String> {
        slipway_client::names::service_account_groups(&self.namespace)
    }
}

/// The review that asks whether `account` may `access` the image streams of `namespace` (pure).
pub fn review(account: &ServiceAccount, namespace: &str, access: ImageAccess) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(account.user()),
            groups: Some(account.groups()),
            resource_attributes: Some(ResourceAttributes {
                group: Some(IMAGE_GROUP.into()),
                resource: Some("imagestreams".into()),
                subresource: Some("layers".into()),
                namespace: Some(namespace.into()),
                verb: Some(access.verb().into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Why `account` may not `access` the image streams of `namespace`, for a status message.
pub fn refusal(account: &ServiceAccount, namespace: &str, access: ImageAccess) -> String {
    format!(
        "service account {}/{} may not {} imagestreams/layers in namespace {namespace} \
         (bind the ClusterRole {} to it there)",
        account.namespace,
        account.name,
        access.verb(),
        access.role()
    )
}

/// Ok when `account` may `access` the image streams of `namespace` (always within its own
/// namespace); Err with the refusal otherwise. The outer error is a failure to ask.
pub async fn check(
    client: &Client,
    account: &ServiceAccount,
    namespace: &str,
    access: ImageAccess,
) -> Result<Result<(), String>, Error> {
    if namespace == account.namespace {
        return Ok(Ok(()));
    }
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    let answer = reviews
        .create(&PostParams::default(), &review(account, namespace, access))
        .await?;
    let allowed = answer.status.is_some_and(|s| s.allowed && s.denied != Some(true));
    Ok(if allowed {
        Ok(())
    } else {
        Err(refusal(account, namespace, access))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_access_condition_follows_the_refusals() {
        let mut conditions = Vec::new();
        assert!(!mark_refused(&mut conditions, &[], Some(1)), "nothing to remove");
        let refusal = vec!["the image trigger on v/web:latest is refused".to_string()];
        assert!(mark_refused(&mut conditions, &refusal, Some(1)));
        assert_eq!(conditions.len(), 1);
        assert_eq!(
            (conditions[0].type_.as_str(), conditions[0].status.as_str()),
            (IMAGE_ACCESS, "False")
        );
        assert_eq!(conditions[0].reason, "ImagePullForbidden");
        assert_eq!(conditions[0].message, refusal[0]);
        // The same refusal again writes nothing: another namespace's pushes leave no trace.
        assert!(!mark_refused(&mut conditions, &refusal, Some(1)));
        assert!(mark_refused(&mut conditions, &[], Some(1)));
        assert!(conditions.is_empty());
    }

    #[test]
    fn the_review_names_the_account_its_groups_and_the_layers() {
        let account = ServiceAccount::new("attacker", "builder");
        let review = review(&account, "victim", ImageAccess::Push);
        assert_eq!(
            review.spec.user.as_deref(),
            Some("system:serviceaccount:attacker:builder")
        );
        assert_eq!(
            review.spec.groups.unwrap_or_default(),
            vec![
                "system:serviceaccounts",
                "system:serviceaccounts:attacker",
                "system:authenticated"
            ]
        );
        let attrs = review.spec.resource_attributes.unwrap_or_default();
        assert_eq!(attrs.resource.as_deref(), Some("imagestreams"));
        assert_eq!(attrs.subresource.as_deref(), Some("layers"));
        assert_eq!(attrs.namespace.as_deref(), Some("victim"));
        assert_eq!(attrs.verb.as_deref(), Some("update"));
        assert_eq!(attrs.group.as_deref(), Some(IMAGE_GROUP));
    }

    #[test]
    fn the_refusal_names_the_right_and_the_role() {
        let message = refusal(&ServiceAccount::new("a", "builder"), "v", ImageAccess::Pull);
        assert!(
            message.contains("may not get imagestreams/layers in namespace v"),
            "{message}"
        );
        assert!(message.contains("system:image-puller"), "{message}");
    }
}
