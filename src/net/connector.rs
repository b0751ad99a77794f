//! The hyper connector of [`super::HttpsClient`]: TCP through hyper-util's `HttpConnector`,
//! then a TLS handshake with one [`TlsSetting`] (tokio-openssl).

use crate::tls::TlsSetting;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use openssl::x509::X509VerifyResult;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The hyper connector: TCP with hyper-util's `HttpConnector`, then a TLS handshake with one
/// [`TlsSetting`]. Only `https` URIs.
#[derive(Clone)]
pub struct HttpsConnector {
    tcp: HttpConnector,
    tls: Arc<TlsSetting>,
}

impl HttpsConnector {
    pub fn new(tls: TlsSetting, connect_timeout: std::time::Duration) -> HttpsConnector {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        HttpsConnector {
            tcp,
            tls: Arc::new(tls),
        }
    }
}

impl tower::Service<http::Uri> for HttpsConnector {
    type Response = HttpsStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpsStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let tls = self.tls.clone();
        let scheme_ok = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tcp = self.tcp.call(uri);
        Box::pin(async move {
            if !scheme_ok {
                return Err("only https URLs are fetched".into());
            }
            let tcp = tcp.await?.into_inner();
            let ssl = tls.session(&host).map_err(|e| handshake_error(&host, &e))?;
            let mut stream =
                tokio_openssl::SslStream::new(ssl, tcp).map_err(|e| handshake_error(&host, &e))?;
            if let Err(e) = Pin::new(&mut stream).connect().await {
                let verify = stream.ssl().verify_result();
                let mut msg = handshake_error(&host, &e);
                if verify != X509VerifyResult::OK {
                    msg = format!("{msg} ({})", verify.error_string());
                }
                return Err(msg.into());
            }
            Ok(HttpsStream(TokioIo::new(stream)))
        })
    }
}

fn handshake_error(host: &str, e: &dyn std::fmt::Display) -> String {
    format!("TLS handshake with {host}: {e}")
}

/// An established TLS connection, as hyper reads and writes it.
pub struct HttpsStream(TokioIo<tokio_openssl::SslStream<TcpStream>>);

impl Connection for HttpsStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl Read for HttpsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl Write for HttpsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
}
