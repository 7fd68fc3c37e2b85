//! The builder's side of the operator–builder contract (`slipway_crds::contract`): the Build is
//! read from `BUILD` and turned into the flags of `s2i` and `docker`, so what the BuildConfig says
//! is what the build does. Without `BUILD` (the builder run by hand or by its own tests) the
//! flags alone decide.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use slipway_crds::Build;
use slipway_crds::contract::result::StageResult;
use slipway_crds::contract::{self, BuildInput, BuildPlan, InputKind, env, paths};

use crate::result::FailureReason;
use crate::s2i::BuildError;

/// The Build of this pod and its plan.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub build: Build,
    pub plan: BuildPlan,
    /// What `fetch` recorded (commit, author, date, message), when it ran.
    pub fetched: Option<StageResult>,
}

impl Loaded {
    /// Reads `BUILD` (and the fetch record); `None` when the variable is not set.
    pub fn from_env() -> Result<Option<Self>, BuildError> {
        let Ok(text) = std::env::var(env::BUILD) else {
            return Ok(None);
        };
        let invalid = |m: String| BuildError::new(FailureReason::InvalidBuild, m);
        let build: Build = serde_json::from_str(&text)
            .map_err(|e| invalid(format!("{} is not a Build: {e}", env::BUILD)))?;
        let plan = contract::plan(&build.spec.common).map_err(|refused| {
            invalid(
                refused
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        let fetched = std::fs::read_to_string(paths::FETCH_RECORD)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        Ok(Some(Self { build, plan, fetched }))
    }

    /// The context directory: the clone's (or an empty directory without one) plus `contextDir`.
    pub fn context(&self, source_root: &Path) -> Result<PathBuf, BuildError> {
        if !self.plan.git {
            std::fs::create_dir_all(source_root).map_err(|e| {
                BuildError::new(
                    FailureReason::InvalidContextDirectory,
                    format!("{}: {e}", source_root.display()),
                )
            })?;
        }
        let dir = source_root.join(&self.plan.context_dir);
        if !dir.is_dir() {
            return Err(BuildError::new(
                FailureReason::InvalidContextDirectory,
                format!(
                    "the context directory {:?} is not in the source",
                    self.plan.context_dir
                ),
            ));
        }
        Ok(dir)
    }

    /// The commit, for labels and the result.
    pub fn commit(&self) -> Option<String> {
        self.fetched.as_ref().and_then(|f| f.commit.clone()).or_else(|| {
            self.build
                .spec
                .common
                .revision
                .as_ref()
                .and_then(|r| r.git.as_ref())
                .map(|g| g.commit.clone())
                .filter(|c| !c.is_empty())
        })
    }

    /// `io.openshift.build.*` and `output.imageLabels`.
    pub fn labels(&self) -> BTreeMap<String, String> {
        contract::image_labels(&self.build, self.fetched.as_ref())
    }

    /// The strategy's variables: literal ones, then `valueFrom` ones from the pod's environment
    /// (those are for the build only; `.1` says whether a variable may go into the image).
    pub fn env(&self) -> Vec<(String, String, bool)> {
        let literal = self.plan.env.iter().map(|(k, v)| (k.clone(), v.clone(), true));
        let from_pod = self.plan.env_from_pod.iter().map(|k| {
            let v = std::env::var(format!("{}{k}", env::VALUE_FROM_PREFIX)).unwrap_or_default();
            (k.clone(), v, false)
        });
        literal.chain(from_pod).collect()
    }
}

/// The build inputs of `plan`, copied from their mounts into `context`; returns every path
/// created, deepest first, so that [`remove_inputs`] can take them out again.
pub fn place_inputs(inputs: &[BuildInput], context: &Path) -> Result<Vec<PathBuf>, BuildError> {
    let mut placed = Vec::new();
    for input in inputs {
        let missing = |why: String| {
            let kind = match input.kind {
                InputKind::Secret => "secret",
                InputKind::ConfigMap => "configMap",
            };
            BuildError::new(
                FailureReason::MissingBuildInput,
                format!("build input {kind} {:?}: {why}", input.name),
            )
        };
        let files = visible_files(Path::new(&input.mount)).map_err(|e| missing(e.to_string()))?;
        if files.is_empty() {
            return Err(missing("does not exist in the namespace, or has no keys".into()));
        }
        let dest = context.join(&input.destination);
        let mut dir = dest.clone();
        let mut made = Vec::new();
        while !dir.exists() && dir.starts_with(context) {
            made.push(dir.clone());
            if !dir.pop() {
                break;
            }
        }
        std::fs::create_dir_all(&dest).map_err(|e| missing(format!("{}: {e}", dest.display())))?;
        for name in files {
            let to = dest.join(&name);
            std::fs::copy(Path::new(&input.mount).join(&name), &to)
                .map_err(|e| missing(format!("copying {name}: {e}")))?;
            placed.push(to);
        }
        placed.extend(made);
    }
    Ok(placed)
}

/// Takes placed inputs out again (files first, then the directories made for them).
pub fn remove_inputs(placed: &[PathBuf]) -> Result<(), String> {
    for p in placed {
        let r = if p.is_dir() {
            std::fs::remove_dir(p)
        } else {
            std::fs::remove_file(p)
        };
        match r {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("removing build input {}: {e}", p.display())),
        }
    }
    Ok(())
}

/// The keys of a mounted Secret or ConfigMap: its visible regular files (Kubernetes' `..data`
/// indirection and hidden entries left out).
fn visible_files(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.path().is_file() {
            continue;
        }
        out.push(name);
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn inputs_are_placed_and_taken_out_again() {
        let tmp = tempfile::tempdir().unwrap();
        let mount = tmp.path().join("mount");
        std::fs::create_dir_all(mount.join("..data")).unwrap();
        std::fs::write(mount.join("token"), "s3cret").unwrap();
        std::fs::write(mount.join(".hidden"), "x").unwrap();
        let context = tmp.path().join("ctx");
        std::fs::create_dir_all(&context).unwrap();
        let input = BuildInput {
            kind: InputKind::Secret,
            name: "creds".into(),
            mount: mount.to_string_lossy().into_owned(),
            destination: "a/b".into(),
        };
        let placed = place_inputs(std::slice::from_ref(&input), &context).unwrap();
        assert_eq!(
            std::fs::read_to_string(context.join("a/b/token")).unwrap(),
            "s3cret"
        );
        assert!(!context.join("a/b/.hidden").exists());
        remove_inputs(&placed).unwrap();
        assert!(!context.join("a").exists(), "the directories made for it go too");

        let empty = tmp.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let missing = BuildInput {
            mount: empty.to_string_lossy().into_owned(),
            ..input
        };
        let e = place_inputs(&[missing], &context).unwrap_err();
        assert_eq!(e.reason, FailureReason::MissingBuildInput);
        assert!(e.message.contains("\"creds\""), "{}", e.message);
    }
}
