//! `place-tools`: copy this binary into a shared volume so that any builder image can run it.

use std::fs::{self, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The name the binary gets in the shared directory.
pub const TOOL_NAME: &str = "slipway-builder";

/// Copies the running executable to `dir/slipway-builder` (mode 0755), creating `dir` if needed.
pub fn place_tools(dir: &Path) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the path of the running slipway-builder")?;
    install_file(&exe, dir, TOOL_NAME)
}

/// Copies `src` to `dir/name` atomically: the bytes go to a temporary file in `dir`, which is then
/// renamed over the target, so a reader never sees a half-written executable.
pub fn install_file(src: &Path, dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create directory {}", dir.display()))?;
    let target = dir.join(name);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(".{name}.tmp-{}-{nanos}", std::process::id()));
    let copy = || -> io::Result<()> {
        let mut input = fs::File::open(src)?;
        let mut output = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .open(&tmp)?;
        io::copy(&mut input, &mut output)?;
        // The umask may have removed bits from the mode given at creation.
        output.set_permissions(Permissions::from_mode(0o755))?;
        output.sync_all()?;
        drop(output);
        fs::rename(&tmp, &target)
    };
    if let Err(e) = copy() {
        let _ = fs::remove_file(&tmp);
        return Err(e)
            .with_context(|| format!("cannot write {} (is the directory writable?)", target.display()));
    }
    Ok(target)
}
