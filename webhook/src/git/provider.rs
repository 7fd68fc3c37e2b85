//! The git providers a BuildConfig's webhook triggers name, and where each one's trigger and
//! cause live in the API types.

use slipway_crds::build::{
    BuildTriggerCause, BuildTriggerPolicy, BuildTriggerType, WebHookCause, WebHookTrigger,
};

/// A git provider, as the last segment of the webhook URL names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    GitHub,
    GitLab,
    Bitbucket,
    /// Gitea and Forgejo.
    Gitea,
    /// Any caller that speaks OpenShift's generic webhook payload.
    Generic,
}

impl Provider {
    /// All providers, in the order the URL segments are listed in messages.
    pub const ALL: [Provider; 5] = [
        Provider::GitHub,
        Provider::GitLab,
        Provider::Bitbucket,
        Provider::Gitea,
        Provider::Generic,
    ];

    /// The provider a URL segment names (`github`, `gitlab`, `bitbucket`, `gitea`, `generic`).
    pub fn from_segment(segment: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.segment() == segment)
    }

    /// The URL segment of the provider.
    pub fn segment(self) -> &'static str {
        match self {
            Self::GitHub => "github",
            Self::GitLab => "gitlab",
            Self::Bitbucket => "bitbucket",
            Self::Gitea => "gitea",
            Self::Generic => "generic",
        }
    }

    /// The trigger type that accepts this provider's deliveries.
    pub fn trigger_type(self) -> BuildTriggerType {
        match self {
            Self::GitHub => BuildTriggerType::GitHub,
            Self::GitLab => BuildTriggerType::GitLab,
            Self::Bitbucket => BuildTriggerType::Bitbucket,
            Self::Gitea => BuildTriggerType::Gitea,
            Self::Generic => BuildTriggerType::Generic,
        }
    }

    /// This provider's webhook settings in a trigger, when the trigger is of this provider's type.
    pub fn trigger(self, policy: &BuildTriggerPolicy) -> Option<&WebHookTrigger> {
        if policy.type_ != self.trigger_type() {
            return None;
        }
        match self {
            Self::GitHub => policy.github.as_ref(),
            Self::GitLab => policy.gitlab.as_ref(),
            Self::Bitbucket => policy.bitbucket.as_ref(),
            Self::Gitea => policy.gitea.as_ref(),
            Self::Generic => policy.generic.as_ref(),
        }
    }

    /// The cause a build started by this provider records, with OpenShift's messages.
    pub fn cause(self, webhook: WebHookCause) -> BuildTriggerCause {
        let mut cause = BuildTriggerCause::default();
        let (message, slot) = match self {
            Self::GitHub => ("GitHub WebHook", &mut cause.github_web_hook),
            Self::GitLab => ("GitLab WebHook", &mut cause.gitlab_web_hook),
            Self::Bitbucket => ("Bitbucket WebHook", &mut cause.bitbucket_web_hook),
            Self::Gitea => ("Gitea WebHook", &mut cause.gitea_web_hook),
            Self::Generic => ("Generic WebHook", &mut cause.generic_web_hook),
        };
        *slot = Some(webhook);
        cause.message = message.into();
        cause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_round_trip_and_unknown_ones_are_refused() {
        for provider in Provider::ALL {
            assert_eq!(Provider::from_segment(provider.segment()), Some(provider));
        }
        assert_eq!(Provider::from_segment("GitHub"), None);
        assert_eq!(Provider::from_segment("svn"), None);
    }

    #[test]
    fn a_trigger_belongs_to_its_own_type_only() {
        let policy = BuildTriggerPolicy {
            type_: BuildTriggerType::GitHub,
            github: Some(WebHookTrigger::default()),
            gitlab: None,
            bitbucket: None,
            gitea: None,
            generic: None,
            image_change: None,
        };
        assert!(Provider::GitHub.trigger(&policy).is_some());
        assert!(Provider::GitLab.trigger(&policy).is_none());
        assert!(Provider::Generic.trigger(&policy).is_none());
    }

    #[test]
    fn the_cause_names_the_provider() {
        let cause = Provider::Gitea.cause(WebHookCause::default());
        assert_eq!(cause.message, "Gitea WebHook");
        assert!(cause.gitea_web_hook.is_some() && cause.github_web_hook.is_none());
    }
}
