//! Image platforms (`linux/amd64`, `linux/arm/v7`) in OCI's names, and choosing the entry of an
//! image index (OCI index or Docker manifest list) that a platform runs — what the builder does
//! with a multi-arch builder image, and what an ImageStream import does in `Legacy` mode.
//!
//! The builder and the operator both run on the platform they work for (the build pod on its
//! node, the operator on the cluster), so [`Platform::current`] is derived from the running
//! binary: Rust's target names mapped to OCI's (x86_64 → amd64, aarch64 → arm64, ...).

use serde_json::Value;

/// An OCI platform: `os`, `architecture` and, where it matters, `variant`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// Rust's `std::env::consts::OS` in OCI's (Go's `GOOS`) names.
pub fn oci_os(os: &str) -> &str {
    match os {
        "macos" => "darwin",
        other => other,
    }
}

/// Rust's `std::env::consts::ARCH` in OCI's (Go's `GOARCH`) names, and the variant OCI gives it
/// (32-bit arm: `v7`, what Rust's `armv7` targets are; OCI's arm64 `v8` is implied).
/// `little_endian` tells the mips and powerpc pairs apart.
pub fn oci_architecture(arch: &str, little_endian: bool) -> (&str, Option<&'static str>) {
    match (arch, little_endian) {
        ("x86_64", _) => ("amd64", None),
        ("x86", _) => ("386", None),
        ("aarch64", _) => ("arm64", None),
        ("arm", _) => ("arm", Some("v7")),
        ("powerpc64", true) => ("ppc64le", None),
        ("powerpc64", false) => ("ppc64", None),
        ("mips64", true) => ("mips64le", None),
        ("mips", true) => ("mipsle", None),
        ("loongarch64", _) => ("loong64", None),
        // s390x, riscv64, mips64 (big-endian), mips: the same names.
        (other, _) => (other, None),
    }
}

impl Platform {
    /// The platform this binary runs on.
    pub fn current() -> Self {
        let (architecture, variant) =
            oci_architecture(std::env::consts::ARCH, cfg!(target_endian = "little"));
        Self {
            os: oci_os(std::env::consts::OS).to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    /// The platform of an index entry's `platform` object; None without os or architecture.
    pub fn of_entry(entry: &Value) -> Option<Self> {
        let platform = entry.get("platform")?;
        let text = |key: &str| {
            platform
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Some(Self {
            os: text("os")?,
            architecture: text("architecture")?,
            variant: text("variant"),
        })
    }

    /// The variants this platform runs, best first: its own (OCI's default when it names none),
    /// and the older arm ones an arm CPU runs too. amd64's micro-architecture levels (v2..v4)
    /// are not run: which the CPU has is not known here, and v1 runs everywhere.
    fn runs_variants(&self) -> Vec<&str> {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            ("arm64", None | Some("v8")) => vec!["v8"],
            ("amd64", None | Some("v1")) => vec!["v1"],
            ("arm", Some("v8")) => vec!["v8", "v7", "v6", "v5"],
            ("arm", None | Some("v7")) => vec!["v7", "v6", "v5"],
            ("arm", Some("v6")) => vec!["v6", "v5"],
            (_, Some(variant)) => vec![variant],
            (_, None) => vec![""],
        }
    }

    /// An entry's variant as compared: OCI's default for the architecture when it names none.
    fn normalized_variant(&self) -> &str {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            ("arm64", None) => "v8",
            ("amd64", None) => "v1",
            ("arm", None) => "v7",
            (_, variant) => variant.unwrap_or(""),
        }
    }
}

/// Whether a manifest document (as JSON) is an image index: an OCI index, a Docker manifest
/// list, or a document with `manifests` and no `layers` (an index whose media type is left out).
pub fn is_index(manifest: &Value) -> bool {
    let media_type = manifest.get("mediaType").and_then(Value::as_str).unwrap_or("");
    media_type == INDEX_MEDIA_TYPES[0]
        || media_type == INDEX_MEDIA_TYPES[1]
        || (manifest.get("manifests").is_some() && manifest.get("layers").is_none())
}

/// The media types of image indexes: OCI's, Docker's manifest list.
pub const INDEX_MEDIA_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// An index has no image for the wanted platform.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the image index has no {wanted} image; it has {}", describe(.available))]
pub struct NoMatchingPlatform {
    pub wanted: Platform,
    /// The platforms the index has images for, in its order (attestations left out).
    pub available: Vec<Platform>,
}

fn describe(available: &[Platform]) -> String {
    if available.is_empty() {
        return "no entry with a platform".to_owned();
    }
    available
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The digest of the entry of `index` that `wanted` runs: the same os and architecture and the
/// best variant it runs (its own first). Entries that are not images (BuildKit's attestation
/// manifests, platform `unknown/unknown`) are never chosen nor listed.
pub fn select(index: &Value, wanted: &Platform) -> Result<String, NoMatchingPlatform> {
    let entries: Vec<(Platform, &str)> = index
        .get("manifests")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|entry| {
            entry
                .pointer("/annotations/vnd.docker.reference.type")
                .and_then(Value::as_str)
                != Some("attestation-manifest")
        })
        .filter_map(|entry| {
            let platform = Platform::of_entry(entry)?;
            let digest = entry.get("digest").and_then(Value::as_str)?;
            (platform.os != "unknown").then_some((platform, digest))
        })
        .collect();
    for variant in wanted.runs_variants() {
        if let Some((_, digest)) = entries.iter().find(|(p, _)| {
            p.os == wanted.os && p.architecture == wanted.architecture && p.normalized_variant() == variant
        }) {
            return Ok((*digest).to_owned());
        }
    }
    let mut available: Vec<Platform> = Vec::new();
    for (platform, _) in entries {
        if !available.contains(&platform) {
            available.push(platform);
        }
    }
    Err(NoMatchingPlatform {
        wanted: wanted.clone(),
        available,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn platform(text: &str) -> Platform {
        let mut parts = text.split('/');
        Platform {
            os: parts.next().unwrap().to_owned(),
            architecture: parts.next().unwrap().to_owned(),
            variant: parts.next().map(str::to_owned),
        }
    }

    fn index(entries: &[(&str, &str)]) -> Value {
        let manifests: Vec<Value> = entries
            .iter()
            .map(|(digest, p)| {
                let p = platform(p);
                let mut entry = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": digest, "size": 1,
                    "platform": {"os": p.os, "architecture": p.architecture}});
                if let Some(v) = p.variant {
                    entry["platform"]["variant"] = json!(v);
                }
                entry
            })
            .collect();
        json!({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPES[0], "manifests": manifests})
    }

    #[test]
    fn rust_targets_map_to_oci_names() {
        assert_eq!(oci_architecture("x86_64", true), ("amd64", None));
        assert_eq!(oci_architecture("aarch64", true), ("arm64", None));
        assert_eq!(oci_architecture("arm", true), ("arm", Some("v7")));
        assert_eq!(oci_architecture("x86", true), ("386", None));
        assert_eq!(oci_architecture("powerpc64", true), ("ppc64le", None));
        assert_eq!(oci_architecture("powerpc64", false), ("ppc64", None));
        assert_eq!(oci_architecture("s390x", false), ("s390x", None));
        assert_eq!(oci_architecture("riscv64", true), ("riscv64", None));
        assert_eq!(oci_architecture("loongarch64", true), ("loong64", None));
        assert_eq!(oci_os("linux"), "linux");
        assert_eq!(oci_os("macos"), "darwin");
        // This machine's, as the tests that build images on it assume.
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        assert_eq!(Platform::current().to_string(), "linux/amd64");
    }

    #[test]
    fn the_entry_of_the_platform_is_chosen() {
        let i = index(&[
            ("sha256:arm", "linux/arm64/v8"),
            ("sha256:amd", "linux/amd64"),
            ("sha256:s", "linux/s390x"),
        ]);
        assert_eq!(select(&i, &platform("linux/amd64")).unwrap(), "sha256:amd");
        // arm64 with and without OCI's implied v8.
        assert_eq!(select(&i, &platform("linux/arm64")).unwrap(), "sha256:arm");
        let i = index(&[("sha256:arm", "linux/arm64")]);
        assert_eq!(select(&i, &platform("linux/arm64/v8")).unwrap(), "sha256:arm");
        // 32-bit arm: its own variant first, then older ones; never a newer one.
        let i = index(&[("sha256:v6", "linux/arm/v6"), ("sha256:v7", "linux/arm/v7")]);
        assert_eq!(select(&i, &platform("linux/arm/v7")).unwrap(), "sha256:v7");
        assert_eq!(select(&i, &platform("linux/arm/v6")).unwrap(), "sha256:v6");
        let i = index(&[("sha256:v7", "linux/arm/v7")]);
        assert!(select(&i, &platform("linux/arm/v6")).is_err());
        // amd64's micro-architecture levels are not assumed.
        let i = index(&[("sha256:v3", "linux/amd64/v3"), ("sha256:v1", "linux/amd64")]);
        assert_eq!(select(&i, &platform("linux/amd64")).unwrap(), "sha256:v1");
        // The os matters.
        let i = index(&[("sha256:win", "windows/amd64")]);
        assert!(select(&i, &platform("linux/amd64")).is_err());
    }

    #[test]
    fn a_missing_platform_names_the_ones_there_are() {
        let mut i = index(&[
            ("sha256:a", "linux/arm64"),
            ("sha256:s", "linux/s390x"),
            ("sha256:b", "linux/arm64"),
        ]);
        // A BuildKit attestation: not an image, not listed.
        i["manifests"].as_array_mut().unwrap().push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:att", "size": 1,
            "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": "sha256:a"},
            "platform": {"os": "unknown", "architecture": "unknown"}}));
        let e = select(&i, &platform("linux/amd64")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the image index has no linux/amd64 image; it has linux/arm64, linux/s390x"
        );
        let e = select(
            &json!({"manifests": [{"digest": "sha256:x"}]}),
            &platform("linux/amd64"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the image index has no linux/amd64 image; it has no entry with a platform"
        );
        // Hostile shapes are errors, not panics.
        for bad in [
            json!(null),
            json!({"manifests": 7}),
            json!({"manifests": [1, "x", {"platform": 3}]}),
        ] {
            assert!(select(&bad, &platform("linux/amd64")).is_err());
        }
    }

    #[test]
    fn indexes_are_recognised() {
        assert!(is_index(
            &json!({"mediaType": INDEX_MEDIA_TYPES[1], "manifests": []})
        ));
        assert!(is_index(&json!({"schemaVersion": 2, "manifests": []})));
        assert!(!is_index(
            &json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []})
        ));
    }
}
