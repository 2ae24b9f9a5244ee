//! The direct way for plain-HTTP checks with a new connection per attempt: HTTP/1.1
//! with hyper's client on a connection of the attempt's own, driven by the attempt
//! itself. No pool, no connection task, no TLS set-up: those make up most of what a
//! client costs per probe (`benches/probes.sh`, `docs/benchmarks.md`). Everything
//! else goes through the shared client.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use reqwest::header::{self, HeaderValue};

use crate::base::event::ProbeStatus;
use crate::http_client::{Fetched, Request, USER_AGENT, followed_location, keep};
use crate::sources::probe::attempt::Attempt;

/// Where a plain-HTTP check connects and what it asks for, worked out once.
pub(super) struct Direct {
    /// `host:port`, to resolve and connect to.
    address: String,
    /// The `Host` header: the host, and the port unless it is the default.
    host: HeaderValue,
    /// The path and query.
    target: hyper::Uri,
}

impl Direct {
    /// `None` for a URL the direct way does not take (not `http`, or with user
    /// information, which the client turns into an `Authorization` header).
    pub(super) fn new(url: &reqwest::Url) -> Option<Direct> {
        if url.scheme() != "http" || !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        Some(Direct {
            address: format!("{host}:{port}"),
            host: HeaderValue::from_str(&authority).ok()?,
            target: target.parse().ok()?,
        })
    }

    /// Sends `request` (whose URL is the one this was made from) and reads the answer
    /// as [`crate::http_client::fetch`] does. A probe's request has no body.
    pub(super) async fn fetch(
        &self,
        request: &Request,
        follow: bool,
        limit: usize,
    ) -> Result<Fetched, Attempt> {
        let stream = super::super::attempt::connect(&self.address).await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|err| Attempt::failed(&err))?;
        let mut sent = hyper::Request::new(Empty::<Bytes>::new());
        *sent.method_mut() = request.method.clone();
        *sent.uri_mut() = self.target.clone();
        let sent_headers = sent.headers_mut();
        sent_headers.insert(header::HOST, self.host.clone());
        sent_headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        sent_headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        sent_headers.extend(request.headers.clone());

        // The connection must be polled for the request to go out and the response to
        // come in. It is dropped, and so closed, once the body is in; asking for
        // `Connection: close` instead would make hyper shut the socket down first, a
        // system call more per probe for the same FIN.
        let mut connection = Driven::new(connection);
        let response = connection
            .run(sender.send_request(sent))
            .await
            .and_then(|response| response)
            .map_err(|err| Attempt::failed(&err))?;
        let status = response.status();
        let location = followed_location(follow, status, response.headers());
        let failed = |err: hyper::Error| {
            Attempt::failed(&err).with_status(ProbeStatus::Http(status.as_u16()))
        };
        let mut body = response.into_body();
        let mut kept = Vec::new();
        while location.is_none() && kept.len() < limit {
            match connection.run(body.frame()).await.map_err(failed)? {
                None => break,
                Some(Err(err)) => return Err(failed(err)),
                Some(Ok(frame)) => keep(
                    &mut kept,
                    frame.data_ref().map_or(&[][..], |data| data),
                    limit,
                ),
            }
        }
        Ok(Fetched {
            status,
            location,
            body: kept,
            // A check retries on its own policy, whatever the service asks.
            retry_after: None,
        })
    }
}

/// An HTTP/1 connection polled alongside the work that needs it.
struct Driven<C> {
    connection: std::pin::Pin<Box<C>>,
    ended: bool,
}

impl<C: Future<Output = Result<(), hyper::Error>>> Driven<C> {
    fn new(connection: C) -> Self {
        Driven {
            connection: Box::pin(connection),
            ended: false,
        }
    }

    /// Awaits `work` while polling the connection; the connection's error, if it fails
    /// first.
    async fn run<T>(&mut self, work: impl Future<Output = T>) -> Result<T, hyper::Error> {
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return Ok(done),
                ended = &mut self.connection, if !self.ended => {
                    self.ended = true;
                    ended?;
                }
            }
        }
    }
}
