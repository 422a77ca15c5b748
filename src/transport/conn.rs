//! One POST on a keep-alive HTTP/1.1 connection: hyper's client connection (no pool, no
//! redirects, no per-request URL parsing), over TCP or rustls.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use sentry_types::Dsn;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A connection's request half; its other half runs as a task of the sink's runtime.
pub(super) type Connection = SendRequest<Full<Bytes>>;

/// Where envelopes go, resolved once.
pub(super) struct Endpoint {
    host: String,
    port: u16,
    /// The request head every POST carries (`Host`, auth, content type, user agent), built
    /// once. `None` when the DSN's key cannot be a header value: nothing can then be sent.
    headers: Option<HeaderMap>,
    path: http::Uri,
    /// `None` for plain http; for https, the TLS setup, or `Err` when none could be made
    /// (nothing is then sent rather than sent in clear).
    tls: Option<Result<Tls, ()>>,
}

struct Tls {
    config: Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
}

/// What became of one attempt.
pub(super) enum Outcome {
    /// The server answered with this status; the rate-limit headers it sent, if any.
    Answered(StatusCode, RateLimitHeaders),
    /// No answer: refused, reset, timed out, or not HTTP.
    NoAnswer,
    /// Nothing can be sent with this DSN.
    Unsendable,
}

/// The headers a rate limit is read from.
#[derive(Default)]
pub(super) struct RateLimitHeaders {
    pub(super) sentry: Option<String>,
    pub(super) retry_after: Option<String>,
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

impl Endpoint {
    pub(super) fn new(dsn: &Dsn) -> Endpoint {
        let host = dsn.host().to_owned();
        let port = dsn.port();
        let https = dsn.scheme() == sentry_types::Scheme::Https;
        let default_port = if https { 443 } else { 80 };
        let authority = if port == default_port {
            host.clone()
        } else {
            format!("{host}:{port}")
        };
        let mut auth = format!(
            "Sentry sentry_version=7, sentry_client={}/{}, sentry_key={}",
            crate::SDK_NAME,
            crate::SDK_VERSION,
            dsn.public_key()
        );
        if let Some(secret) = dsn.secret_key() {
            auth.push_str(", sentry_secret=");
            auth.push_str(secret);
        }
        let headers = post_headers(&authority, Some(&auth));
        drop(auth);
        let path = dsn
            .envelope_api_url()
            .path()
            .parse()
            .unwrap_or_else(|_| http::Uri::from_static("/"));
        let tls = https.then(|| tls(&host).ok_or(()));
        Endpoint {
            host,
            port,
            headers,
            path,
            tls,
        }
    }

    /// An endpoint that takes envelopes at a plain URL, without authentication (the Spotlight
    /// sidecar's `/stream`). `None` when the URL has no host.
    pub(super) fn for_url(url: &http::Uri) -> Option<Endpoint> {
        let host = url
            .host()?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let https = url.scheme_str() == Some("https");
        let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
        let headers = post_headers(url.authority()?.as_str(), None)?;
        let path = url
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .unwrap_or_else(|_| http::Uri::from_static("/"));
        let tls = https.then(|| tls(&host).ok_or(()));
        Some(Endpoint {
            host,
            port,
            headers: Some(headers),
            path,
            tls,
        })
    }

    /// Opens a connection (TCP, then TLS for https) within `timeout`.
    pub(super) async fn connect(&self, timeout: Duration) -> Option<Connection> {
        let opened = tokio::time::timeout(timeout, async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .ok()?;
            let _ = tcp.set_nodelay(true);
            let io: Box<dyn Io> = match &self.tls {
                None => Box::new(tcp),
                Some(Ok(tls)) => {
                    let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
                    Box::new(connector.connect(tls.name.clone(), tcp).await.ok()?)
                }
                Some(Err(())) => return None,
            };
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
                .await
                .ok()?;
            // The connection's other half: it ends when the server closes or the sender is
            // dropped.
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Some(sender)
        })
        .await;
        opened.ok().flatten()
    }

    /// POSTs `body` on `connection` (opening one when there is none or it was closed), within
    /// `timeout` for everything. Gives the connection back when it can be used again.
    pub(super) async fn post(
        &self,
        connection: Option<Connection>,
        body: Bytes,
        gzipped: bool,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> (Option<Connection>, Outcome) {
        let (Some(headers), None | Some(Ok(_))) = (&self.headers, &self.tls) else {
            return (None, Outcome::Unsendable);
        };
        let attempt = async {
            match connection.filter(|c| !c.is_closed()) {
                Some(reused) => match self.send(reused, &body, gzipped, headers).await {
                    Ok(answered) => Some(answered),
                    // A kept-alive connection the server closed meanwhile: once more, on a
                    // new one (the request never reached the server).
                    Err(SendError::BeforeAnswer) => {
                        let fresh = self.connect(connect_timeout).await?;
                        self.send(fresh, &body, gzipped, headers).await.ok()
                    }
                    Err(SendError::Failed) => None,
                },
                None => {
                    let fresh = self.connect(connect_timeout).await?;
                    self.send(fresh, &body, gzipped, headers).await.ok()
                }
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Some((sender, status, limits))) => (sender, Outcome::Answered(status, limits)),
            // Dropping the attempt drops its connection: a timed-out request is not reused.
            Ok(None) | Err(_) => (None, Outcome::NoAnswer),
        }
    }
}

/// Why a send got no answer.
enum SendError {
    /// The connection was closed before the request could go (a reused one, closed by the
    /// server while idle): safe to send again.
    BeforeAnswer,
    Failed,
}

type Sent = (Option<Connection>, StatusCode, RateLimitHeaders);

impl Endpoint {
    async fn send(
        &self,
        mut sender: Connection,
        body: &Bytes,
        gzipped: bool,
        headers: &HeaderMap,
    ) -> Result<Sent, SendError> {
        sender.ready().await.map_err(|_| SendError::BeforeAnswer)?;
        let mut request = Request::new(Full::new(body.clone()));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.path.clone();
        *request.headers_mut() = headers.clone();
        if gzipped {
            request.headers_mut().insert(
                http::header::CONTENT_ENCODING,
                HeaderValue::from_static("gzip"),
            );
        }
        let response = sender.send_request(request).await.map_err(|e| {
            if e.is_canceled() || e.is_closed() {
                SendError::BeforeAnswer
            } else {
                SendError::Failed
            }
        })?;
        let (parts, body) = response.into_parts();
        // Read (and discard) the body so the connection can be reused; a body that does not
        // end well leaves the connection unusable, not the answer.
        let reusable = body.collect().await.is_ok();
        let limits = RateLimitHeaders {
            sentry: header(&parts.headers, "x-sentry-rate-limits"),
            retry_after: header(&parts.headers, "retry-after"),
        };
        let sender = (reusable && !sender.is_closed()).then_some(sender);
        Ok((sender, parts.status, limits))
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `Host`, `X-Sentry-Auth` when there is one (marked sensitive, so it never shows in a
/// `Debug`), `Content-Type` and `User-Agent`.
fn post_headers(authority: &str, auth: Option<&str>) -> Option<HeaderMap> {
    let mut headers = HeaderMap::with_capacity(6);
    headers.insert(http::header::HOST, HeaderValue::from_str(authority).ok()?);
    if let Some(auth) = auth {
        let mut auth = HeaderValue::from_str(auth).ok()?;
        auth.set_sensitive(true);
        headers.insert(http::HeaderName::from_static("x-sentry-auth"), auth);
    }
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-sentry-envelope"),
    );
    headers.insert(
        http::header::USER_AGENT,
        HeaderValue::from_static(concat!("lighttrace/", env!("CARGO_PKG_VERSION"))),
    );
    Some(headers)
}

/// The sink's TLS setup (see `tls`) for `host`.
fn tls(host: &str) -> Option<Tls> {
    let config = super::tls::client_config(super::tls::mozilla_roots())?;
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).ok()?;
    Some(Tls { config, name })
}
