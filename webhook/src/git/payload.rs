//! What a verified delivery says: a ping, a push (the ref and its head commit), or an event that
//! does not start builds. One reader per provider, each taking the shape from the provider's
//! documentation; only the fields Slipway uses are read, and unknown fields are ignored.
//!
//! Deliveries are JSON; the generic webhook's may also be YAML (`Content-Type: application/yaml`,
//! `application/x-yaml`, `text/yaml`), as OpenShift's generic webhook reads a YAML-or-JSON body.

use std::cell::Cell;

use http::{HeaderMap, header};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Visitor};
use slipway_crds::build::{GitSourceRevision, SourceControlUser};

/// A delivery, read.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The provider checks that the hook works (GitHub `ping`, Bitbucket `diagnostics:ping`).
    Ping,
    /// Refs moved. Bitbucket may report several refs in one delivery; the others report one.
    Push(Vec<Push>),
    /// Another event (issues, merge requests, ...): no build. The text says which.
    Ignored(String),
}

/// One ref that moved, and the commit it points at now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Push {
    /// The full ref (`refs/heads/main`, `refs/tags/v1`); None when a generic delivery names none
    /// (then the BuildConfig's own ref is built).
    pub git_ref: Option<String>,
    /// The head commit after the push, with its author, committer and message when the payload
    /// has them. None for a generic delivery without a commit.
    pub head: Option<GitSourceRevision>,
    /// The ref was deleted: nothing to build.
    pub deleted: bool,
    /// The repository's default branch, when the payload says.
    pub default_branch: Option<String>,
    /// Environment variables a generic delivery asks for (used only when the trigger allows it).
    pub env: Vec<(String, String)>,
}

/// Why a delivery could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not valid JSON of a {provider} {event} event: {source}")]
    Json {
        provider: &'static str,
        event: String,
        source: serde_json::Error,
    },
    #[error("the body is not valid YAML of a generic build event: {0}")]
    Yaml(serde_yaml_ng::Error),
    #[error(
        "the YAML body expands, through its aliases, to more than {MAX_YAML_EXPANDED_BYTES} bytes; \
         send it without aliases, or as JSON"
    )]
    YamlExpands,
    #[error("the {0} header is missing: it says which event this is")]
    MissingEvent(&'static str),
}

/// How a delivery's body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    /// The generic webhook's only.
    Yaml,
}

/// The largest YAML body read. Far below the JSON limit: the YAML parser holds every event of the
/// document at once, about 64 bytes of memory per byte of input (a 3 MiB body took 190 MB),
/// while OpenShift's generic payload is a few hundred bytes.
pub const MAX_YAML_BODY_BYTES: usize = 64 * 1024;

/// What a YAML body may amount to once its aliases are expanded, counted as one byte per node
/// plus the bytes of each scalar. serde_yaml_ng bounds alias jumps only by a multiple of the
/// document's events, which does not bound memory: 400,000 aliases of one 1.5 MB mapping in a
/// 2.7 MB body exhausted 2 GB when read into the payload type. So the document is walked once
/// within this budget before it is read.
pub const MAX_YAML_EXPANDED_BYTES: usize = 4 * MAX_YAML_BODY_BYTES;

/// The encoding a Content-Type names: None without the header, Err with the media type when it
/// is neither JSON (`application/json`, `application/*+json`) nor YAML (`application/yaml`,
/// `application/x-yaml`, `text/yaml`, `application/*+yaml`). Parameters (`; charset=utf-8`) are
/// ignored.
pub fn encoding(headers: &HeaderMap) -> Option<Result<Encoding, String>> {
    let value = headers.get(header::CONTENT_TYPE)?;
    let media = value.to_str().unwrap_or_default();
    let essence = media
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    Some(match essence.as_str() {
        "application/json" => Ok(Encoding::Json),
        "application/yaml" | "application/x-yaml" | "text/yaml" => Ok(Encoding::Yaml),
        json if json.starts_with("application/") && json.ends_with("+json") => Ok(Encoding::Json),
        yaml if yaml.starts_with("application/") && yaml.ends_with("+yaml") => Ok(Encoding::Yaml),
        _ => Err(media.chars().take(100).collect()),
    })
}

/// The all-zero commit id git providers send for a deleted (or created-empty) ref.
fn is_zero(commit: &str) -> bool {
    !commit.is_empty() && commit.bytes().all(|b| b == b'0')
}

/// Reads a verified delivery of `provider`.
pub fn parse(provider: super::Provider, headers: &HeaderMap, body: &[u8]) -> Result<Event, PayloadError> {
    use super::Provider::*;
    match provider {
        GitHub => {
            // Gogs sends only its own event header; OpenShift's GitHub webhook takes it.
            let event = event_header(headers, &["x-github-event", "x-gogs-event"], "X-GitHub-Event")?;
            match event.as_str() {
                "ping" => Ok(Event::Ping),
                "push" => github_like(json(body, "GitHub", &event)?),
                other => Ok(ignored(other)),
            }
        }
        Gitea => {
            let event = event_header(
                headers,
                &["x-gitea-event", "x-forgejo-event", "x-gogs-event"],
                "X-Gitea-Event",
            )?;
            match event.as_str() {
                "ping" => Ok(Event::Ping),
                "push" => github_like(json(body, "Gitea", &event)?),
                other => Ok(ignored(other)),
            }
        }
        GitLab => {
            let event = event_header(headers, &["x-gitlab-event"], "X-Gitlab-Event")?;
            match event.as_str() {
                "Push Hook" | "Tag Push Hook" => gitlab(json(body, "GitLab", &event)?),
                other => Ok(ignored(other)),
            }
        }
        Bitbucket => {
            let event = event_header(headers, &["x-event-key"], "X-Event-Key")?;
            match event.as_str() {
                "diagnostics:ping" => Ok(Event::Ping),
                "repo:push" => bitbucket_cloud(json(body, "Bitbucket", &event)?),
                "repo:refs_changed" => bitbucket_server(json(body, "Bitbucket", &event)?),
                other => Ok(ignored(other)),
            }
        }
        Generic => {
            if body.iter().all(u8::is_ascii_whitespace) {
                // OpenShift's generic webhook may be called with no body: build the configured ref.
                return Ok(Event::Push(vec![Push::default()]));
            }
            match encoding(headers) {
                Some(Ok(Encoding::Yaml)) => generic(yaml(body)?),
                _ => generic(json(body, "generic", "build")?),
            }
        }
    }
}

fn ignored(event: &str) -> Event {
    Event::Ignored(format!("{event} events do not start builds; only pushes do"))
}

fn event_header(headers: &HeaderMap, names: &[&str], shown: &'static str) -> Result<String, PayloadError> {
    names
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or(PayloadError::MissingEvent(shown))
}

fn json<'a, T: Deserialize<'a>>(
    body: &'a [u8],
    provider: &'static str,
    event: &str,
) -> Result<T, PayloadError> {
    serde_json::from_slice(body).map_err(|source| PayloadError::Json {
        provider,
        event: event.to_string(),
        source,
    })
}

/// Reads a YAML body, after checking that its aliases do not expand it past
/// [`MAX_YAML_EXPANDED_BYTES`].
fn yaml<T: de::DeserializeOwned>(body: &[u8]) -> Result<T, PayloadError> {
    let budget = Budget {
        left: Cell::new(MAX_YAML_EXPANDED_BYTES),
        exceeded: Cell::new(false),
    };
    if let Err(e) = Walk(&budget).deserialize(serde_yaml_ng::Deserializer::from_slice(body)) {
        return Err(if budget.exceeded.get() {
            PayloadError::YamlExpands
        } else {
            PayloadError::Yaml(e)
        });
    }
    serde_yaml_ng::from_slice(body).map_err(PayloadError::Yaml)
}

/// What is left of the bytes a YAML document may expand to.
struct Budget {
    left: Cell<usize>,
    exceeded: Cell<bool>,
}

impl Budget {
    fn spend<E: de::Error>(&self, bytes: usize) -> Result<(), E> {
        match self.left.get().checked_sub(bytes.saturating_add(1)) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => {
                self.exceeded.set(true);
                Err(E::custom("the document expands past the limit"))
            }
        }
    }
}

/// Visits every node of a document, aliases followed, keeping nothing and spending the budget:
/// the walk stops as soon as the budget is spent, so its time is bounded too.
#[derive(Clone, Copy)]
struct Walk<'b>(&'b Budget);

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.0.spend(0)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.0.spend(0)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.0.spend(0)
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.0.spend(0)
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.0.spend(0)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.0.spend(0)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.spend(v.len())
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<(), E> {
        self.0.spend(v.len())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.spend(0)
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.0.spend(0)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.0.spend(0)?;
        self.deserialize(d)
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.0.spend(0)?;
        self.deserialize(d)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.spend(0)?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.0.spend(0)?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }

    /// A tagged node (`!tag value`).
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        use serde::de::VariantAccess;
        self.0.spend(0)?;
        let ((), variant) = data.variant_seed(self)?;
        variant.newtype_variant_seed(self)
    }
}

// --- GitHub and Gitea: the same push shape ----------------------------------------------------

#[derive(Deserialize)]
struct GitHubPush {
    #[serde(rename = "ref")]
    git_ref: String,
    after: String,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    head_commit: Option<GitHubCommit>,
    #[serde(default)]
    commits: Vec<GitHubCommit>,
    #[serde(default)]
    repository: Option<Repository>,
}

#[derive(Deserialize, Clone)]
struct GitHubCommit {
    id: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    author: Option<Person>,
    #[serde(default)]
    committer: Option<Person>,
}

#[derive(Deserialize, Clone)]
struct Person {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
}

impl From<Person> for SourceControlUser {
    fn from(p: Person) -> Self {
        SourceControlUser {
            name: p.name,
            email: p.email,
        }
    }
}

#[derive(Deserialize)]
struct Repository {
    #[serde(default)]
    default_branch: Option<String>,
}

fn github_like(push: GitHubPush) -> Result<Event, PayloadError> {
    let deleted = push.deleted || is_zero(&push.after);
    // The head is `after`; `head_commit` (or the commit of that id in `commits`) describes it.
    // `commits[0]` is the oldest commit of the push, never the head.
    let described = push
        .head_commit
        .filter(|c| c.id == push.after)
        .or_else(|| push.commits.iter().find(|c| c.id == push.after).cloned());
    let head = (!deleted).then(|| revision(&push.after, described));
    Ok(Event::Push(vec![Push {
        git_ref: Some(push.git_ref),
        head,
        deleted,
        default_branch: push.repository.and_then(|r| r.default_branch),
        env: Vec::new(),
    }]))
}

fn revision(commit: &str, described: Option<GitHubCommit>) -> GitSourceRevision {
    let mut revision = GitSourceRevision {
        commit: commit.to_string(),
        ..Default::default()
    };
    if let Some(c) = described {
        revision.message = first_lines(&c.message);
        revision.author = c.author.map(Into::into);
        revision.committer = c.committer.map(Into::into);
    }
    revision
}

/// A commit message fit for the Build (the API allows 4 KiB).
fn first_lines(message: &str) -> String {
    let mut end = message.len().min(4000);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].trim_end().to_string()
}

// --- GitLab ----------------------------------------------------------------------------------

#[derive(Deserialize)]
struct GitLabPush {
    #[serde(rename = "ref")]
    git_ref: String,
    after: String,
    #[serde(default)]
    checkout_sha: Option<String>,
    #[serde(default)]
    commits: Vec<GitLabCommit>,
    #[serde(default)]
    project: Option<Repository>,
}

#[derive(Deserialize, Clone)]
struct GitLabCommit {
    id: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    author: Option<Person>,
}

fn gitlab(push: GitLabPush) -> Result<Event, PayloadError> {
    // `checkout_sha` is the head (for a tag, the commit it points at); `after` for older GitLabs.
    let head = push
        .checkout_sha
        .filter(|sha| !sha.is_empty())
        .unwrap_or_else(|| push.after.clone());
    let deleted = is_zero(&head);
    let described = push.commits.iter().find(|c| c.id == head).map(|c| GitHubCommit {
        id: c.id.clone(),
        message: c.message.clone(),
        // GitLab reports only the author.
        author: c.author.clone(),
        committer: None,
    });
    Ok(Event::Push(vec![Push {
        git_ref: Some(push.git_ref),
        head: (!deleted).then(|| revision(&head, described)),
        deleted,
        default_branch: push.project.and_then(|p| p.default_branch),
        env: Vec::new(),
    }]))
}

// --- Bitbucket Cloud (repo:push) and Data Center (repo:refs_changed) ---------------------------

#[derive(Deserialize)]
struct BitbucketCloudPush {
    push: BitbucketChanges,
}

#[derive(Deserialize)]
struct BitbucketChanges {
    #[serde(default)]
    changes: Vec<BitbucketCloudChange>,
}

#[derive(Deserialize)]
struct BitbucketCloudChange {
    #[serde(default)]
    new: Option<BitbucketRefState>,
    #[serde(default)]
    old: Option<BitbucketRefState>,
}

#[derive(Deserialize)]
struct BitbucketRefState {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(default)]
    target: Option<BitbucketTarget>,
}

#[derive(Deserialize)]
struct BitbucketTarget {
    hash: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    author: Option<BitbucketAuthor>,
}

#[derive(Deserialize)]
struct BitbucketAuthor {
    /// `Name <email>`.
    #[serde(default)]
    raw: String,
}

fn full_ref(kind: &str, name: &str) -> String {
    match kind {
        "tag" | "annotated_tag" | "TAG" => format!("refs/tags/{name}"),
        _ => format!("refs/heads/{name}"),
    }
}

/// `Name <email>` into its parts.
fn parse_raw_author(raw: &str) -> SourceControlUser {
    match raw.rsplit_once('<') {
        Some((name, email)) => SourceControlUser {
            name: name.trim().to_string(),
            email: email.trim_end_matches('>').trim().to_string(),
        },
        None => SourceControlUser {
            name: raw.trim().to_string(),
            email: String::new(),
        },
    }
}

fn bitbucket_cloud(payload: BitbucketCloudPush) -> Result<Event, PayloadError> {
    let pushes = payload
        .push
        .changes
        .into_iter()
        .filter_map(|change| match (change.new, change.old) {
            (Some(new), _) => {
                let target = new.target?;
                let author = target.author.map(|a| parse_raw_author(&a.raw));
                Some(Push {
                    git_ref: Some(full_ref(&new.kind, &new.name)),
                    head: Some(GitSourceRevision {
                        commit: target.hash,
                        message: first_lines(&target.message),
                        // Bitbucket's commit has one person; git's author is also the committer
                        // as far as the payload can tell.
                        committer: author.clone(),
                        author,
                    }),
                    ..Default::default()
                })
            }
            (None, Some(old)) => Some(Push {
                git_ref: Some(full_ref(&old.kind, &old.name)),
                deleted: true,
                ..Default::default()
            }),
            (None, None) => None,
        })
        .collect();
    Ok(Event::Push(pushes))
}

#[derive(Deserialize)]
struct BitbucketServerPush {
    #[serde(default)]
    changes: Vec<BitbucketServerChange>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BitbucketServerChange {
    #[serde(rename = "ref")]
    changed: BitbucketServerRef,
    to_hash: String,
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Deserialize)]
struct BitbucketServerRef {
    id: String,
}

fn bitbucket_server(payload: BitbucketServerPush) -> Result<Event, PayloadError> {
    let pushes = payload
        .changes
        .into_iter()
        .map(|change| {
            let deleted = change.kind == "DELETE" || is_zero(&change.to_hash);
            Push {
                git_ref: Some(change.changed.id),
                // Data Center's payload names the commit only.
                head: (!deleted).then(|| GitSourceRevision {
                    commit: change.to_hash,
                    ..Default::default()
                }),
                deleted,
                ..Default::default()
            }
        })
        .collect();
    Ok(Event::Push(pushes))
}

// --- Generic: OpenShift's GenericWebHookEvent ---------------------------------------------------

#[derive(Deserialize)]
struct GenericEvent {
    #[serde(default)]
    git: Option<GenericGit>,
    #[serde(default)]
    env: Vec<GenericEnv>,
}

#[derive(Deserialize)]
struct GenericGit {
    #[serde(rename = "ref", default)]
    git_ref: Option<String>,
    #[serde(default)]
    commit: Option<String>,
    #[serde(default)]
    author: Option<Person>,
    #[serde(default)]
    committer: Option<Person>,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct GenericEnv {
    name: String,
    #[serde(default)]
    value: String,
}

fn generic(event: GenericEvent) -> Result<Event, PayloadError> {
    let mut push = Push {
        env: event.env.into_iter().map(|e| (e.name, e.value)).collect(),
        ..Default::default()
    };
    if let Some(git) = event.git {
        push.git_ref = git.git_ref.filter(|r| !r.is_empty()).map(|r| {
            if r.starts_with("refs/") {
                r
            } else {
                format!("refs/heads/{r}")
            }
        });
        push.head = git
            .commit
            .filter(|c| !c.is_empty())
            .map(|commit| GitSourceRevision {
                commit,
                author: git.author.map(Into::into),
                committer: git.committer.map(Into::into),
                message: first_lines(&git.message),
            });
    }
    Ok(Event::Push(vec![push]))
}

#[cfg(test)]
mod tests {
    use super::super::Provider;
    use super::*;
    use serde_json::json;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, value.parse().unwrap());
        map
    }

    fn one_push(event: Event) -> Push {
        match event {
            Event::Push(mut pushes) if pushes.len() == 1 => pushes.remove(0),
            other => panic!("not one push: {other:?}"),
        }
    }

    #[test]
    fn github_builds_after_not_the_first_commit() {
        let body = json!({
            "ref": "refs/heads/main", "before": "1111", "after": "cccc",
            "commits": [
                {"id": "aaaa", "message": "first", "author": {"name": "A", "email": "a@x"}},
                {"id": "cccc", "message": "third", "author": {"name": "C", "email": "c@x"}}
            ],
            "head_commit": {"id": "cccc", "message": "third\n\nbody", "author": {"name": "C", "email": "c@x"},
                            "committer": {"name": "GitHub", "email": "noreply@github.com"}},
            "repository": {"default_branch": "main"}
        });
        let push = one_push(
            parse(
                Provider::GitHub,
                &headers("x-github-event", "push"),
                body.to_string().as_bytes(),
            )
            .unwrap(),
        );
        let head = push.head.unwrap();
        assert_eq!(head.commit, "cccc");
        assert_eq!(head.message, "third\n\nbody");
        assert_eq!(head.author.unwrap().email, "c@x");
        assert_eq!(head.committer.unwrap().name, "GitHub");
        assert_eq!(push.git_ref.as_deref(), Some("refs/heads/main"));
        assert_eq!(push.default_branch.as_deref(), Some("main"));
    }

    #[test]
    fn github_ping_other_events_and_deletions() {
        let h = headers("x-github-event", "ping");
        assert_eq!(
            parse(Provider::GitHub, &h, b"{\"zen\":\"x\"}").unwrap(),
            Event::Ping
        );
        let h = headers("x-github-event", "issues");
        assert!(matches!(
            parse(Provider::GitHub, &h, b"{}").unwrap(),
            Event::Ignored(_)
        ));
        let body = json!({"ref": "refs/heads/gone", "after": "0000000000000000000000000000000000000000", "deleted": true});
        let push = one_push(
            parse(
                Provider::GitHub,
                &headers("x-github-event", "push"),
                body.to_string().as_bytes(),
            )
            .unwrap(),
        );
        assert!(push.deleted && push.head.is_none());
        assert!(matches!(
            parse(Provider::GitHub, &HeaderMap::new(), b"{}"),
            Err(PayloadError::MissingEvent(_))
        ));
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        for body in [&b"{"[..], b"[]", b"null", b"{\"ref\": 1}", b"\xff\xfe"] {
            assert!(parse(Provider::GitHub, &headers("x-github-event", "push"), body).is_err());
            assert!(parse(Provider::GitLab, &headers("x-gitlab-event", "Push Hook"), body).is_err());
            assert!(parse(Provider::Bitbucket, &headers("x-event-key", "repo:push"), body).is_err());
        }
        assert!(parse(Provider::Generic, &HeaderMap::new(), b"{").is_err());
    }

    #[test]
    fn gitlab_builds_checkout_sha() {
        let body = json!({
            "object_kind": "push", "ref": "refs/heads/main", "before": "1", "after": "bbbb",
            "checkout_sha": "bbbb",
            "commits": [{"id": "aaaa", "message": "old"}, {"id": "bbbb", "message": "new", "author": {"name": "B", "email": "b@x"}}],
            "project": {"default_branch": "main"}
        });
        let push = one_push(
            parse(
                Provider::GitLab,
                &headers("x-gitlab-event", "Push Hook"),
                body.to_string().as_bytes(),
            )
            .unwrap(),
        );
        let head = push.head.unwrap();
        assert_eq!((head.commit.as_str(), head.message.as_str()), ("bbbb", "new"));
        assert_eq!(head.author.unwrap().name, "B");
        let deleted = json!({"ref": "refs/heads/x", "after": "0000000000000000000000000000000000000000", "checkout_sha": null});
        let push = one_push(
            parse(
                Provider::GitLab,
                &headers("x-gitlab-event", "Push Hook"),
                deleted.to_string().as_bytes(),
            )
            .unwrap(),
        );
        assert!(push.deleted);
    }

    #[test]
    fn bitbucket_cloud_reports_every_changed_ref() {
        let body = json!({"push": {"changes": [
            {"new": {"type": "branch", "name": "main", "target": {"hash": "abc", "message": "m\n", "author": {"raw": "Ann Lee <ann@x.org>"}}}, "old": null},
            {"new": null, "old": {"type": "branch", "name": "gone", "target": {"hash": "def"}}},
            {"new": {"type": "tag", "name": "v1", "target": {"hash": "123"}}}
        ]}});
        let Event::Push(pushes) = parse(
            Provider::Bitbucket,
            &headers("x-event-key", "repo:push"),
            body.to_string().as_bytes(),
        )
        .unwrap() else {
            panic!("not a push")
        };
        assert_eq!(pushes.len(), 3);
        let head = pushes[0].head.clone().unwrap();
        assert_eq!(head.commit, "abc");
        assert_eq!(
            head.author.unwrap(),
            SourceControlUser {
                name: "Ann Lee".into(),
                email: "ann@x.org".into()
            }
        );
        assert!(pushes[1].deleted);
        assert_eq!(pushes[2].git_ref.as_deref(), Some("refs/tags/v1"));
    }

    #[test]
    fn bitbucket_data_center_refs_changed_and_ping() {
        let body = json!({"eventKey": "repo:refs_changed", "changes": [
            {"ref": {"id": "refs/heads/main", "displayId": "main", "type": "BRANCH"}, "refId": "refs/heads/main",
             "fromHash": "1", "toHash": "2222", "type": "UPDATE"}
        ]});
        let push = one_push(
            parse(
                Provider::Bitbucket,
                &headers("x-event-key", "repo:refs_changed"),
                body.to_string().as_bytes(),
            )
            .unwrap(),
        );
        assert_eq!(push.head.unwrap().commit, "2222");
        let h = headers("x-event-key", "diagnostics:ping");
        assert_eq!(parse(Provider::Bitbucket, &h, b"{}").unwrap(), Event::Ping);
    }

    #[test]
    fn generic_payloads_with_and_without_git() {
        assert_eq!(
            one_push(parse(Provider::Generic, &HeaderMap::new(), b"").unwrap()),
            Push::default()
        );
        let body = json!({"type": "Git", "git": {"uri": "https://x/y.git", "ref": "main", "commit": "abc",
            "author": {"name": "A", "email": "a@x"}, "message": "hi"}, "env": [{"name": "K", "value": "V"}]});
        let push =
            one_push(parse(Provider::Generic, &HeaderMap::new(), body.to_string().as_bytes()).unwrap());
        assert_eq!(push.git_ref.as_deref(), Some("refs/heads/main"));
        assert_eq!(push.head.unwrap().commit, "abc");
        assert_eq!(push.env, vec![("K".to_string(), "V".to_string())]);
    }

    fn yaml_headers(media: &str) -> HeaderMap {
        headers("content-type", media)
    }

    #[test]
    fn generic_yaml_reads_as_the_json_does() {
        let body = include_bytes!("../../tests/fixtures/generic.yaml");
        for media in [
            "application/yaml",
            "application/x-yaml",
            "text/yaml; charset=utf-8",
            "Application/YAML",
        ] {
            let push = one_push(parse(Provider::Generic, &yaml_headers(media), body).unwrap());
            assert_eq!(push.git_ref.as_deref(), Some("refs/heads/main"), "{media}");
            let head = push.head.unwrap();
            assert_eq!(head.commit, "5a7f2c1e9b8d4f3a2c1b0e9d8c7b6a5f4e3d2c1b");
            assert_eq!(head.message, "Nightly rebuild");
            assert_eq!(
                head.committer.unwrap().email,
                "bot@example.com",
                "the alias is read"
            );
            assert_eq!(
                push.env,
                vec![("RELEASE_CHANNEL".to_string(), "nightly".to_string())]
            );
        }
        // JSON is YAML too, and stays accepted under either type.
        let json = br#"{"git": {"ref": "refs/tags/v1", "commit": "abc"}}"#;
        for h in [yaml_headers("application/yaml"), yaml_headers("application/json")] {
            let push = one_push(parse(Provider::Generic, &h, json).unwrap());
            assert_eq!(push.git_ref.as_deref(), Some("refs/tags/v1"));
        }
    }

    #[test]
    fn malformed_yaml_says_where_and_what() {
        let h = yaml_headers("application/yaml");
        let cases: [(&[u8], &str); 5] = [
            (b"git: [unclosed", "line 1"),
            (b"git:\n  ref: main\n   commit: x\n", "line 3"),
            (
                b"git: [main, abc]\n",
                "git: invalid type: sequence, expected struct GenericGit",
            ),
            (b"env: [{value: V}]\n", "missing field `name`"),
            (b"---\ngit: {}\n---\ngit: {}\n", "more than one document"),
        ];
        for (body, expected) in cases {
            let e = parse(Provider::Generic, &h, body).unwrap_err();
            assert!(matches!(e, PayloadError::Yaml(_)), "{e}");
            let message = e.to_string();
            assert!(
                message.starts_with("the body is not valid YAML of a generic build event: "),
                "{message}"
            );
            assert!(message.contains(expected), "{message} lacks {expected}");
        }
        // Only the generic webhook reads YAML: a GitHub push sent as YAML is not valid JSON.
        let github = HeaderMap::from_iter([
            (header::CONTENT_TYPE, "application/yaml".parse().unwrap()),
            (
                http::HeaderName::from_static("x-github-event"),
                "push".parse().unwrap(),
            ),
        ]);
        assert!(matches!(
            parse(Provider::GitHub, &github, b"ref: refs/heads/main\nafter: abc\n"),
            Err(PayloadError::Json { .. })
        ));
    }

    /// The billion laughs: ten levels of ten aliases each, 10^9 strings once expanded, in 400
    /// bytes.
    fn laughs(levels: usize) -> String {
        let mut doc = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..levels {
            let previous = format!("*a{}", i - 1);
            doc.push_str(&format!("a{i}: &a{i} [{}]\n", vec![previous; 10].join(", ")));
        }
        doc
    }

    #[test]
    fn aliases_that_expand_past_the_budget_are_refused_before_reading() {
        let h = yaml_headers("application/yaml");
        // Where the payload type ignores the expansion (an unknown field)...
        let body = laughs(10);
        assert!(body.len() < 1024);
        let e = parse(Provider::Generic, &h, body.as_bytes()).unwrap_err();
        assert!(matches!(e, PayloadError::YamlExpands), "{e}");
        assert!(
            e.to_string()
                .contains(&format!("more than {MAX_YAML_EXPANDED_BYTES} bytes")),
            "{e}"
        );
        // ...and where it would keep it: every alias a whole env entry with a long value (without
        // the budget, 400,000 such aliases in 2.7 MB exhausted 2 GB).
        let mut body = format!("big: &e {{name: N, value: {}}}\nenv: [", "v".repeat(20_000));
        body.push_str(&vec!["*e"; 10_000].join(", "));
        body.push_str("]\n");
        assert!(body.len() < MAX_YAML_BODY_BYTES);
        let e = parse(Provider::Generic, &h, body.as_bytes()).unwrap_err();
        assert!(matches!(e, PayloadError::YamlExpands), "{e}");
        // A document that uses aliases modestly is read.
        let fine = format!("{}env: [{{name: K, value: V}}]\n", laughs(3));
        let push = one_push(parse(Provider::Generic, &h, fine.as_bytes()).unwrap());
        assert_eq!(push.env.len(), 1);
    }

    #[test]
    fn yaml_deeper_than_the_parser_allows_is_an_error() {
        let body = format!("git: {}{}", "[".repeat(10_000), "]".repeat(10_000));
        let e = parse(
            Provider::Generic,
            &yaml_headers("application/yaml"),
            body.as_bytes(),
        )
        .unwrap_err();
        assert!(matches!(e, PayloadError::Yaml(_)), "{e}");
        assert!(e.to_string().contains("recursion limit exceeded"), "{e}");
    }

    #[test]
    fn content_types() {
        for (media, expected) in [
            ("application/json", Ok(Encoding::Json)),
            ("application/vnd.github+json; charset=utf-8", Ok(Encoding::Json)),
            ("application/yaml", Ok(Encoding::Yaml)),
            ("application/x-yaml", Ok(Encoding::Yaml)),
            ("text/yaml", Ok(Encoding::Yaml)),
            ("text/plain", Err("text/plain".to_string())),
            (
                "application/x-www-form-urlencoded",
                Err("application/x-www-form-urlencoded".to_string()),
            ),
        ] {
            assert_eq!(encoding(&yaml_headers(media)), Some(expected), "{media}");
        }
        assert_eq!(encoding(&HeaderMap::new()), None);
    }

    #[test]
    fn gogs_pushes_read_at_the_gitea_and_github_endpoints() {
        let body = include_bytes!("../../tests/fixtures/providers/gogs-push.json");
        for provider in [Provider::Gitea, Provider::GitHub] {
            let push = one_push(parse(provider, &headers("x-gogs-event", "push"), body).unwrap());
            assert_eq!(push.git_ref.as_deref(), Some("refs/heads/develop"));
            assert_eq!(push.default_branch.as_deref(), Some("master"));
            let head = push.head.unwrap();
            assert_eq!(head.commit, "bffeb74224043ba2feb48d137756c8a9331c449a");
            assert_eq!(head.message, "Add new feature");
            assert_eq!(head.author.unwrap().email, "u@gogs.io");
            assert!(matches!(
                parse(provider, &headers("x-gogs-event", "create"), body).unwrap(),
                Event::Ignored(_)
            ));
        }
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let message = "é".repeat(3000);
        let cut = first_lines(&message);
        assert!(cut.len() <= 4000 && cut.chars().all(|c| c == 'é'));
    }
}
