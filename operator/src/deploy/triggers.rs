//! ConfigChange and ImageChange triggers of DeploymentConfigs, as pure functions: which images
//! the template should carry now, and whether the template differs from the latest version's
//! enough to make a new version (and why).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use slipway_crds::DeploymentConfigSpec;
use slipway_crds::apps::{
    DeploymentCause, DeploymentCauseImageTrigger, DeploymentDetails, DeploymentTriggerImageChangeParams,
    DeploymentTriggerType,
};
use slipway_crds::image::split_stream_tag;

/// The key of an ImageStreamTag in the map of resolved images: `namespace/stream:tag`.
pub fn tag_key(default_namespace: &str, params: &DeploymentTriggerImageChangeParams) -> String {
    let namespace = params
        .from
        .namespace
        .as_deref()
        .filter(|ns| !ns.is_empty())
        .unwrap_or(default_namespace);
    let (stream, tag) = split_stream_tag(&params.from.name);
    format!("{namespace}/{stream}:{tag}")
}

/// The ImageChange triggers of a spec.
pub fn image_triggers(
    spec: &DeploymentConfigSpec,
) -> impl Iterator<Item = &DeploymentTriggerImageChangeParams> {
    spec.triggers
        .iter()
        .flatten()
        .filter(|t| t.type_ == DeploymentTriggerType::ImageChange)
        .filter_map(|t| t.image_change_params.as_ref())
}

/// Whether a config change makes a new version: a missing trigger list means one ConfigChange
/// trigger, as in OpenShift.
pub fn has_config_trigger(spec: &DeploymentConfigSpec) -> bool {
    spec.triggers
        .as_ref()
        .is_none_or(|ts| ts.iter().any(|t| t.type_ == DeploymentTriggerType::ConfigChange))
}

/// The spec with the images of automatic triggers whose tag moved put into their containers
/// (and `lastTriggeredImage` recorded), or None when no automatic trigger has a new image.
/// `images` maps [`tag_key`]s to the tag's newest pull spec.
pub fn apply_images(
    spec: &DeploymentConfigSpec,
    namespace: &str,
    images: &BTreeMap<String, String>,
) -> Option<DeploymentConfigSpec> {
    let mut updated = spec.clone();
    let mut changed = false;
    let template = updated.template.as_mut()?;
    for trigger in updated.triggers.iter_mut().flatten() {
        let Some(params) = trigger.image_change_params.as_mut() else {
            continue;
        };
        if !params.automatic {
            continue;
        }
        let Some(image) = images.get(&tag_key(namespace, params)) else {
            continue;
        };
        if params.last_triggered_image.as_deref() == Some(image) {
            continue;
        }
        if let Some(pod) = template.spec.as_mut() {
            let init = pod.init_containers.iter_mut().flatten();
            for container in pod.containers.iter_mut().chain(init) {
                if params.container_names.contains(&container.name) {
                    container.image = Some(image.clone());
                }
            }
        }
        params.last_triggered_image = Some(image.clone());
        changed = true;
    }
    changed.then_some(updated)
}

/// What the triggers say about a new version.
#[derive(Clone, Debug, PartialEq)]
pub enum NextVersion {
    /// Nothing to roll out.
    None,
    /// The first version waits until every automatic image trigger has an image.
    WaitForImages(Vec<String>),
    /// Make the next version, for these causes.
    Roll(DeploymentDetails),
}

/// Whether the spec calls for a new version, given the template of the latest version (None
/// when there is no version yet).
pub fn next_version(spec: &DeploymentConfigSpec, latest: Option<&PodTemplateSpec>) -> NextVersion {
    let Some(template) = spec.template.as_ref() else {
        return NextVersion::None;
    };
    if spec.paused {
        return NextVersion::None;
    }
    let automatic: Vec<&DeploymentTriggerImageChangeParams> =
        image_triggers(spec).filter(|p| p.automatic).collect();
    let config = has_config_trigger(spec);
    let Some(latest) = latest else {
        let waiting: Vec<String> = automatic
            .iter()
            .filter(|p| p.last_triggered_image.is_none())
            .map(|p| p.from.name.clone())
            .collect();
        if !waiting.is_empty() {
            return NextVersion::WaitForImages(waiting);
        }
        return match (config, automatic.first()) {
            (true, _) => NextVersion::Roll(config_change()),
            (false, Some(_)) => NextVersion::Roll(image_change(automatic.iter().copied())),
            (false, None) => NextVersion::None,
        };
    };
    if template == latest {
        return NextVersion::None;
    }
    // Only images of automatic triggers differ: an image change.
    let mut with_new_images = latest.clone();
    let mut moved = Vec::new();
    if let (Some(pod), Some(new_pod)) = (with_new_images.spec.as_mut(), template.spec.as_ref()) {
        let new_images: BTreeMap<&str, &Option<String>> = new_pod
            .containers
            .iter()
            .chain(new_pod.init_containers.iter().flatten())
            .map(|c| (c.name.as_str(), &c.image))
            .collect();
        let init = pod.init_containers.iter_mut().flatten();
        for container in pod.containers.iter_mut().chain(init) {
            let Some(trigger) = automatic
                .iter()
                .find(|p| p.container_names.contains(&container.name))
            else {
                continue;
            };
            if let Some(image) = new_images.get(container.name.as_str())
                && **image != container.image
            {
                container.image = (*image).clone();
                if !moved.contains(trigger) {
                    moved.push(*trigger);
                }
            }
        }
    }
    if &with_new_images == template && !moved.is_empty() {
        return NextVersion::Roll(image_change(moved.into_iter()));
    }
    if config {
        NextVersion::Roll(config_change())
    } else {
        NextVersion::None
    }
}

fn config_change() -> DeploymentDetails {
    DeploymentDetails {
        message: Some("config change".into()),
        causes: vec![DeploymentCause {
            type_: "ConfigChange".into(),
            image_trigger: None,
        }],
    }
}

fn image_change<'a>(
    triggers: impl Iterator<Item = &'a DeploymentTriggerImageChangeParams>,
) -> DeploymentDetails {
    DeploymentDetails {
        message: Some("image change".into()),
        causes: triggers
            .map(|p| DeploymentCause {
                type_: "ImageChange".into(),
                image_trigger: Some(DeploymentCauseImageTrigger { from: p.from.clone() }),
            })
            .collect(),
    }
}

/// A manual rollout (`slip rollout latest`).
pub fn manual_change() -> DeploymentDetails {
    DeploymentDetails {
        message: Some("manual change".into()),
        causes: vec![DeploymentCause {
            type_: "Manual".into(),
            image_trigger: None,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use slipway_crds::apps::DeploymentTriggerPolicy;
    use slipway_crds::common::ImageReference;

    fn template(image: &str, env: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "web".into(),
                    image: Some(image.into()),
                    args: Some(vec![env.into()]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    fn spec(config: bool, automatic: bool, last: Option<&str>) -> DeploymentConfigSpec {
        let mut triggers = vec![DeploymentTriggerPolicy {
            type_: DeploymentTriggerType::ImageChange,
            image_change_params: Some(DeploymentTriggerImageChangeParams {
                automatic,
                container_names: vec!["web".into()],
                from: ImageReference::image_stream_tag("app:latest"),
                last_triggered_image: last.map(String::from),
            }),
        }];
        if config {
            triggers.push(DeploymentTriggerPolicy {
                type_: DeploymentTriggerType::ConfigChange,
                image_change_params: None,
            });
        }
        DeploymentConfigSpec {
            triggers: Some(triggers),
            template: Some(template(last.unwrap_or("placeholder"), "a")),
            ..Default::default()
        }
    }

    #[test]
    fn a_moved_tag_sets_the_image_and_last_triggered_image() {
        let images = BTreeMap::from([("ns/app:latest".to_string(), "reg/app@sha256:1".to_string())]);
        let updated = apply_images(&spec(true, true, None), "ns", &images).unwrap();
        let image = updated
            .template
            .as_ref()
            .unwrap()
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .image
            .clone();
        assert_eq!(image.as_deref(), Some("reg/app@sha256:1"));
        assert!(
            apply_images(&updated, "ns", &images).is_none(),
            "quiet once applied"
        );
        assert!(
            apply_images(&spec(true, false, None), "ns", &images).is_none(),
            "manual"
        );
        assert!(apply_images(&spec(true, true, None), "other", &images).is_none());
    }

    #[test]
    fn the_first_version_waits_for_images() {
        assert_eq!(
            next_version(&spec(true, true, None), None),
            NextVersion::WaitForImages(vec!["app:latest".into()])
        );
        assert!(matches!(
            next_version(&spec(false, true, Some("reg/app@sha256:1")), None),
            NextVersion::Roll(d) if d.causes[0].type_ == "ImageChange"
        ));
        assert!(matches!(
            next_version(&spec(true, false, None), None),
            NextVersion::Roll(d) if d.causes[0].type_ == "ConfigChange"
        ));
    }

    #[test]
    fn image_and_config_changes_are_told_apart() {
        let current = spec(true, true, Some("reg/app@sha256:2"));
        let previous = template("reg/app@sha256:1", "a");
        assert!(matches!(
            next_version(&current, Some(&previous)),
            NextVersion::Roll(d) if d.causes[0].type_ == "ImageChange" && d.causes[0].image_trigger.is_some()
        ));
        let same = template("reg/app@sha256:2", "a");
        assert_eq!(next_version(&current, Some(&same)), NextVersion::None);
        let other_args = template("reg/app@sha256:2", "b");
        assert!(matches!(
            next_version(&current, Some(&other_args)),
            NextVersion::Roll(d) if d.causes[0].type_ == "ConfigChange"
        ));
        // Without a ConfigChange trigger only image changes roll.
        let image_only = spec(false, true, Some("reg/app@sha256:2"));
        assert_eq!(next_version(&image_only, Some(&other_args)), NextVersion::None);
        let mut paused = current.clone();
        paused.paused = true;
        assert_eq!(next_version(&paused, Some(&previous)), NextVersion::None);
    }
}
