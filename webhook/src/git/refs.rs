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

/// One element of a compiled glob.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Token {
    /// This byte.
    Byte(u8),
    /// `?`: one byte other than `/`.
    One,
    /// `*`: any run of bytes without `/`.
    Star,
    /// `**`: any run of bytes.
    Stars,
}

/// The tokens of `pattern`, runs of stars collapsed (`***`, `**` `*`, `* **` all become one `**`;
/// `* *` one `*`), so that a pattern of stars alone is one token.
fn compile(pattern: &[u8]) -> Vec<Token> {
    let mut tokens: Vec<Token> = Vec::with_capacity(pattern.len());
    let mut i = 0;
    while i < pattern.len() {
        let token = match pattern[i] {
            b'*' if pattern.get(i + 1) == Some(&b'*') => {
                i += 1;
                Token::Stars
            }
            b'*' => Token::Star,
            b'?' => Token::One,
            c => Token::Byte(c),
        };
        i += 1;
        match (tokens.last_mut(), token) {
            (Some(last @ (Token::Star | Token::Stars)), Token::Stars) => *last = Token::Stars,
            (Some(Token::Star | Token::Stars), Token::Star) => {}
            _ => tokens.push(token),
        }
    }
    tokens
}

/// Shell-like glob over `/`-separated names, run as a set of states over the text (a Thompson
/// simulation of the pattern's automaton): no recursion and no backtracking, at most
/// (pattern length × text length) steps — fewer, as only live states are visited — and memory
/// linear in the pattern, whatever the pattern.
fn glob(pattern: &str, text: &str) -> bool {
    let tokens = compile(pattern.as_bytes());
    let mut states = States::new(tokens.len() + 1);
    let mut next = States::new(tokens.len() + 1);
    states.add(&tokens, 0);
    for &c in text.as_bytes() {
        next.clear();
        for &i in &states.live {
            let (stay, advance) = match tokens[i] {
                Token::Byte(b) => (false, b == c),
                Token::One => (false, c != b'/'),
                Token::Star => (c != b'/', false),
                Token::Stars => (true, false),
            };
            if stay {
                next.add(&tokens, i);
            }
            if advance {
                next.add(&tokens, i + 1);
            }
        }
        if next.live.is_empty() && !next.on[tokens.len()] {
            return false;
        }
        std::mem::swap(&mut states, &mut next);
    }
    states.on[tokens.len()]
}

/// The live states of a [`glob`]: state i means the first i tokens match the text read so far.
struct States {
    on: Vec<bool>,
    live: Vec<usize>,
}

impl States {
    fn new(n: usize) -> Self {
        Self {
            on: vec![false; n],
            live: Vec::new(),
        }
    }

    fn clear(&mut self) {
        for &i in &self.live {
            self.on[i] = false;
        }
        self.live.clear();
        if let Some(end) = self.on.last_mut() {
            *end = false;
        }
    }

    /// Adds state `i` and those reached from it by letting stars match nothing (a loop, not
    /// recursion; the end state, one past the last token, is never followed further).
    fn add(&mut self, tokens: &[Token], mut i: usize) {
        while !self.on[i] {
            self.on[i] = true;
            // The end state has no token; it is live but only the final check reads it.
            if i < tokens.len() {
                self.live.push(i);
            }
            match tokens.get(i) {
                Some(Token::Star | Token::Stars) => i += 1,
                _ => break,
            }
        }
    }
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

    #[test]
    fn stars_match_nothing_or_runs_within_their_bounds() {
        assert!(glob("a*", "a"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
        assert!(!glob("a*c", "ab/c"));
        assert!(glob("a**c", "ab/c"));
        assert!(glob("a/**/c", "a/x/y/c"));
        assert!(glob("a***c", "ab/c"), "three stars cross segments as two do");
        assert!(glob("a*?", "ab"));
        assert!(!glob("a?", "a/"));
        assert!(!glob("abc", "ab"));
        assert!(!glob("ab", "abc"));
    }

    /// Patterns that make a backtracking or recursive matcher take exponential time or overflow
    /// its stack, against long hostile refs: each finishes with the right answer.
    #[test]
    fn adversarial_patterns_against_long_refs() {
        let long_a = "a".repeat(20_000);
        // `*a*a*a...*b` against a run of `a`: no `b`, so no match.
        let star_a = "*a".repeat(2_000) + "*b";
        assert!(!glob(&star_a, &long_a));
        assert!(glob(&star_a, &(long_a.clone() + "b")));
        // `**a**a...` across segments.
        let stars_a = "**a".repeat(1_000) + "**b";
        let segmented = "a/".repeat(5_000);
        assert!(!glob(&stars_a, &segmented));
        assert!(glob(&stars_a, &(segmented.clone() + "b")));
        // A 60,000-character pattern (what the CRD refuses, should one get past it) against a ref
        // as long as a delivery can carry: one byte per step, no recursion.
        let huge = "*".repeat(60_000); // stars in pairs: one `**`
        assert!(matches(
            std::slice::from_ref(&huge),
            &format!("refs/heads/{long_a}")
        ));
        assert!(matches(&[huge], &format!("refs/heads/{long_a}/x")));
        let huge_stars = "*a".repeat(30_000);
        let short_a = "a".repeat(2_000);
        assert!(!matches(
            std::slice::from_ref(&huge_stars),
            &format!("refs/heads/{short_a}")
        ));
        assert!(!matches(&[huge_stars], &format!("refs/heads/{short_a}b")));
        let huge_literal = "a".repeat(60_000);
        assert!(!matches(
            std::slice::from_ref(&huge_literal),
            &format!("refs/heads/{long_a}")
        ));
        let exact = "a".repeat(60_000);
        assert!(matches(&[huge_literal], &format!("refs/heads/{exact}")));
        // `?` runs longer than the text.
        assert!(!glob(&"?".repeat(30_000), &long_a));
        assert!(glob(&"?".repeat(20_000), &long_a));
    }
}
