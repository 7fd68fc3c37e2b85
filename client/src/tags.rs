//! Recording a pushed image as the newest of an ImageStream tag: a build's output (the operator)
//! and a push the registry tells of (the webhook's registry notifications).

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use slipway_crds::ImageStream;
use slipway_crds::common::Time;
use slipway_crds::image::{ImageStreamStatus, TagEvent};

/// What [`record`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// The tag's newest image is now the digest.
    Moved,
    /// It already was.
    Unchanged,
    /// The stream does not exist.
    NoStream,
    /// The stream kept changing under every attempt; try again later.
    Conflicted,
}

/// The repository of an ImageStream's images: its `status.dockerImageRepository`, else
/// `<registry>/<namespace>/<stream>` (pure).
pub fn repository(is: &ImageStream, registry: &str, namespace: &str, stream: &str) -> String {
    is.status
        .as_ref()
        .map(|s| s.docker_image_repository.clone())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| format!("{registry}/{namespace}/{stream}"))
}

/// Records `digest` as the newest image of `stream:tag`, its pull spec
/// `<repository(stream)>@<digest>`, created at `pushed_at` (now without it); see [`next`]. The
/// status is replaced with the resourceVersion read, so concurrent writers retry instead of
/// losing each other's items.
pub async fn record(
    streams: &Api<ImageStream>,
    stream: &str,
    tag: &str,
    digest: &str,
    pushed_at: Option<Timestamp>,
    repository: impl Fn(&ImageStream) -> String,
) -> Result<Recorded, kube::Error> {
    for _ in 0..10 {
        let Some(mut is) = streams.get_opt(stream).await? else {
            return Ok(Recorded::NoStream);
        };
        let pull_spec = format!("{}@{digest}", repository(&is));
        let Some(status) = next(&is, tag, digest, pull_spec, pushed_at) else {
            return Ok(Recorded::Unchanged);
        };
        is.status = Some(status);
        match streams.replace_status(stream, &PostParams::default(), &is).await {
            Ok(_) => return Ok(Recorded::Moved),
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(Recorded::Conflicted)
}

/// The status of `is` with `digest` (at `pull_spec`) as the newest image of `tag` (pure), or
/// None when nothing changes: the tag's newest image is that digest already, or the push was
/// made at `pushed_at`, before the tag's newest image (a notification delivered again, or late).
pub fn next(
    is: &ImageStream,
    tag: &str,
    digest: &str,
    pull_spec: String,
    pushed_at: Option<Timestamp>,
) -> Option<ImageStreamStatus> {
    let mut status = is.status.clone().unwrap_or_default();
    let newest = status.latest(tag).map(|latest| latest.created.0);
    if pushed_at.zip(newest).is_some_and(|(at, newest)| at < newest) {
        return None;
    }
    let event = TagEvent {
        created: Time(pushed_at.unwrap_or_else(Timestamp::now)),
        docker_image_reference: pull_spec,
        image: digest.to_string(),
        generation: is.metadata.generation.unwrap_or(0),
    };
    status.record(tag, event).then_some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: char) -> String {
        format!("sha256:{}", n.to_string().repeat(64))
    }

    #[test]
    fn a_push_moves_the_tag_once_and_an_older_one_never_moves_it_back() {
        let mut is: ImageStream = serde_json::from_value(serde_json::json!({
            "apiVersion": "slipway.dev/v1alpha1", "kind": "ImageStream",
            "metadata": {"name": "web", "generation": 2}, "spec": {}
        }))
        .expect("an ImageStream");
        assert_eq!(repository(&is, "reg:5000", "team", "web"), "reg:5000/team/web");
        let at: Timestamp = "2026-12-06T10:00:00Z".parse().expect("a time");
        let status = next(&is, "v1", &digest('1'), "r/team/web@1".into(), Some(at)).expect("moved");
        let newest = status.latest("v1").expect("the tag");
        assert_eq!(
            (newest.image.as_str(), newest.created.0, newest.generation),
            (digest('1').as_str(), at, 2)
        );
        is.status = Some(status);
        // The same digest again, and an older push of another one: nothing changes.
        assert!(next(&is, "v1", &digest('1'), "r/team/web@1".into(), None).is_none());
        let earlier: Timestamp = "2026-12-06T09:00:00Z".parse().expect("a time");
        assert!(next(&is, "v1", &digest('2'), "r/team/web@2".into(), Some(earlier)).is_none());
        // A later one, or one without a time (a build's output), moves it.
        let later: Timestamp = "2026-12-06T11:00:00Z".parse().expect("a time");
        assert!(next(&is, "v1", &digest('2'), "r/team/web@2".into(), Some(later)).is_some());
        assert!(next(&is, "v1", &digest('3'), "r/team/web@3".into(), None).is_some());
        is.status.as_mut().expect("a status").docker_image_repository = "reg:5000/team/web".into();
        assert_eq!(repository(&is, "other:1", "team", "web"), "reg:5000/team/web");
    }
}
