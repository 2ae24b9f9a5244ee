//! Real servers on 127.0.0.1 ephemeral ports for the probe tests: an HTTP server
//! (hyper, also over TLS), gRPC servers (tonic, with and without the health service) and TCP
//! listeners, each run on its own small runtime for as long as the test holds it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::runtime::Runtime;
use tonic_health::ServingStatus;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("test runtime")
}

/// An HTTP/1.1 server whose paths each behave one way:
///
/// - `/ok`: 200 `ok`;
/// - `/status/CODE`: that status;
/// - `/flaky/N`: 503 for the first N requests to that path, then 200;
/// - `/hang`: never answers;
/// - `/body`: 200 with `{"status": "degraded"}`;
/// - `/redirect`: 302 to `/ok`;
/// - `/redirect-to/PORT`: 302 to `/auth` on another server, at 127.0.0.1:PORT;
/// - `/auth`: for a GET, 200 with `auth: ` and the `Authorization` header it got and
///   `key: ` and the `X-Api-Key` one (or `none`); 405 for any other method.
///
/// Every request's path and arrival time is recorded.
pub struct HttpServer {
    pub addr: SocketAddr,
    /// `http`, or `https` for [`HttpServer::start_tls`].
    scheme: &'static str,
    hits: Arc<Mutex<Vec<(String, Instant)>>>,
    _runtime: Runtime,
}

impl HttpServer {
    pub fn start() -> HttpServer {
        HttpServer::serve(None)
    }

    /// The same over TLS, with a self-signed certificate for 127.0.0.1: clients that
    /// verify certificates refuse it.
    pub fn start_tls() -> HttpServer {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
            .expect("a self-signed certificate");
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .expect("TLS configuration");
        HttpServer::serve(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }

    fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> HttpServer {
        let runtime = runtime();
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let hits: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let served = Arc::clone(&hits);
        let scheme = if tls.is_some() { "https" } else { "http" };
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let hits = Arc::clone(&served);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let hits = Arc::clone(&hits);
                        async move { answer(request, &hits).await }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    let _ = match tls {
                        None => http.serve_connection(TokioIo::new(stream), service).await,
                        Some(tls) => match tls.accept(stream).await {
                            Ok(stream) => {
                                http.serve_connection(TokioIo::new(stream), service).await
                            }
                            Err(_) => return, // a client that refused the certificate
                        },
                    };
                });
            }
        });
        HttpServer {
            addr,
            scheme,
            hits,
            _runtime: runtime,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// When each request for `path` arrived.
    pub fn arrivals(&self, path: &str) -> Vec<Instant> {
        let hits = self.hits.lock().unwrap_or_else(PoisonError::into_inner);
        hits.iter()
            .filter(|(p, _)| p == path)
            .map(|(_, at)| *at)
            .collect()
    }
}

async fn answer(
    request: Request<Incoming>,
    hits: &Mutex<Vec<(String, Instant)>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let earlier = {
        let mut hits = hits.lock().unwrap_or_else(PoisonError::into_inner);
        let earlier = hits.iter().filter(|(p, _)| *p == path).count();
        hits.push((path.clone(), Instant::now()));
        earlier
    };
    let reply = |status: u16, body: &'static str| {
        let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *response.status_mut() = StatusCode::from_u16(status).expect("valid status");
        response
    };
    let response = match path.split('/').collect::<Vec<_>>()[1..] {
        ["ok"] => reply(200, "ok\n"),
        ["status", code] => reply(code.parse().unwrap_or(500), "as asked\n"),
        ["flaky", failures] if earlier < failures.parse().unwrap_or(0) => reply(503, "not yet\n"),
        ["flaky", _] => reply(200, "ok now\n"),
        ["hang"] => std::future::pending().await,
        ["body"] => reply(200, "{\"status\": \"degraded\"}\n"),
        ["redirect"] => redirect("/ok".to_owned()),
        ["redirect-to", port] => redirect(format!("http://127.0.0.1:{port}/auth")),
        ["auth"] if request.method() != hyper::Method::GET => reply(405, "GET only\n"),
        ["auth"] => {
            let shown = |name: &str| match request.headers().get(name) {
                Some(value) => value.to_str().unwrap_or("?").to_owned(),
                None => "none".to_owned(),
            };
            let body = format!(
                "auth: {}\nkey: {}\n",
                shown("authorization"),
                shown("x-api-key")
            );
            Response::new(Full::new(Bytes::from(body)))
        }
        _ => reply(404, "no such path\n"),
    };
    Ok(response)
}

fn redirect(location: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::FOUND;
    let location = location.parse().expect("header value");
    response.headers_mut().insert("location", location);
    response
}

/// A gRPC server with the standard health service: the whole server and
/// `shop.Orders` are SERVING, `shop.Billing` is NOT_SERVING; any other name is
/// unknown to it.
pub struct GrpcServer {
    pub addr: SocketAddr,
    _runtime: Runtime,
}

impl GrpcServer {
    pub fn with_health() -> GrpcServer {
        let runtime = runtime();
        let (reporter, service) = tonic_health::server::health_reporter();
        runtime.block_on(async {
            reporter
                .set_service_status("shop.Orders", ServingStatus::Serving)
                .await;
            reporter
                .set_service_status("shop.Billing", ServingStatus::NotServing)
                .await;
        });
        let routes = tonic::service::Routes::new(service);
        GrpcServer::serve(runtime, routes)
    }

    /// A gRPC server with no services at all: every call is UNIMPLEMENTED.
    pub fn without_health() -> GrpcServer {
        GrpcServer::serve(runtime(), tonic::service::Routes::default())
    }

    fn serve(runtime: Runtime, routes: tonic::service::Routes) -> GrpcServer {
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        runtime.spawn(
            tonic::transport::Server::builder()
                .add_routes(routes)
                .serve_with_incoming(incoming),
        );
        GrpcServer {
            addr,
            _runtime: runtime,
        }
    }
}

/// A TCP server that answers `PING` with `+PONG`, `BINARY` with bytes that are not
/// text, and anything else with `-ERR`.
pub struct TcpServer {
    pub addr: SocketAddr,
    _runtime: Runtime,
}

impl TcpServer {
    pub fn start() -> TcpServer {
        let runtime = runtime();
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        runtime.spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 64];
                    let n = stream.read(&mut request).await.unwrap_or(0);
                    let reply: &[u8] = if request[..n].starts_with(b"PING") {
                        b"+PONG\r\n"
                    } else if request[..n].starts_with(b"BINARY") {
                        b"\x00\x01\xfe\xffBIN\x1b[31m\r\n"
                    } else {
                        b"-ERR unknown command\r\n"
                    };
                    let _ = stream.write_all(reply).await;
                });
            }
        });
        TcpServer {
            addr,
            _runtime: runtime,
        }
    }
}

/// A port where connecting never completes: a listener that never accepts, its
/// backlog filled, so that the kernel drops further connection attempts unanswered.
pub struct Blackhole {
    pub addr: SocketAddr,
    _listener: std::net::TcpListener,
    _queued: Vec<std::net::TcpStream>,
}

impl Blackhole {
    pub fn start() -> Blackhole {
        let socket = TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.1:0".parse().expect("address"))
            .expect("bind");
        let addr = socket.local_addr().expect("address");
        let runtime = runtime();
        let listener = runtime
            .block_on(async { socket.listen(0) })
            .expect("listen");
        let listener = listener.into_std().expect("std listener");
        // With a backlog of 0 Linux queues one connection; fill it, and a little more.
        let queued = (0..2)
            .filter_map(|_| {
                std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(300))
                    .ok()
            })
            .collect();
        Blackhole {
            addr,
            _listener: listener,
            _queued: queued,
        }
    }
}

/// A port nothing listens on, held (bound, not listening) for as long as the test
/// holds it, so that no other test can take it meanwhile: connecting is refused.
pub struct ClosedPort {
    pub addr: SocketAddr,
    _socket: TcpSocket,
}

impl ClosedPort {
    pub fn new() -> ClosedPort {
        let socket = TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.1:0".parse().expect("address"))
            .expect("bind");
        ClosedPort {
            addr: socket.local_addr().expect("address"),
            _socket: socket,
        }
    }
}
