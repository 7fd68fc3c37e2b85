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
use slipway_crds::build::{BuildRequest, is_paused, needs_binary_input, new_build};
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
    #[error("buildconfig {namespace}/{name} no longer allows this build: {reason}")]
    Refused {
        namespace: String,
        name: String,
        reason: String,
    },
    #[error("buildconfig {namespace}/{name} changed too often to take a build number; try again")]
    Contended { namespace: String, name: String },
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// How long callers keep retrying on conflicts before giving up. A hundred simultaneous starts
/// of one BuildConfig take about a hundred rounds.
const CONTENTION_BUDGET: Duration = Duration::from_secs(30);

/// Starts the next build of `namespace/name` with `client`'s rights (pass an impersonating
/// client to act for a user) and returns the created Build. A BuildConfig with binary source is
/// refused unless the request carries the upload's settings (`request.binary`).
pub async fn instantiate(
    client: &Client,
    namespace: &str,
    name: &str,
    request: &BuildRequest,
) -> Result<Build, InstantiateError> {
    let raised = take_number(client, namespace, name, None, |config| admit(config, request)).await?;
    create_numbered(client, &raised, request).await
}

/// Whether `request` may start a build of `config` (pure): binary source needs an upload.
fn admit(config: &BuildConfig, request: &BuildRequest) -> Result<(), String> {
    if needs_binary_input(config) && request.binary.is_none() {
        return Err(
            "its source is binary (uploaded): start it with slip start-build --from-dir, --from-file, --from-archive or --from-repo"
                .into(),
        );
    }
    Ok(())
}

/// The BuildConfig as read, when a build may start from it (pure): it exists and is not paused.
fn startable(
    config: Option<BuildConfig>,
    namespace: &str,
    name: &str,
) -> Result<BuildConfig, InstantiateError> {
    let Some(config) = config else {
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
    Ok(config)
}

fn refused(namespace: &str, name: &str, reason: String) -> InstantiateError {
    InstantiateError::Refused {
        namespace: namespace.into(),
        name: name.into(),
        reason,
    }
}

/// The Build [`instantiate`] would create now, checked as it checks (the BuildConfig exists, is
/// not paused, gets an upload when its source is binary), without taking a number. With
/// `server`, the Build is also sent with dryRun=All: the API server validates it and its
/// admission runs, and nothing is stored.
pub async fn dry_run(
    client: &Client,
    namespace: &str,
    name: &str,
    request: &BuildRequest,
    server: bool,
) -> Result<Build, InstantiateError> {
    let configs: Api<BuildConfig> = Api::namespaced(client.clone(), namespace);
    let config = startable(configs.get_opt(name).await?, namespace, name)?;
    if let Err(reason) = admit(&config, request) {
        return Err(refused(namespace, name, reason));
    }
    let version = config.status.as_ref().map_or(0, |s| s.last_version) + 1;
    let build = new_build(&config, version, request);
    if !server {
        return Ok(build);
    }
    let builds: Api<Build> = Api::namespaced(client.clone(), namespace);
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    Ok(builds.create(&params, &build).await?)
}

/// The first half of [`instantiate`]: raises `status.lastVersion` of `namespace/name` by one and
/// returns the BuildConfig as raised (its `lastVersion` is the number taken). Give the second half,
/// [`create_numbered`], the result.
///
/// With `known`, a copy of the BuildConfig read earlier (from a watch cache, or the result of the
/// previous raise), the first attempt raises that copy instead of reading the BuildConfig: one
/// round trip fewer. A stale copy costs only that round trip back: the raise carries the copy's
/// resourceVersion, so it conflicts (or finds the BuildConfig gone) and the BuildConfig is read
/// afresh. Nothing the copy says is acted on unless it is the current state; a copy that says
/// paused is checked against the API server.
///
/// `admit` is asked about the very BuildConfig that is raised (the raise fails if it changed
/// since): a caller that decided on an older copy checks here that the decision still holds
/// (Err: why not; nothing is raised and the answer is [`InstantiateError::Refused`]). It may also
/// change the BuildConfig's status, which is then written in the same raise (the git webhook
/// records the delivery that takes the number so, atomically with it).
pub async fn take_number(
    client: &Client,
    namespace: &str,
    name: &str,
    known: Option<&BuildConfig>,
    mut admit: impl FnMut(&mut BuildConfig) -> Result<(), String>,
) -> Result<BuildConfig, InstantiateError> {
    let configs: Api<BuildConfig> = Api::namespaced(client.clone(), namespace);
    let started = tokio::time::Instant::now();
    let mut known = known
        .filter(|c| c.resource_version().is_some() && !is_paused(c))
        .cloned();
    loop {
        let copy = known.take();
        let from_copy = copy.is_some();
        let current = match copy {
            Some(config) => Some(config),
            None => configs.get_opt(name).await?,
        };
        let mut config = startable(current, namespace, name)?;
        if let Err(reason) = admit(&mut config) {
            return Err(refused(namespace, name, reason));
        }
        let version = config.status.as_ref().map_or(0, |s| s.last_version) + 1;
        config.status.get_or_insert_with(Default::default).last_version = version;
        // `replace_status` sends the resourceVersion read above: a concurrent raise conflicts.
        match configs
            .replace_status(name, &PostParams::default(), &config)
            .await
        {
            Ok(raised) => return Ok(raised),
            // A stale copy (changed or deleted since): read the BuildConfig now, without waiting.
            Err(kube::Error::Api(e)) if from_copy && (e.code == 409 || e.code == 404) => {}
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

/// The second half of [`instantiate`]: creates build `<config>-<n>` of the BuildConfig `raised`
/// by [`take_number`] (n is its `status.lastVersion`).
pub async fn create_numbered(
    client: &Client,
    raised: &BuildConfig,
    request: &BuildRequest,
) -> Result<Build, InstantiateError> {
    let builds: Api<Build> = Api::namespaced(client.clone(), &raised.namespace().unwrap_or_default());
    let version = raised.status.as_ref().map_or(0, |s| s.last_version);
    create(&builds, &new_build(raised, version, request)).await
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
