//! The result a build stage reports through the pod's termination message. The type is the
//! operator's and the builder's contract (`slipway_crds::contract::result`); this module writes it.

use std::io::Write;
use std::path::Path;

pub use slipway_crds::contract::result::*;

/// Writes the result, cut to the size limit, to `path` (normally `/dev/termination-log`).
pub fn write_result(path: &Path, result: &StageResult) -> std::io::Result<()> {
    let json = result.to_bounded_json();
    let mut f = std::fs::File::create(path)?;
    f.write_all(json.as_bytes())?;
    f.flush()
}
