//! The listener both servers share: accepts TCP connections (optionally TLS via openssl), serves
//! an axum router over hyper HTTP/1.1 with hardening (header read timeout that also bounds idle
//! keep-alive, TLS handshake timeout, header size limit, connection cap), per-request debug logs,
//! and graceful shutdown through a [`Running`] handle.

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use openssl::ssl::{Ssl, SslAcceptor};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

/// Connection-level limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time a client has to send a full request head; also how long an idle keep-alive
    /// connection may wait for its next request.
    pub header_timeout: Duration,
    /// Time a client has to finish the TLS handshake.
    pub handshake_timeout: Duration,
    /// Largest request head (request line + headers) accepted; larger → 431 and close.
    pub max_header_bytes: usize,
    /// Connections served at once; further clients wait in the kernel backlog.
    pub max_connections: usize,
    /// How long shutdown waits for in-flight requests (watches) before dropping them.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            max_header_bytes: 16 * 1024,
            max_connections: 1024,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// A server running in the background.
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    /// A receiver that turns `true` when shutdown starts (background tasks stop on it).
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Stops accepting, lets in-flight requests finish (bounded by the drain timeout), returns
    /// when every connection is closed.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Waits until the server stops by itself (it does not, unless shut down elsewhere).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// A shutdown channel created before the server, so startup tasks (file watchers) can share it.
pub fn shutdown_channel() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(false)
}

/// Serves `app` on `listener` until `shutdown` is signalled; TLS when `tls` is given.
pub fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<SslAcceptor>,
    limits: Limits,
    shutdown: watch::Sender<bool>,
) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    let app = app.layer(axum::middleware::from_fn(log_request));
    let rx = shutdown.subscribe();
    let task = tokio::spawn(accept_loop(listener, app, tls.map(Arc::new), limits, rx));
    Ok(Running {
        addr,
        shutdown,
        task,
    })
}

async fn accept_loop(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<SslAcceptor>>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let (app, tls, limits, rx) = (app.clone(), tls.clone(), limits.clone(), shutdown.clone());
        conns.spawn(async move {
            let _permit = permit;
            match tls {
                None => serve_connection(stream, app, &limits, rx).await,
                Some(acceptor) => match tls_handshake(&acceptor, stream, &limits).await {
                    Ok(s) => serve_connection(s, app, &limits, rx).await,
                    Err(e) => tracing::debug!(peer = %peer, error = %e, "TLS handshake failed"),
                },
            }
        });
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.drain_timeout + Duration::from_secs(1), drain)
        .await
        .is_err()
    {
        conns.abort_all();
    }
}

async fn tls_handshake(
    acceptor: &SslAcceptor,
    stream: tokio::net::TcpStream,
    limits: &Limits,
) -> Result<tokio_openssl::SslStream<tokio::net::TcpStream>, String> {
    let ssl = Ssl::new(acceptor.context()).map_err(|e| e.to_string())?;
    let mut s = tokio_openssl::SslStream::new(ssl, stream).map_err(|e| e.to_string())?;
    match tokio::time::timeout(limits.handshake_timeout, Pin::new(&mut s).accept()).await {
        Ok(Ok(())) => Ok(s),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("handshake timed out".into()),
    }
}

async fn serve_connection<S>(
    stream: S,
    app: Router,
    limits: &Limits,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        app.clone().oneshot(req.map(Body::new))
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(limits.drain_timeout, conn).await;
        }
    }
}

/// One debug line per request: method, path (without the query), status, duration. Never
/// headers: they carry tokens.
/// Costs nothing per request unless debug logging is on.
async fn log_request(req: Request, next: Next) -> Response {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return next.run(req).await;
    }
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let start = Instant::now();
    let resp = next.run(req).await;
    tracing::debug!(
        method = %method,
        path = %path,
        status = resp.status().as_u16(),
        ms = start.elapsed().as_millis() as u64,
        "request"
    );
    resp
}

/// Waits for SIGTERM or ctrl-c.
pub async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `body` on a fresh multi-thread runtime (the servers' `main`s).
pub fn run_blocking<F: std::future::Future<Output = Result<(), String>>>(
    name: &str,
    body: F,
) -> Result<(), String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("{name}: cannot start the async runtime: {e}"))?
        .block_on(body)
}
