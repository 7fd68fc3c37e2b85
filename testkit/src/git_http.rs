//! A git server over plain http for the demo and the tests: git's own smart-http server,
//! `git http-backend`, run as a CGI program behind hyper's HTTP/1 server, optionally behind Basic
//! auth. The builder's fetch tests (synchronous) run it on a runtime of its own
//! ([`BlockingGitHttp`]); the demo and the cluster tests run it on theirs ([`GitHttp`]).
//!
//! Written here rather than taken from a crate: what is needed is the CGI bridge alone (about a
//! hundred lines); the git protocol itself is git's, HTTP is hyper's. Bodies are buffered in
//! memory, which suits the small repositories of the demo and the tests.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

/// Pushes and fetches larger than this are refused (the demo's repositories are a few KiB).
const MAX_BODY: usize = 64 << 20;

/// A running server; dropping it stops accepting connections.
pub struct GitHttp {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GitHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What every request is served with.
struct Served {
    root: PathBuf,
    /// The `Authorization` header a request must carry, when Basic auth is on.
    authorization: Option<String>,
}

impl GitHttp {
    /// Serves the repositories under `root` (`http://ADDR/NAME.git`, fetch and push) on `bind`
    /// (port 0: any free port), to anyone.
    pub async fn start(root: &Path, bind: SocketAddr) -> std::io::Result<GitHttp> {
        GitHttp::start_with_auth(root, bind, None).await
    }

    /// As [`GitHttp::start`], and with `credentials` (user, password) every request must carry
    /// them by Basic auth or is answered 401.
    pub async fn start_with_auth(
        root: &Path,
        bind: SocketAddr,
        credentials: Option<(&str, &str)>,
    ) -> std::io::Result<GitHttp> {
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let served = Arc::new(Served {
            root: root.to_path_buf(),
            authorization: credentials.map(|(user, password)| {
                let pair = format!("{user}:{password}");
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
            }),
        });
        let task = tokio::spawn(accept(listener, served));
        Ok(GitHttp { addr, task })
    }

    /// The clone URL of repository `name` (`NAME.git` under the root) as seen through `host`.
    pub fn url(&self, host: &str, name: &str) -> String {
        self.path_url(host, &format!("{name}.git"))
    }

    /// The URL of `path` under the root, as seen through `host`.
    pub fn path_url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}/{path}", self.addr.port())
    }
}

/// A [`GitHttp`] on 127.0.0.1 with a runtime of its own, for tests without one. Dropping it
/// stops the server and its connections.
pub struct BlockingGitHttp {
    server: Option<GitHttp>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl BlockingGitHttp {
    pub fn start(root: &Path, credentials: Option<(&str, &str)>) -> std::io::Result<BlockingGitHttp> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let bind = SocketAddr::from(([127, 0, 0, 1], 0));
        let server = runtime.block_on(GitHttp::start_with_auth(root, bind, credentials))?;
        Ok(BlockingGitHttp {
            server: Some(server),
            runtime: Some(runtime),
        })
    }

    pub fn port(&self) -> u16 {
        self.server.as_ref().map_or(0, |s| s.addr.port())
    }

    /// The URL of `path` under the root (`http://127.0.0.1:PORT/PATH`).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port())
    }
}

impl Drop for BlockingGitHttp {
    fn drop(&mut self) {
        // The accept loop is aborted inside the runtime, then the runtime ends every connection.
        if let (Some(server), Some(runtime)) = (self.server.take(), self.runtime.as_ref()) {
            let _guard = runtime.enter();
            drop(server);
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn accept(listener: tokio::net::TcpListener, served: Arc<Served>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("git http server: accept: {e}");
                continue;
            }
        };
        let served = served.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let served = served.clone();
                async move { Ok::<_, Infallible>(answer(&served, peer, request).await) }
            });
            let connection =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                eprintln!("git http server: {peer}: {e}");
            }
        });
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text.to_owned())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

async fn answer(served: &Served, peer: SocketAddr, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    if let Some(expected) = &served.authorization {
        let given = parts.headers.get(http::header::AUTHORIZATION);
        if given.and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
            let mut response = plain(StatusCode::UNAUTHORIZED, "authentication required\n");
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"git\""),
            );
            return response;
        }
    }
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request too large\n"),
    };
    if parts.uri.path().split('/').any(|segment| segment == "..") {
        return plain(StatusCode::BAD_REQUEST, "bad path\n");
    }
    let request = CgiRequest {
        peer,
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
    };
    match run_backend(&served.root, request, body).await {
        Ok(response) => response,
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("git http-backend: {e}\n"),
        ),
    }
}

/// What of a request the CGI program is told.
struct CgiRequest<'a> {
    peer: SocketAddr,
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
}

async fn run_backend(
    root: &Path,
    request: CgiRequest<'_>,
    body: Bytes,
) -> std::io::Result<Response<Full<Bytes>>> {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let mut command = tokio::process::Command::new("git");
    command
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        // Pushes are allowed to whoever got past the auth (everyone, without it): the server is
        // for local demos and tests.
        .env("REMOTE_USER", "slipway")
        .env("REMOTE_ADDR", request.peer.ip().to_string())
        .env("REQUEST_METHOD", request.method.as_str())
        .env("PATH_INFO", request.uri.path())
        .env("QUERY_STRING", request.uri.query().unwrap_or(""))
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Hooks (post-receive) find their tools on PATH and their home for git's config.
    if let Some(home) = std::env::var_os("HOME") {
        command.env("HOME", home);
    }
    let mut child = command.spawn()?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("no stdin"))?;
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
    });
    let output = child.wait_with_output().await?;
    let _ = writer.await;
    if !output.stderr.is_empty() {
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(parse_cgi(&output.stdout))
}

/// A CGI program's output as an HTTP response: headers (`Status:` among them) up to a blank
/// line, then the body.
fn parse_cgi(out: &[u8]) -> Response<Full<Bytes>> {
    let Some((end, body_start)) = find_blank_line(out) else {
        return plain(StatusCode::BAD_GATEWAY, "malformed CGI output\n");
    };
    let mut status = StatusCode::OK;
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(&out[body_start..])));
    for line in String::from_utf8_lossy(&out[..end]).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok());
            status = code
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::BAD_GATEWAY);
        } else if let (Ok(n), Ok(v)) = (HeaderName::try_from(name.trim()), HeaderValue::try_from(value)) {
            response.headers_mut().append(n, v);
        }
    }
    *response.status_mut() = status;
    response
}

/// Where the header block ends (`\r\n\r\n` or `\n\n`) and the body starts.
fn find_blank_line(out: &[u8]) -> Option<(usize, usize)> {
    let crlf = out.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, i + 4));
    let lf = out.windows(2).position(|w| w == b"\n\n").map(|i| (i, i + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response<Full<Bytes>>) -> Bytes {
        response
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn cgi_output_becomes_a_response() {
        let r = parse_cgi(b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers()["content-type"], "text/plain");
        assert_eq!(&body(r).await[..], b"nope");
        let ok = parse_cgi(b"Content-Type: application/x-git-upload-pack-advertisement\n\n001e");
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(parse_cgi(b"no blank line").status(), StatusCode::BAD_GATEWAY);
    }
}
