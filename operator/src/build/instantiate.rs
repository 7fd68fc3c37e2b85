//! Starting build number n+1 of a BuildConfig, exactly once however many start it at the same
//! time.
//!
//! The number is taken first: `status.lastVersion` is raised through the status subresource with
//! the resourceVersion that was read, so of two racing callers one gets a conflict and retries
//! with the next number. Only then is `<config>-<n>` created. Nothing else may write
//! `status.lastVersion`; other status writers must leave the field out of what they send.

use std::time::Duration;

use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use slipway_crds::build::{BuildRequest, is_paused, new_build};
use slipway_crds::{Build, BuildConfig};

/// Why a build could not be started.
#[derive(Debug, thiserror::Error)]
pub enum InstantiateError {
    #[error("buildconfig {namespace}/{name} does not exist")]
    NotFound { namespace: String, name: String },
    #[error(
        "buildconfig {namespace}/{name} is paused (annotation slipway.dev/build-config.paused is \"true\"); remove the annotation to build"
    )]
    Paused { namespace: String, name: String },
    #[error("buildconfig {namespace}/{name} changed too often to take a build number; try again")]
    Contended { namespace: String, name: String },
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// How long callers keep retrying on conflicts before giving up. A hundred simultaneous starts
/// of one BuildConfig take about a hundred rounds.
const CONTENTION_BUDGET: Duration = Duration::from_secs(30);

/// Starts the next build of `namespace/name` with `client`'s rights (pass an impersonating
/// client to act for a user) and returns the created Build.
pub async fn instantiate(
    client: &Client,
    namespace: &str,
    name: &str,
    request: &BuildRequest,
) -> Result<Build, InstantiateError> {
    let configs: Api<BuildConfig> = Api::namespaced(client.clone(), namespace);
    let builds: Api<Build> = Api::namespaced(client.clone(), namespace);
    let started = tokio::time::Instant::now();
    loop {
        let Some(mut config) = configs.get_opt(name).await? else {
            return Err(InstantiateError::NotFound {
                namespace: namespace.into(),
                name: name.into(),
            });
        };
        if is_paused(&config) {
            return Err(InstantiateError::Paused {
                namespace: namespace.into(),
                name: name.into(),
            });
        }
        let version = config.status.as_ref().map_or(0, |s| s.last_version) + 1;
        config.status.get_or_insert_with(Default::default).last_version = version;
        // `replace_status` sends the resourceVersion read above: a concurrent raise conflicts.
        match configs
            .replace_status(name, &PostParams::default(), &config)
            .await
        {
            Ok(raised) => {
                let build = new_build(&raised, version, request);
                return create(&builds, &build).await;
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                if started.elapsed() > CONTENTION_BUDGET {
                    return Err(InstantiateError::Contended {
                        namespace: namespace.into(),
                        name: config.name_any(),
                    });
                }
                // Random jitter spreads the racers out so that each round has a winner.
                tokio::time::sleep(Duration::from_millis(rand::random_range(0..15))).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Creates the Build; a transient failure is retried so that a taken number is not left a gap.
async fn create(builds: &Api<Build>, build: &Build) -> Result<Build, InstantiateError> {
    let mut attempt = 0;
    loop {
        match builds.create(&PostParams::default(), build).await {
            Ok(created) => return Ok(created),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                // Someone created it already (a retry after a lost answer): it is ours.
                return Ok(builds.get(&build.name_any()).await?);
            }
            Err(kube::Error::Api(e)) if e.code < 500 && e.code != 429 => {
                return Err(kube::Error::Api(e).into());
            }
            Err(e) if attempt >= 4 => return Err(e.into()),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
        }
    }
}
