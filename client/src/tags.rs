//! Recording a pushed image as the newest of an ImageStream tag: a build's output (the operator)
//! and a push the registry tells of (the webhook's registry notifications).

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use slipway_crds::ImageStream;
use slipway_crds::common::Time;
use slipway_crds::image::TagEvent;

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

/// Records `digest` as the newest image of `stream:tag`, its pull spec
/// `<repository(stream)>@<digest>`, created at `pushed_at` (now without it). A push made at
/// `pushed_at` that is older than the tag's newest image (a notification delivered again, or
/// late) changes nothing. The status is
/// replaced with the resourceVersion read, so concurrent writers retry instead of losing each
/// other's items.
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
        let event = TagEvent {
            created: Time(pushed_at.unwrap_or_else(Timestamp::now)),
            docker_image_reference: format!("{}@{digest}", repository(&is)),
            image: digest.to_string(),
            generation: is.metadata.generation.unwrap_or(0),
        };
        let mut status = is.status.clone().unwrap_or_default();
        let newer = status.latest(tag).map(|latest| latest.created.0);
        if pushed_at.zip(newer).is_some_and(|(at, newer)| at < newer) {
            return Ok(Recorded::Unchanged);
        }
        if !status.record(tag, event) {
            return Ok(Recorded::Unchanged);
        }
        is.status = Some(status);
        match streams.replace_status(stream, &PostParams::default(), &is).await {
            Ok(_) => return Ok(Recorded::Moved),
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(Recorded::Conflicted)
}
