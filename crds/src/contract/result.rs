//! The result a build stage reports through the pod's termination message: written by
//! `slipway-builder`, read by the operator's build controller, one type for both.
//!
//! Kubernetes keeps at most 4096 bytes of a container's termination message, so the document is
//! always cut down to fit before it is written: the log tail goes first, then the message.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The largest result document written, in bytes: strictly under Kubernetes' 4096-byte limit.
pub const MAX_RESULT_BYTES: usize = 4095;

/// How many bytes of a commit message are recorded at most (before the size limit applies).
pub const MAX_COMMIT_MESSAGE_BYTES: usize = 4096;

/// How many bytes one log line may take in `logTail`.
const MAX_LOG_LINE_BYTES: usize = 300;

/// Why a stage failed. The names are OpenShift's build status reasons.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureReason {
    /// The source could not be fetched: bad URL, unreachable host, unknown ref, rejected
    /// credentials, untrusted host key.
    FetchSourceFailed,
    /// The context directory does not exist in the source, is not a directory, or leaves it.
    InvalidContextDirectory,
    /// The builder (or base) image's manifest or config could not be read from its registry.
    PullBuilderImageFailed,
    /// The S2I scripts are missing or the build's input is unusable.
    GenericS2IBuildFailed,
    /// The `assemble` script failed.
    AssembleFailed,
    /// The post-commit hook failed.
    PostCommitHookFailed,
    /// `buildah build` failed.
    DockerBuildFailed,
    /// Pushing the blobs or the manifest failed.
    PushImageToRegistryFailed,
    /// A build input (a Secret or ConfigMap of `source.secrets`/`source.configMaps`) is missing
    /// or cannot be placed at its destination.
    MissingBuildInput,
    /// A binary build's upload did not arrive (no client attached in time, or it stalled).
    BinaryInputNotReceived,
    /// A binary build's upload stopped before its end (the client was interrupted).
    BinaryInputIncomplete,
    /// A binary build's upload is larger than the operator allows (as sent or as unpacked).
    BinaryInputTooLarge,
    /// A binary build's upload is not what was promised: not a tar or tar.gz archive, an entry
    /// that leaves the source, not Slipway's upload format.
    InvalidBinaryInput,
    /// The Build itself (the `BUILD` variable) could not be read or asks for something the
    /// builder cannot do.
    InvalidBuild,
    /// A reason written by another version of the builder; the build controller reports it as a
    /// generic failure with the builder's message.
    #[serde(other)]
    Unknown,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FetchSourceFailed => "FetchSourceFailed",
            Self::InvalidContextDirectory => "InvalidContextDirectory",
            Self::PullBuilderImageFailed => "PullBuilderImageFailed",
            Self::GenericS2IBuildFailed => "GenericS2IBuildFailed",
            Self::AssembleFailed => "AssembleFailed",
            Self::PostCommitHookFailed => "PostCommitHookFailed",
            Self::DockerBuildFailed => "DockerBuildFailed",
            Self::PushImageToRegistryFailed => "PushImageToRegistryFailed",
            Self::MissingBuildInput => "MissingBuildInput",
            Self::BinaryInputNotReceived => "BinaryInputNotReceived",
            Self::BinaryInputIncomplete => "BinaryInputIncomplete",
            Self::BinaryInputTooLarge => "BinaryInputTooLarge",
            Self::InvalidBinaryInput => "InvalidBinaryInput",
            Self::InvalidBuild => "InvalidBuild",
            Self::Unknown => "GenericBuildFailed",
        }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person of a commit (the Build's own type, so the operator records it as it is).
pub type Person = crate::build::SourceControlUser;

/// What one stage of the builder (fetch, s2i, docker) reports.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StageResult {
    /// The stage: `fetch`, `s2i` or `docker`.
    #[serde(default)]
    pub stage: String,
    #[serde(default)]
    pub success: bool,
    /// On failure, the OpenShift reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<FailureReason>,
    /// The commit id that was checked out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The commit's date (RFC 3339), for the `io.openshift.build.commit.date` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<Person>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committer: Option<Person>,
    /// On success the commit message; on failure what went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The pushed image: `registry/repository:tag`.
    #[serde(default, alias = "imageReference", skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The pushed manifest's digest (`sha256:...`).
    #[serde(default, alias = "imageDigest", skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Things that went wrong without failing the build (e.g. unusable previous artifacts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Milliseconds each step took.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub durations: BTreeMap<String, u64>,
    /// The last lines of the stage's log, oldest first (failures only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
}

impl StageResult {
    /// A successful result with nothing recorded yet.
    pub fn success(stage: &str) -> Self {
        Self {
            stage: stage.to_owned(),
            success: true,
            ..Self::default()
        }
    }

    /// A failed result.
    pub fn failure(stage: &str, reason: FailureReason, message: &str, log_tail: Vec<String>) -> Self {
        Self {
            stage: stage.to_owned(),
            success: false,
            reason: Some(reason),
            message: Some(message.to_owned()),
            log_tail,
            ..Self::default()
        }
    }

    /// The JSON document, cut down so that it is at most [`MAX_RESULT_BYTES`] long: log lines are
    /// shortened and the oldest dropped, then the message is shortened, then the other strings.
    pub fn to_bounded_json(&self) -> String {
        let mut r = self.clone();
        for line in r.log_tail.iter_mut().chain(r.warnings.iter_mut()) {
            truncate_in_place(line, MAX_LOG_LINE_BYTES);
        }
        r.warnings.truncate(4);
        if let Some(m) = &mut r.message {
            truncate_in_place(m, MAX_COMMIT_MESSAGE_BYTES);
        }
        if let Some(json) = fits(&r) {
            return json;
        }
        // Keep room for some log lines next to a long message.
        if !r.log_tail.is_empty()
            && let Some(m) = &mut r.message
        {
            truncate_in_place(m, 2048);
        }
        while !r.log_tail.is_empty() {
            if let Some(json) = fits(&r) {
                return json;
            }
            r.log_tail.remove(0);
        }
        if let Some(message) = r.message.clone() {
            // The longest prefix of the message that fits.
            let (mut lo, mut hi) = (0usize, message.len());
            while lo < hi {
                let mid = (lo + hi).div_ceil(2);
                r.message = Some(truncated(&message, mid));
                if fits(&r).is_some() {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            r.message = Some(truncated(&message, lo));
            if let Some(json) = fits(&r) {
                return json;
            }
        }
        for p in [&mut r.author, &mut r.committer].into_iter().flatten() {
            truncate_in_place(&mut p.name, 128);
            truncate_in_place(&mut p.email, 128);
        }
        if let Some(c) = &mut r.commit {
            truncate_in_place(c, 128);
        }
        truncate_in_place(&mut r.stage, 64);
        r.warnings.clear();
        if let Some(json) = fits(&r) {
            return json;
        }
        // Cannot happen with the limits above, but never write more than the limit.
        let minimal = StageResult {
            stage: r.stage,
            success: r.success,
            reason: r.reason,
            ..Self::default()
        };
        serde_json::to_string(&minimal).unwrap_or_else(|_| String::from("{}"))
    }
}

fn fits(r: &StageResult) -> Option<String> {
    serde_json::to_string(r)
        .ok()
        .filter(|s| s.len() <= MAX_RESULT_BYTES)
}

/// `s` cut to at most `max` bytes at a character boundary, marked with `…` when it was cut.
pub fn truncated(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    const MARK: &str = "…";
    let mut end = max.saturating_sub(MARK.len());
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    if max < MARK.len() {
        return String::new();
    }
    format!("{}{MARK}", &s[..end])
}

fn truncate_in_place(s: &mut String, max: usize) {
    if s.len() > max {
        *s = truncated(s, max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_shape() {
        let mut r = StageResult::success("fetch");
        r.commit = Some("abc".into());
        r.author = Some(Person {
            name: "A".into(),
            email: "a@x".into(),
        });
        r.durations.insert("fetch".into(), 12);
        let v: serde_json::Value = serde_json::from_str(&r.to_bounded_json()).unwrap();
        assert_eq!(v["stage"], "fetch");
        assert_eq!(v["success"], true);
        assert_eq!(v["author"]["email"], "a@x");
        assert_eq!(v["durations"]["fetch"], 12);
        assert!(v.get("reason").is_none());
        assert!(v.get("logTail").is_none());
    }

    #[test]
    fn failure_shape() {
        let r = StageResult::failure(
            "fetch",
            FailureReason::InvalidContextDirectory,
            "nope",
            vec!["l".into()],
        );
        let v: serde_json::Value = serde_json::from_str(&r.to_bounded_json()).unwrap();
        assert_eq!(v["reason"], "InvalidContextDirectory");
        assert_eq!(v["success"], false);
        assert_eq!(v["logTail"][0], "l");
    }

    #[test]
    fn huge_message_is_cut() {
        let mut r = StageResult::success("fetch");
        r.message = Some("é\"\n".repeat(100_000));
        r.commit = Some("a".repeat(40));
        let json = r.to_bounded_json();
        assert!(json.len() <= MAX_RESULT_BYTES, "{}", json.len());
        let back: StageResult = serde_json::from_str(&json).unwrap();
        assert!(back.message.unwrap().ends_with('…'));
        assert_eq!(back.commit.unwrap().len(), 40);
        // Not cut more than needed.
        assert!(json.len() > MAX_RESULT_BYTES - 64, "{}", json.len());
    }

    #[test]
    fn log_tail_dropped_oldest_first() {
        let lines: Vec<String> = (0..200).map(|i| format!("line {i} {}", "x".repeat(50))).collect();
        let r = StageResult::failure(
            "fetch",
            FailureReason::FetchSourceFailed,
            &"m".repeat(5000),
            lines,
        );
        let json = r.to_bounded_json();
        assert!(json.len() <= MAX_RESULT_BYTES);
        let back: StageResult = serde_json::from_str(&json).unwrap();
        assert!(back.log_tail.last().unwrap().starts_with("line 199 "));
        assert!(!back.log_tail.is_empty());
        assert!(back.message.unwrap().len() <= 2048);
    }

    #[test]
    fn control_characters_do_not_break_the_limit() {
        let mut r = StageResult::failure("fetch", FailureReason::FetchSourceFailed, "", vec![]);
        r.message = Some("\u{1}".repeat(4000));
        r.author = Some(Person {
            name: "\u{2}".repeat(4000),
            email: "e".repeat(4000),
        });
        let json = r.to_bounded_json();
        assert!(json.len() <= MAX_RESULT_BYTES, "{}", json.len());
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncated("abc", 3), "abc");
        assert_eq!(truncated("ééé", 5), "é…");
        assert_eq!(truncated("ééé", 4), "…");
        assert_eq!(truncated("ééé", 6), "ééé");
        assert_eq!(truncated("éééé", 7), "éé…");
        assert_eq!(truncated("abcdef", 2), "");
    }
}
