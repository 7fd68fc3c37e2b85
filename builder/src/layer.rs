//! Filesystem snapshots, the one layer an S2I build adds (changed files plus whiteouts), and
//! unpacking layers with whiteouts (for tests and tools).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

/// The kind of a filesystem entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// Fifos, sockets, devices: recorded so their deletion is seen, never written to a layer.
    Other,
}

/// What a snapshot records of one path: enough to tell that it changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub ino: u64,
    pub link: Option<PathBuf>,
}

/// Every path under a root (relative to it, without a leading `/`) and what it was.
pub type Snapshot = BTreeMap<PathBuf, Entry>;

/// Records the tree under `root`. `excluded` are absolute paths (as seen from inside `root`, e.g.
/// `/proc`) whose whole subtree is skipped. Directories that cannot be read are skipped: whoever
/// runs the build cannot change them either.
pub fn snapshot(root: &Path, excluded: &[PathBuf]) -> io::Result<Snapshot> {
    let excluded: Vec<PathBuf> = excluded
        .iter()
        .map(|p| root.join(p.strip_prefix("/").unwrap_or(p)))
        .collect();
    let mut out = Snapshot::new();
    let walk = walkdir::WalkDir::new(root)
        .follow_links(false)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| !excluded.iter().any(|x| e.path() == x));
    for item in walk {
        let item = match item {
            Ok(i) => i,
            Err(e) if e.io_error().map(|io| io.kind()) == Some(io::ErrorKind::PermissionDenied) => continue,
            Err(e) if e.io_error().map(|io| io.kind()) == Some(io::ErrorKind::NotFound) => continue,
            Err(e) => return Err(io::Error::other(e)),
        };
        let meta = match item.path().symlink_metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let Ok(rel) = item.path().strip_prefix(root) else {
            continue;
        };
        out.insert(rel.to_path_buf(), entry_of(item.path(), &meta));
    }
    Ok(out)
}

fn entry_of(path: &Path, meta: &std::fs::Metadata) -> Entry {
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        Kind::Dir
    } else if ft.is_file() {
        Kind::File
    } else if ft.is_symlink() {
        Kind::Symlink
    } else {
        Kind::Other
    };
    Entry {
        kind,
        mode: meta.mode(),
        uid: meta.uid(),
        gid: meta.gid(),
        size: if kind == Kind::Dir { 0 } else { meta.size() },
        mtime: meta.mtime(),
        mtime_nsec: meta.mtime_nsec(),
        ino: meta.ino(),
        link: if kind == Kind::Symlink {
            std::fs::read_link(path).ok()
        } else {
            None
        },
    }
}

/// What changed between two snapshots.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Added or changed paths, parents before children.
    pub changed: Vec<PathBuf>,
    /// Deleted paths; only the top-most of a deleted subtree.
    pub deleted: Vec<PathBuf>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.deleted.is_empty()
    }
}

/// The difference between `before` and `after`.
pub fn diff(before: &Snapshot, after: &Snapshot) -> Changes {
    let mut changes = Changes::default();
    for (path, entry) in after {
        if before.get(path) != Some(entry) {
            changes.changed.push(path.clone());
        }
    }
    for path in before.keys() {
        if after.contains_key(path) {
            continue;
        }
        // A parent that is gone too (or replaced by a non-directory) covers this path.
        let covered = path
            .ancestors()
            .skip(1)
            .take_while(|a| !a.as_os_str().is_empty())
            .any(|a| before.contains_key(a) && after.get(a).is_none_or(|e| e.kind != Kind::Dir));
        if !covered {
            changes.deleted.push(path.clone());
        }
    }
    changes
}

/// A written layer: the gzip file and its digests.
#[derive(Debug, Clone)]
pub struct WrittenLayer {
    pub path: PathBuf,
    /// `sha256:` of the compressed bytes (the blob digest).
    pub digest: String,
    /// `sha256:` of the uncompressed tar (the config's diff_id).
    pub diff_id: String,
    pub size: u64,
    pub entries: usize,
}

struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hashing<W: Write>(inner: W) -> HashingWriter<W> {
    HashingWriter {
        inner,
        hash: Sha256::new(),
        written: 0,
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Writes the layer of `changes` (read from under `root`) to `out` as a gzip-compressed tar.
pub fn write_layer(root: &Path, changes: &Changes, out: &Path) -> io::Result<WrittenLayer> {
    let file = hashing(File::create(out)?);
    let gz = GzEncoder::new(file, Compression::fast());
    let mut tar = tar::Builder::new(hashing(gz));
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);
    let mut entries = 0;
    for path in &changes.deleted {
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::other(format!("cannot whiteout {}", path.display())))?;
        let mut wh_name = std::ffi::OsString::from(".wh.");
        wh_name.push(name);
        let wh = path.with_file_name(wh_name);
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(0);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        tar.append_data(&mut header, &wh, io::empty())?;
        entries += 1;
    }
    for path in &changes.changed {
        let full = root.join(path);
        let meta = match full.symlink_metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let ft = meta.file_type();
        if !(ft.is_file() || ft.is_dir() || ft.is_symlink()) {
            continue;
        }
        if ft.is_dir() {
            let mut header = tar::Header::new_gnu();
            header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
            header.set_size(0);
            tar.append_data(&mut header, path, io::empty())?;
        } else {
            tar.append_path_with_name(&full, path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        }
        entries += 1;
    }
    let tar_hash = tar.into_inner()?;
    let diff_id = format!("sha256:{}", hex::encode(tar_hash.hash.finalize()));
    let mut file = tar_hash.inner.finish()?;
    file.flush()?;
    Ok(WrittenLayer {
        path: out.to_path_buf(),
        digest: format!("sha256:{}", hex::encode(file.hash.finalize())),
        diff_id,
        size: file.written,
        entries,
    })
}

/// Unpacks a gzip-compressed (or plain) layer tar into `dest`, applying whiteouts, keeping
/// ownership when run as root.
pub fn unpack_layer(layer: &[u8], dest: &Path) -> io::Result<()> {
    unpack_layer_where(layer, dest, true, |_| true)
}

/// [`unpack_layer`] of the entries (and whiteouts) whose path in the image, relative to its root,
/// `wanted` accepts; owners kept only with `keep_owners`.
pub fn unpack_layer_where(
    layer: &[u8],
    dest: &Path,
    keep_owners: bool,
    wanted: impl Fn(&Path) -> bool,
) -> io::Result<()> {
    let reader: Box<dyn io::Read + '_> = if layer.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(layer))
    } else {
        Box::new(layer)
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(keep_owners);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let relative: PathBuf = path
            .components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .collect();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some(name) = name
            && let Some(target) = name.strip_prefix(".wh.")
        {
            let parent_rel = relative.parent().unwrap_or(Path::new(""));
            let parent = safe_join(dest, path.parent().unwrap_or(Path::new("")))?;
            if target == ".wh..opq" {
                if wanted(parent_rel)
                    && let Ok(rd) = std::fs::read_dir(&parent)
                {
                    for child in rd.flatten() {
                        remove_any(&child.path())?;
                    }
                }
            } else if wanted(&parent_rel.join(target)) {
                remove_any(&parent.join(target))?;
            }
            continue;
        }
        if !wanted(&relative) {
            continue;
        }
        // A directory entry over an existing non-directory, or the reverse, replaces it.
        if let Ok(full) = safe_join(dest, &path)
            && let Ok(existing) = full.symlink_metadata()
            && (existing.is_dir() != entry.header().entry_type().is_dir())
        {
            remove_any(&full)?;
        }
        entry.unpack_in(dest)?;
    }
    Ok(())
}

fn safe_join(dest: &Path, rel: &Path) -> io::Result<PathBuf> {
    let mut out = dest.to_path_buf();
    for c in rel.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::CurDir | std::path::Component::RootDir => {}
            _ => {
                return Err(io::Error::other(format!(
                    "unsafe path in layer: {}",
                    rel.display()
                )));
            }
        }
    }
    Ok(out)
}

fn remove_any(path: &Path) -> io::Result<()> {
    match path.symlink_metadata() {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_has_changes_and_whiteouts_and_round_trips() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("keep/sub")).unwrap();
        std::fs::create_dir_all(r.join("gone/deep")).unwrap();
        std::fs::create_dir_all(r.join("proc/1")).unwrap();
        std::fs::write(r.join("keep/a"), "a").unwrap();
        std::fs::write(r.join("keep/b"), "b").unwrap();
        std::fs::write(r.join("gone/deep/x"), "x").unwrap();
        let excluded = vec![PathBuf::from("/proc")];
        let before = snapshot(r, &excluded).unwrap();
        assert!(!before.contains_key(Path::new("proc")));

        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(r.join("keep/a"), "changed").unwrap();
        std::fs::remove_file(r.join("keep/b")).unwrap();
        std::fs::remove_dir_all(r.join("gone")).unwrap();
        std::fs::write(r.join("keep/sub/new"), "new").unwrap();
        std::os::unix::fs::symlink("a", r.join("keep/link")).unwrap();
        std::fs::write(r.join("proc/1/ignored"), "i").unwrap();
        let after = snapshot(r, &excluded).unwrap();
        let changes = diff(&before, &after);
        assert_eq!(
            changes.deleted,
            vec![PathBuf::from("gone"), PathBuf::from("keep/b")]
        );
        assert!(changes.changed.contains(&PathBuf::from("keep/a")));
        assert!(changes.changed.contains(&PathBuf::from("keep/sub/new")));
        assert!(!changes.changed.iter().any(|p| p.starts_with("proc")));
        assert!(!changes.changed.contains(&PathBuf::from("keep/sub/..")));

        let out = tempfile::tempdir().unwrap();
        let layer = write_layer(r, &changes, &out.path().join("layer.tar.gz")).unwrap();
        let bytes = std::fs::read(&layer.path).unwrap();
        assert_eq!(sha256_digest(&bytes), layer.digest);
        assert_eq!(bytes.len() as u64, layer.size);

        // Apply it over the "before" state.
        let base = tempfile::tempdir().unwrap();
        let b = base.path();
        std::fs::create_dir_all(b.join("keep/sub")).unwrap();
        std::fs::create_dir_all(b.join("gone/deep")).unwrap();
        std::fs::write(b.join("keep/a"), "a").unwrap();
        std::fs::write(b.join("keep/b"), "b").unwrap();
        unpack_layer(&bytes, b).unwrap();
        assert_eq!(std::fs::read_to_string(b.join("keep/a")).unwrap(), "changed");
        assert_eq!(std::fs::read_to_string(b.join("keep/sub/new")).unwrap(), "new");
        assert_eq!(
            std::fs::read_link(b.join("keep/link")).unwrap(),
            PathBuf::from("a")
        );
        assert!(!b.join("keep/b").exists());
        assert!(!b.join("gone").exists());
    }

    #[test]
    fn hostile_layer_paths_are_refused() {
        let mut data = Vec::new();
        {
            let mut t = tar::Builder::new(&mut data);
            let mut h = tar::Header::new_gnu();
            h.set_size(0);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            // Whiteout that would leave the destination.
            let name = b"../.wh.etc";
            h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
            h.set_cksum();
            t.append(&h, io::empty()).unwrap();
            t.finish().unwrap();
        }
        let dest = tempfile::tempdir().unwrap();
        assert!(unpack_layer(&data, dest.path()).is_err());
    }
}
