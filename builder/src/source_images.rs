//! `source.images`: paths copied out of other images into the build's source before the build,
//! as OpenShift does (a Java build's jar from a previous build's image, a shared assets image).
//!
//! Only the layers' entries under the requested paths are unpacked (`layer::unpack_layer_where`,
//! into a scratch directory, whiteouts applied, owners not kept), then copied to `destinationDir` of the context: a
//! directory with its contents, or with `dir/.` its contents alone. A path the image does not
//! have fails the build with `MissingBuildInput` naming the image and the path.

use std::io;
use std::path::{Component, Path, PathBuf};

use slipway_crds::contract::ImageInput;

use crate::layer;
use crate::progress::Progress;
use crate::registry::{self, Credentials, Registry};
use crate::result::FailureReason;
use crate::s2i::BuildError;

fn missing(message: String) -> BuildError {
    BuildError::new(FailureReason::MissingBuildInput, message)
}

/// The resolved pull specs of `SOURCE_IMAGES`.
pub fn specs_from_env() -> Result<Vec<String>, BuildError> {
    match std::env::var(slipway_crds::contract::env::SOURCE_IMAGES) {
        Err(_) => Ok(Vec::new()),
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            BuildError::new(
                FailureReason::InvalidBuild,
                format!(
                    "{} is not a list of images: {e}",
                    slipway_crds::contract::env::SOURCE_IMAGES
                ),
            )
        }),
    }
}

/// A path of the image relative to its root, and whether only its contents are wanted (`/.`).
fn relative(source: &str) -> (PathBuf, bool) {
    let contents = source.ends_with("/.");
    let rel: PathBuf = Path::new(source)
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    (rel, contents)
}

/// Copies the paths of each image into `context`.
pub fn place_images(
    images: &[ImageInput],
    specs: &[String],
    context: &Path,
    base: &Credentials,
    insecure: &[String],
    progress: &Progress,
) -> Result<(), BuildError> {
    if images.is_empty() {
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| missing(format!("cannot start the runtime: {e}")))?;
    for (i, image) in images.iter().enumerate() {
        let spec = specs
            .get(i)
            .ok_or_else(|| missing(format!("source image {i} was not resolved by the operator")))?;
        let mut credentials = base.clone();
        if let Some(dir) = &image.pull_secret {
            let own = Credentials::load(Path::new(dir))
                .map_err(|e| missing(format!("the pull secret of source image {spec}: {e}")))?;
            for s in own.secrets() {
                progress.add_secret(&s);
            }
            credentials = credentials.merge(own);
        }
        let reg = Registry::new(credentials, insecure).map_err(missing)?;
        let reference = registry::parse_reference(spec).map_err(missing)?;
        let scratch = tempfile::Builder::new()
            .prefix("slipway-source-image-")
            .tempdir()
            .map_err(|e| missing(format!("scratch directory: {e}")))?;
        unpack_wanted(&rt, &reg, (&reference, spec), image, scratch.path())?;
        for (source, dest) in &image.paths {
            let copied = copy_out(scratch.path(), source, &context.join(dest), spec)?;
            progress.line(format!(
                "copied {source} ({copied} files) from {spec} into {dest}/"
            ));
        }
    }
    Ok(())
}

/// Unpacks the entries of image `spec` (parsed: `reference`) under `image`'s paths into `scratch`, layer by layer.
fn unpack_wanted(
    rt: &tokio::runtime::Runtime,
    reg: &Registry,
    (reference, spec): (&oci_client::Reference, &str),
    image: &ImageInput,
    scratch: &Path,
) -> Result<(), BuildError> {
    let wanted: Vec<PathBuf> = image.paths.iter().map(|(s, _)| relative(s).0).collect();
    let pulled = rt
        .block_on(reg.pull_image(reference))
        .map_err(|e| missing(format!("source image {spec}: {e}")))?;
    for layer in pulled.layers() {
        let digest = layer["digest"].as_str().unwrap_or_default().to_owned();
        let blob = rt
            .block_on(reg.pull_blob(reference, &digest))
            .map_err(|e| missing(format!("source image {spec}, layer {digest}: {e}")))?;
        layer::unpack_layer_where(&blob, scratch, false, |p| selected(p, &wanted))
            .map_err(|e| missing(format!("source image {spec}, layer {digest}: {e}")))?;
    }
    Ok(())
}

/// Copies `source` (as unpacked in `scratch`) into the directory `target`: the path itself, or
/// with `/.` its contents. Returns the files copied; `MissingBuildInput` when the image has no
/// such path.
fn copy_out(scratch: &Path, source: &str, target: &Path, spec: &str) -> Result<u64, BuildError> {
    let (rel, contents) = relative(source);
    let from = scratch.join(&rel);
    if from.symlink_metadata().is_err() {
        return Err(missing(format!("source image {spec} has no {source}")));
    }
    std::fs::create_dir_all(target).map_err(|e| missing(format!("{}: {e}", target.display())))?;
    if contents && from.is_dir() {
        let mut n = 0;
        for entry in std::fs::read_dir(&from).map_err(|e| missing(e.to_string()))? {
            let entry = entry.map_err(|e| missing(e.to_string()))?;
            n += copy_tree(&entry.path(), &target.join(entry.file_name()))
                .map_err(|e| missing(format!("copying {source}: {e}")))?;
        }
        Ok(n)
    } else {
        let name = from.file_name().map(PathBuf::from).unwrap_or_default();
        copy_tree(&from, &target.join(name)).map_err(|e| missing(format!("copying {source}: {e}")))
    }
}

/// Whether `path` (relative) is one of `wanted` or inside one, or a directory above one.
fn selected(path: &Path, wanted: &[PathBuf]) -> bool {
    wanted.iter().any(|w| path.starts_with(w))
}

/// Copies a file, a symlink (as a link) or a directory tree; returns the files copied.
fn copy_tree(from: &Path, to: &Path) -> io::Result<u64> {
    let meta = from.symlink_metadata()?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(from)?;
        let _ = std::fs::remove_file(to);
        std::os::unix::fs::symlink(target, to)?;
        return Ok(1);
    }
    if meta.is_dir() {
        std::fs::create_dir_all(to)?;
        let mut n = 0;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            n += copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        return Ok(n);
    }
    std::fs::copy(from, to)?;
    Ok(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            if name.ends_with('/') {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
            } else {
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
            }
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn only_the_wanted_paths_are_unpacked_with_whiteouts_applied() {
        let root = tempfile::tempdir().unwrap();
        let wanted = vec![PathBuf::from("opt/app"), PathBuf::from("etc/motd")];
        let first = layer(&[
            ("opt/", b""),
            ("opt/app/", b""),
            ("opt/app/a.jar", b"a"),
            ("opt/app/old.txt", b"old"),
            ("opt/other/x", b"x"),
            ("etc/motd", b"hello"),
            ("etc/passwd", b"root"),
        ]);
        layer::unpack_layer_where(&first, root.path(), false, |p| selected(p, &wanted)).unwrap();
        let second = layer(&[("opt/app/.wh.old.txt", b""), ("opt/app/b.jar", b"b")]);
        layer::unpack_layer_where(&second, root.path(), false, |p| selected(p, &wanted)).unwrap();
        let r = root.path();
        assert!(r.join("opt/app/a.jar").is_file());
        assert!(r.join("opt/app/b.jar").is_file());
        assert!(!r.join("opt/app/old.txt").exists(), "a whiteout removes the file");
        assert!(!r.join("opt/other").exists(), "not asked for");
        assert!(!r.join("etc/passwd").exists(), "not asked for");
        assert_eq!(std::fs::read(r.join("etc/motd")).unwrap(), b"hello");
    }

    #[test]
    fn a_directory_or_its_contents_are_copied() {
        assert_eq!(relative("/opt/app/."), (PathBuf::from("opt/app"), true));
        assert_eq!(relative("/opt/app"), (PathBuf::from("opt/app"), false));
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("src/sub")).unwrap();
        std::fs::write(d.path().join("src/sub/f"), "f").unwrap();
        std::os::unix::fs::symlink("sub/f", d.path().join("src/link")).unwrap();
        assert_eq!(
            copy_tree(&d.path().join("src"), &d.path().join("out/src")).unwrap(),
            2
        );
        assert_eq!(
            std::fs::read_link(d.path().join("out/src/link")).unwrap(),
            PathBuf::from("sub/f")
        );
    }
}
