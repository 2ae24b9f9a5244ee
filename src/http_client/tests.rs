//! The client against real HTTP servers on 127.0.0.1, and targets decoded from YAML
//! as a configuration is.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::*;
use crate::base::diagnostics::testing::decoded_or_shown;
use crate::base::key_path::KeyPath;

/// An HTTP/1.1 server on an ephemeral port of 127.0.0.1, on the test's runtime:
///
/// - `/echo`: 200 with the method, the `Authorization`, `X-Api-Key` and `X-Trace`
///   headers it got (or `none`), the `Content-Type` and the body, a line each;
/// - `/to/PORT/STATUS`: a redirect with STATUS to `/echo` at 127.0.0.1:PORT;
/// - `/loop`: 302 to itself;
/// - `/status/CODE`: that status, with the body `as asked`;
/// - `/hang`: never answers.
async fn serve() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(answer);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn answer(
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let mut response = hyper::Response::new(Full::new(Bytes::new()));
    let mut reply = |status: u16, body: String| {
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        *response.body_mut() = Full::new(Bytes::from(body));
    };
    match path.split('/').collect::<Vec<_>>()[1..] {
        ["echo"] => {
            let shown = |name: &str| match request.headers().get(name) {
                Some(value) => value.to_str().unwrap_or("?").to_owned(),
                None => "none".to_owned(),
            };
            let head = ["authorization", "x-api-key", "x-trace", "content-type"]
                .map(|name| format!("{name}: {}\n", shown(name)))
                .concat();
            let method = request.method().to_string();
            let body = request.into_body().collect().await.unwrap().to_bytes();
            let body = String::from_utf8_lossy(&body);
            reply(200, format!("method: {method}\n{head}body: {body}\n"));
        }
        ["to", port, status] => {
            reply(status.parse().unwrap(), String::new());
            let location = format!("http://127.0.0.1:{port}/echo");
            response
                .headers_mut()
                .insert("location", location.parse().unwrap());
        }
        ["loop"] => {
            reply(302, String::new());
            response
                .headers_mut()
                .insert("location", "/loop".parse().unwrap());
        }
        ["status", code] => reply(code.parse().unwrap(), "as asked\n".to_owned()),
        ["hang"] => std::future::pending().await,
        _ => reply(404, "no such path\n".to_owned()),
    }
    Ok(response)
}

/// Decodes a target from YAML as a configuration is; the errors as they are shown.
fn decode(yaml: &str) -> Result<HttpTarget, Vec<String>> {
    decoded_or_shown(yaml, |value, diag| {
        diag.decode::<HttpTarget>(value, &KeyPath::root())
    })
}

fn sender(yaml: &str) -> HttpSender {
    decode(yaml).unwrap().build().unwrap()
}

fn json(text: &str) -> Option<Payload> {
    Some(Payload::json(&text).unwrap())
}

#[tokio::test]
async fn a_target_sends_its_method_headers_and_body_with_secrets_from_the_environment() {
    // SAFETY: this test alone reads or writes this variable.
    unsafe { std::env::set_var("AEGIS_TEST_CLIENT_KEY", "k3y") };
    let server = serve().await;
    let target = sender(&format!(
        "url: http://{server}/echo\n\
         headers: {{ X-Api-Key: \"key ${{AEGIS_TEST_CLIENT_KEY}}\", X-Trace: t1 }}\n"
    ));
    let reply = target.send(json("hello")).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        String::from_utf8(reply.body).unwrap(),
        "method: POST\nauthorization: none\nx-api-key: key k3y\nx-trace: t1\n\
         content-type: application/json\nbody: \"hello\"\n"
    );
}

#[tokio::test]
async fn credentials_are_not_forwarded_to_another_origin_on_redirect() {
    // SAFETY: this test alone reads or writes this variable.
    unsafe { std::env::set_var("AEGIS_TEST_CLIENT_SECRET", "s3cret") };
    let (here, away) = (serve().await, serve().await);
    let headers = "headers: { Authorization: Bearer t0ken, X-Api-Key: \"${AEGIS_TEST_CLIENT_SECRET}\", X-Trace: t2 }";
    let reply = |to: SocketAddr| {
        let target = sender(&format!(
            "url: http://{here}/to/{}/307\n{headers}\n",
            to.port()
        ));
        async move {
            let reply = target.send(json("kept by a 307")).await.unwrap();
            String::from_utf8(reply.body).unwrap()
        }
    };
    // The same origin gets everything; another (another port) gets neither the
    // credential nor the value from the environment, but the rest and the body.
    assert_eq!(
        reply(here).await,
        "method: POST\nauthorization: Bearer t0ken\nx-api-key: s3cret\nx-trace: t2\n\
         content-type: application/json\nbody: \"kept by a 307\"\n"
    );
    assert_eq!(
        reply(away).await,
        "method: POST\nauthorization: none\nx-api-key: none\nx-trace: t2\n\
         content-type: application/json\nbody: \"kept by a 307\"\n"
    );
    // A 303 turns the POST into a GET and leaves the body behind.
    let target = sender(&format!(
        "url: http://{here}/to/{}/303\n{headers}\n",
        away.port()
    ));
    let body = target.send(json("dropped")).await.unwrap().body;
    assert!(
        String::from_utf8(body)
            .unwrap()
            .starts_with("method: GET\nauthorization: none\n"),
    );
}

#[tokio::test]
async fn refusals_timeouts_and_redirect_loops_are_errors_that_say_whether_to_retry() {
    let server = serve().await;
    let send = async |path: &str, timeout: &str| {
        let target = sender(&format!("url: http://{server}{path}\ntimeout: {timeout}\n"));
        target.send(None).await.unwrap_err()
    };
    let unavailable = send("/status/503", "10s").await;
    assert_eq!(
        unavailable.to_string(),
        "status 503 Service Unavailable: as asked"
    );
    assert!(unavailable.is_retryable());
    let missing = send("/status/404", "10s").await;
    assert!(!missing.is_retryable(), "{missing}");
    assert!(send("/status/429", "10s").await.is_retryable());
    let looped = send("/loop", "10s").await;
    assert_eq!(
        looped.to_string(),
        "status 302 Found, and more than 10 redirects"
    );
    assert!(!looped.is_retryable());
    let hung = send("/hang", "200ms").await;
    assert_eq!(hung.to_string(), "no reply within 200ms");
    assert!(hung.is_retryable());

    // Nothing listens on a port just freed: refused, with the cause said and no URL
    // (its query could hold a secret).
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let target = sender(&format!("url: http://{closed}/echo?token=s3cret\n"));
    let refused = target.send(None).await.unwrap_err();
    assert!(
        matches!(refused, SendError::Transport { .. }),
        "{refused:?}"
    );
    assert!(refused.is_retryable());
    let message = refused.to_string();
    assert!(message.contains("onnect"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
}

#[test]
fn targets_decode_with_located_errors_and_print_as_written() {
    // SAFETY: this test alone reads or writes this variable.
    unsafe { std::env::set_var("AEGIS_TEST_CLIENT_PRINTED", "never shown") };
    let yaml = "\
url: https://hooks.example/x?a=1
method: put
headers: { X-Api-Key: \"${AEGIS_TEST_CLIENT_PRINTED}\" }
";
    let target = decode(yaml).unwrap();
    assert_eq!(target.method.method(), reqwest::Method::PUT);
    assert!(target.tls_verify);
    assert_eq!(target.timeout, Duration::from_secs(10));
    let printed = serde_norway::to_string(&target).unwrap();
    assert_eq!(
        printed,
        "url: https://hooks.example/x?a=1\nmethod: PUT\nheaders:\n  X-Api-Key: ${AEGIS_TEST_CLIENT_PRINTED}\ntimeout: 10s\ntls_verify: true\n"
    );
    let debug = format!("{target:?}");
    assert!(!debug.contains("never shown"), "{debug}");

    let errors = decode(
        "\
url: hooks.example/x
method: \"P OST\"
headers: { X-Token: \"${AEGIS_TEST_CLIENT_UNSET}\" }
timeout: 0s
",
    )
    .unwrap_err();
    assert_eq!(
        errors,
        [
            "c.yaml:1:6: url: invalid URL `hooks.example/x`: relative URL without a base",
            "c.yaml:2:9: method: invalid HTTP method `P OST`",
            "c.yaml:3:21: headers.X-Token: environment variable `AEGIS_TEST_CLIENT_UNSET` (named in a header value) is not set",
            "c.yaml:4:10: timeout: invalid duration `0s`: must be greater than zero",
        ]
    );
    // The first bad header of a mapping is reported (decoding leaves the rest out).
    let header_error = |headers: &str| {
        let errors = decode(&format!("url: http://a.example\nheaders: {headers}\n"));
        errors.unwrap_err().join("\n")
    };
    assert_eq!(
        header_error("{ Bad Name: x }"),
        "c.yaml:2:22: headers.Bad Name: invalid header name `Bad Name`"
    );
    assert_eq!(
        header_error("{ X-Open: \"${AEGIS_TEST\" }"),
        "c.yaml:2:20: headers.X-Open: unclosed `${` in header value `${AEGIS_TEST`; write `${NAME}`"
    );
}

#[test]
fn retry_after_is_seconds_or_an_http_date() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
    let wait = |text: &str| retry_after(&HeaderValue::from_str(text).unwrap(), now);
    assert_eq!(wait("120"), Some(Duration::from_secs(120)));
    assert_eq!(wait(" 0 "), Some(Duration::ZERO));
    assert_eq!(
        wait("Sun, 06 Nov 1994 08:51:07 GMT"),
        Some(Duration::from_secs(90))
    );
    assert_eq!(wait("Sun, 06 Nov 1994 08:00:00 GMT"), Some(Duration::ZERO));
    assert_eq!(wait("soon"), None);
    assert_eq!(wait("-5"), None);
}
