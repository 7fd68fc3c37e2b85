//! Progress lines on stdout (`[fetch] ...`), with every known secret masked, and the last lines
//! kept for the result's `logTail`.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

/// How many lines are kept for the log tail.
const TAIL_LINES: usize = 20;

/// What replaces a secret.
pub const MASK: &str = "***";

/// Secrets shorter than this are not searched for (masking single letters would garble logs).
const MIN_SECRET_LEN: usize = 3;

/// A stage's log.
pub struct Progress {
    stage: String,
    inner: Mutex<Inner>,
}

struct Inner {
    secrets: Vec<String>,
    tail: VecDeque<String>,
    echo: bool,
}

impl Progress {
    /// A log that prints to stdout.
    pub fn new(stage: &str) -> Self {
        Self::with_echo(stage, true)
    }

    /// A log that only keeps lines (for tests).
    pub fn quiet(stage: &str) -> Self {
        Self::with_echo(stage, false)
    }

    fn with_echo(stage: &str, echo: bool) -> Self {
        Self {
            stage: stage.to_owned(),
            inner: Mutex::new(Inner {
                secrets: Vec::new(),
                tail: VecDeque::new(),
                echo,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a secret: it is masked in every line and in [`Progress::redact`]. Multi-line
    /// secrets (keys) are registered line by line too.
    pub fn add_secret(&self, secret: &str) {
        let mut inner = self.lock();
        let mut add = |s: &str| {
            let s = s.trim();
            if s.len() >= MIN_SECRET_LEN && !inner.secrets.iter().any(|x| x == s) {
                inner.secrets.push(s.to_owned());
            }
        };
        add(secret);
        if secret.contains('\n') {
            for line in secret.lines() {
                add(line);
            }
        }
        // Longest first, so a secret containing another is masked whole.
        inner.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// `text` with every registered secret masked.
    pub fn redact(&self, text: &str) -> String {
        redact_with(&self.lock().secrets, text)
    }

    /// Prints `[stage] message` and keeps it for the log tail.
    pub fn line(&self, message: impl AsRef<str>) {
        let mut inner = self.lock();
        let text = format!(
            "[{}] {}",
            self.stage,
            redact_with(&inner.secrets, message.as_ref())
        );
        if inner.echo {
            let mut out = std::io::stdout().lock();
            // A closed stdout must not fail the build.
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
        if inner.tail.len() == TAIL_LINES {
            inner.tail.pop_front();
        }
        inner.tail.push_back(text);
    }

    /// The last lines logged, oldest first.
    pub fn tail(&self) -> Vec<String> {
        self.lock().tail.iter().cloned().collect()
    }
}

fn redact_with(secrets: &[String], text: &str) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

/// A duration for humans: `0.42s`, `12.3s`, `2m05s`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 10.0 {
        format!("{secs:.2}s")
    } else if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = d.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_tail_kept() {
        let p = Progress::quiet("fetch");
        p.add_secret("hunter22");
        p.add_secret("ab"); // too short to mask
        p.add_secret("-----BEGIN KEY-----\nAAAAsecretline\n-----END KEY-----\n");
        p.line("password hunter22 and AAAAsecretline, ab");
        assert_eq!(p.tail(), vec!["[fetch] password *** and ***, ab".to_owned()]);
        assert_eq!(p.redact("xhunter22x"), "x***x");
        for i in 0..30 {
            p.line(format!("{i}"));
        }
        let tail = p.tail();
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!(tail.last().unwrap(), "[fetch] 29");
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(Duration::from_millis(420)), "0.42s");
        assert_eq!(format_duration(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m05s");
    }
}
