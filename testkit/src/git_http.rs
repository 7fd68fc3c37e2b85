//! A git server over plain http for the demo and the end-to-end tests: git's own smart-http
//! server, `git http-backend`, run as a CGI program behind a small axum server.
//!
//! Written here rather than taken from a crate: what is needed is the CGI bridge alone (about a
//! hundred lines); the git protocol itself is git's. Bodies are buffered in memory, which suits
//! the small repositories of the demo and the tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::io::AsyncWriteExt;

/// Pushes and fetches larger than this are refused (the demo's repositories are a few KiB).
const MAX_BODY: usize = 64 << 20;

/// A running server; dropping it stops it.
pub struct GitHttp {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GitHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GitHttp {
    /// Serves the repositories under `root` (`http://ADDR/NAME.git`, fetch and push) on `bind`
    /// (port 0: any free port).
    pub async fn start(root: &Path, bind: SocketAddr) -> std::io::Result<GitHttp> {
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let app = router(root.to_path_buf());
        let task = tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, service).await {
                eprintln!("git http server stopped: {e}");
            }
        });
        Ok(GitHttp { addr, task })
    }

    /// The clone URL of repository `name` (`NAME.git` under the root) as seen through `host`.
    pub fn url(&self, host: &str, name: &str) -> String {
        format!("http://{host}:{}/{name}.git", self.addr.port())
    }
}

/// The router: every path goes to `git http-backend`.
pub fn router(root: PathBuf) -> Router {
    Router::new().fallback(cgi).with_state(root)
}

async fn cgi(
    State(root): State<PathBuf>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "request too large\n").into_response(),
    };
    let path = uri.path();
    if path.split('/').any(|segment| segment == "..") {
        return (StatusCode::BAD_REQUEST, "bad path\n").into_response();
    }
    match run_backend(&root, peer, &method, &uri, &headers, body).await {
        Ok(response) => response,
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("git http-backend: {e}\n"),
        )
            .into_response(),
    }
}

async fn run_backend(
    root: &Path,
    peer: SocketAddr,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> std::io::Result<Response> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut command = tokio::process::Command::new("git");
    command
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        // Pushes are allowed without authentication: the server is for local demos and tests.
        .env("REMOTE_USER", "slipway")
        .env("REMOTE_ADDR", peer.ip().to_string())
        .env("REQUEST_METHOD", method.as_str())
        .env("PATH_INFO", uri.path())
        .env("QUERY_STRING", uri.query().unwrap_or(""))
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
fn parse_cgi(out: &[u8]) -> Response {
    let (head, body) = match find_blank_line(out) {
        Some((end, body_start)) => (&out[..end], &out[body_start..]),
        None => return (StatusCode::BAD_GATEWAY, "malformed CGI output\n").into_response(),
    };
    let mut status = StatusCode::OK;
    let mut response = Response::new(Body::from(body.to_vec()));
    for line in String::from_utf8_lossy(head).lines() {
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

    #[tokio::test]
    async fn cgi_output_becomes_a_response() {
        let r = parse_cgi(b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers()["content-type"], "text/plain");
        let body = axum::body::to_bytes(r.into_body(), 100).await.unwrap_or_default();
        assert_eq!(&body[..], b"nope");
        let ok = parse_cgi(b"Content-Type: application/x-git-upload-pack-advertisement\n\n001e");
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(parse_cgi(b"no blank line").status(), StatusCode::BAD_GATEWAY);
    }
}
