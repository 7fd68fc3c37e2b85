//! Which pushed refs start a build. A trigger's `refs` may name several branches and globs
//! (`main`, `release/*`); a pattern starting with `refs/` matches full refs, which is how tags are
//! asked for (`refs/tags/*`, `refs/tags/v*`). Without `refs`, the BuildConfig's `source.git.ref`
//! decides; without that, the repository's default branch (as the payload reports it, else `main`
//! or `master`).
//!
//! Globs: `*` matches within one path segment, `**` across segments, `?` one character.

/// The patterns that decide for a trigger with `refs`, on a BuildConfig whose source has `git_ref`.
pub fn effective_patterns(
    refs: &[String],
    source_ref: Option<&str>,
    default_branch: Option<&str>,
) -> Vec<String> {
    if !refs.is_empty() {
        return refs.to_vec();
    }
    if let Some(r) = source_ref.filter(|r| !r.is_empty()) {
        return vec![r.to_string()];
    }
    match default_branch.filter(|b| !b.is_empty()) {
        Some(branch) => vec![branch.to_string()],
        None => vec!["main".into(), "master".into()],
    }
}

/// Whether the full ref `git_ref` matches one of `patterns`.
pub fn matches(patterns: &[String], git_ref: &str) -> bool {
    patterns.iter().any(|pattern| {
        let pattern = pattern.trim();
        if pattern.starts_with("refs/") {
            glob(pattern, git_ref)
        } else {
            // A branch pattern: only branches, never tags.
            git_ref
                .strip_prefix("refs/heads/")
                .is_some_and(|branch| glob(pattern, branch))
        }
    })
}

/// Shell-like glob over `/`-separated names, memoised so that no pattern takes more than
/// (pattern length × text length) steps.
fn glob(pattern: &str, text: &str) -> bool {
    struct Glob<'a> {
        p: &'a [u8],
        t: &'a [u8],
        failed: std::collections::HashSet<(usize, usize)>,
    }
    impl Glob<'_> {
        fn at(&mut self, i: usize, j: usize) -> bool {
            if self.failed.contains(&(i, j)) {
                return false;
            }
            let (p, t) = (self.p, self.t);
            let matched = match p.get(i) {
                None => j == t.len(),
                Some(b'*') if p.get(i + 1) == Some(&b'*') => (j..=t.len()).any(|k| self.at(i + 2, k)),
                Some(b'*') => {
                    let end = t[j..].iter().position(|&c| c == b'/').map_or(t.len(), |n| j + n);
                    (j..=end).any(|k| self.at(i + 1, k))
                }
                Some(b'?') => t.get(j).is_some_and(|&c| c != b'/') && self.at(i + 1, j + 1),
                Some(c) => t.get(j) == Some(c) && self.at(i + 1, j + 1),
            };
            if !matched {
                self.failed.insert((i, j));
            }
            matched
        }
    }
    Glob {
        p: pattern.as_bytes(),
        t: text.as_bytes(),
        failed: Default::default(),
    }
    .at(0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(patterns: &[&str]) -> Vec<String> {
        patterns.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn branch_names_and_globs() {
        let patterns = p(&["main", "release/*"]);
        assert!(matches(&patterns, "refs/heads/main"));
        assert!(matches(&patterns, "refs/heads/release/1.2"));
        assert!(!matches(&patterns, "refs/heads/release/1.2/hotfix"));
        assert!(!matches(&patterns, "refs/heads/mainline"));
        assert!(!matches(&patterns, "refs/heads/feature/x"));
        assert!(matches(&p(&["release/**"]), "refs/heads/release/1.2/hotfix"));
        assert!(matches(&p(&["v?"]), "refs/heads/v2"));
    }

    #[test]
    fn tags_only_when_asked() {
        assert!(!matches(&p(&["*"]), "refs/tags/v1"));
        assert!(!matches(&p(&["v1"]), "refs/tags/v1"));
        assert!(matches(&p(&["refs/tags/*"]), "refs/tags/v1"));
        assert!(matches(&p(&["refs/tags/v*"]), "refs/tags/v1.0"));
        assert!(!matches(&p(&["refs/tags/v*"]), "refs/heads/v1.0"));
        assert!(matches(&p(&["*"]), "refs/heads/anything"));
    }

    #[test]
    fn without_refs_the_source_ref_then_the_default_branch_decide() {
        assert_eq!(
            effective_patterns(&p(&["a", "b"]), Some("c"), Some("d")),
            p(&["a", "b"])
        );
        assert_eq!(effective_patterns(&[], Some("dev"), Some("main")), p(&["dev"]));
        assert_eq!(effective_patterns(&[], None, Some("trunk")), p(&["trunk"]));
        assert_eq!(effective_patterns(&[], Some(""), None), p(&["main", "master"]));
    }

    #[test]
    fn pathological_patterns_finish() {
        let pattern = "**".repeat(8) + "x";
        assert!(!matches(&[pattern], &format!("refs/heads/{}", "a/".repeat(20))));
    }
}
