//! Arbitrary bytes as an HTTP/1 request to the admin endpoint, parsed as hyper parses them
//! (`httparse`), then routed by `apidns::http::route` without a socket: never a panic, only the
//! statuses the endpoint gives, and no admin action for a client that is not allowed one.
//!
//! The first byte picks who asks: bit 0 a loopback peer (else a remote one), bit 1 a server
//! configured with an admin token (else none). The rest is the request head.
#![no_main]

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use apidns::http::{HttpState, route};
use apidns::metrics::Metrics;
use arc_swap::ArcSwap;
use hyper::{Request, StatusCode};
use libfuzzer_sys::fuzz_target;

const LOOPBACK: u8 = 1;
const WITH_TOKEN: u8 = 2;
const TOKEN: &str = "fuzz-token";

/// The endpoint's state, with and without a token, over the example zone. Built once: drains
/// persist between runs, which changes only the `changed` flag of later answers.
fn state(with_token: bool) -> &'static HttpState {
    static STATES: OnceLock<[HttpState; 2]> = OnceLock::new();
    let states = STATES.get_or_init(|| {
        let snapshot = Arc::new(ArcSwap::from_pointee(testkit::snapshot::example()));
        let make = |admin_token: Option<String>| HttpState {
            snapshot: snapshot.clone(),
            metrics: Arc::new(Metrics::new()),
            ready: Arc::new(AtomicBool::new(true)),
            admin_token,
            changes: tokio::sync::watch::channel(0).0,
            discovery: apidns::discover::WatchStatus::default(),
            secondaries: Default::default(),
        };
        [make(None), make(Some(TOKEN.to_string()))]
    });
    &states[usize::from(with_token)]
}

/// The request `head` holds, as hyper would hand it to the service; `None` for what hyper
/// rejects before (a head that does not parse, an invalid method, URI or header).
fn request(head: &[u8]) -> Option<Request<()>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Request::new(&mut headers);
    parsed.parse(head).ok()?;
    let mut builder = Request::builder()
        .method(parsed.method?.as_bytes())
        .uri(parsed.path?);
    for header in parsed.headers.iter() {
        builder = builder.header(header.name, header.value);
    }
    builder.body(()).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, head)) = data.split_first() else {
        return;
    };
    let Some(request) = request(head) else {
        return;
    };
    let peer: SocketAddr = if flags & LOOPBACK != 0 {
        "127.0.0.1:40000"
    } else {
        "192.0.2.200:40000"
    }
    .parse()
    .expect("a socket address");
    let with_token = flags & WITH_TOKEN != 0;
    let response = route(state(with_token), peer, &request);
    let status = response.status();
    assert!(
        [
            StatusCode::OK,
            StatusCode::BAD_REQUEST,
            StatusCode::UNAUTHORIZED,
            StatusCode::FORBIDDEN,
            StatusCode::NOT_FOUND,
            StatusCode::METHOD_NOT_ALLOWED,
            StatusCode::SERVICE_UNAVAILABLE,
        ]
        .contains(&status),
        "{status}"
    );
    assert!(response.headers().contains_key(hyper::header::CONTENT_TYPE));
    let path = request.uri().path();
    let admin = request.method() == hyper::Method::POST && matches!(path, "/drain" | "/undrain");
    if admin {
        let allowed = if with_token {
            request
                .headers()
                .get(hyper::header::AUTHORIZATION)
                .is_some_and(|value| value.as_bytes() == format!("Bearer {TOKEN}").as_bytes())
        } else {
            peer.ip().is_loopback()
        };
        if !allowed {
            assert!(
                matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
                "an admin action for a client without the right: {status}"
            );
        }
    }
});
