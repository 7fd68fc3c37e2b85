//! Per-listener connection limits: how many connections a listener holds at once, and how long
//! one may stay silent or open. Each listener (git webhooks, admission) has its own, so that a
//! flood of connections on one leaves the other answering.
//!
//! The limits act on the TCP stream, below TLS and HTTP: a connection over the cap is closed as
//! soon as it is accepted (before its TLS handshake costs anything); a connection that sends
//! nothing for `idle_timeout` — an idle keep-alive connection, or an HTTP/2 client that began a
//! request's headers and stopped, which hyper has no timeout for — is closed; and none lives longer
//! than `max_age`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// The limits of one listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections held at once; more are closed when accepted.
    pub max_connections: usize,
    /// Close a connection that sends nothing for this long.
    pub idle_timeout: Option<Duration>,
    /// Close a connection this long after it was accepted.
    pub max_age: Option<Duration>,
    /// HTTP/2 streams one connection may have open at once.
    pub max_streams: u32,
    /// The largest header block of a request (HTTP/2; HTTP/1 has hyper's fixed bound).
    pub max_header_bytes: u32,
}

impl Limits {
    /// The public git webhook listener: providers open a connection per delivery (GitHub gives up
    /// after 10 s), so connections are few, short and busy.
    pub const GIT: Limits = Limits {
        max_connections: 256,
        idle_timeout: Some(Duration::from_secs(30)),
        max_age: Some(Duration::from_secs(60)),
        max_streams: 8,
        max_header_bytes: 64 * 1024,
    };

    /// The admission listener: the API server keeps a few HTTP/2 connections open and idle
    /// between reviews, so there is no idle or age limit (HTTP/2 keep-alive pings find dead ones).
    pub const ADMISSION: Limits = Limits {
        max_connections: 512,
        idle_timeout: None,
        max_age: None,
        max_streams: 200,
        max_header_bytes: 256 * 1024,
    };
}

/// An acceptor that applies [`Limits`] to each TCP connection before handing it on.
#[derive(Clone)]
pub struct Guard {
    permits: Arc<Semaphore>,
    limits: Limits,
}

impl Guard {
    pub fn new(limits: Limits) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limits.max_connections)),
            limits,
        }
    }

    /// Connections held now.
    pub fn connections(&self) -> usize {
        self.limits.max_connections - self.permits.available_permits()
    }
}

impl<S: Send + 'static> Accept<tokio::net::TcpStream, S> for Guard {
    type Stream = Guarded<tokio::net::TcpStream>;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        let accepted = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Ok((Guarded::new(stream, permit, self.limits), service)),
            // Dropping the stream closes it: the cap is reached.
            Err(_) => Err(io::Error::other(format!(
                "{} connections are open; closing a new one",
                self.limits.max_connections
            ))),
        };
        std::future::ready(accepted)
    }
}

/// A stream that holds its listener's permit and enforces the idle and age limits.
pub struct Guarded<T> {
    inner: T,
    _permit: OwnedSemaphorePermit,
    idle_timeout: Option<Duration>,
    idle: Option<Pin<Box<Sleep>>>,
    age: Option<Pin<Box<Sleep>>>,
}

impl<T> Guarded<T> {
    fn new(inner: T, permit: OwnedSemaphorePermit, limits: Limits) -> Self {
        Self {
            inner,
            _permit: permit,
            idle_timeout: limits.idle_timeout,
            idle: limits.idle_timeout.map(|t| Box::pin(tokio::time::sleep(t))),
            age: limits.max_age.map(|t| Box::pin(tokio::time::sleep(t))),
        }
    }

    /// An error once the connection is too old or (when `reading`) silent too long.
    fn expired(&mut self, cx: &mut Context<'_>, reading: bool) -> Option<io::Error> {
        if let Some(age) = &mut self.age
            && age.as_mut().poll(cx).is_ready()
        {
            return Some(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection reached its maximum age",
            ));
        }
        if reading
            && let Some(idle) = &mut self.idle
            && idle.as_mut().poll(cx).is_ready()
        {
            return Some(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection sent nothing for too long",
            ));
        }
        None
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before
                    && let (Some(idle), Some(timeout)) = (&mut this.idle, this.idle_timeout)
                {
                    idle.as_mut().reset(Instant::now() + timeout);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.expired(cx, true) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(e) = this.expired(cx, false) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(e) = this.expired(cx, false) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
