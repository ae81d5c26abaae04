//! The HTTP endpoint: Prometheus metrics, liveness and readiness, a JSON status page, and the
//! admin actions (drain, undrain). Loopback by default; nothing here is on the DNS path.

pub mod client;
mod status;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use hickory_proto::rr::Name;

use crate::metrics::Metrics;
use crate::zone::{DrainError, MemberSelector, Snapshot};

/// What the endpoint reads.
pub struct HttpState {
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub metrics: Arc<Metrics>,
    /// Set once the configuration is loaded and the first probe round is done.
    pub ready: Arc<AtomicBool>,
    /// Bearer token that admin actions need; without one they are allowed only from loopback.
    pub admin_token: Option<String>,
    /// Bumped after a drain so that live-set gauges follow.
    pub changes: tokio::sync::watch::Sender<u64>,
    /// The cluster watches of pools that discover their members, for /status.
    pub discovery: crate::discover::WatchStatus,
    /// The refresh state of secondary zones, for /status.
    pub secondaries: crate::transfer::secondary::SecondaryStatus,
}

/// The body of every response: the whole text at once.
pub type Body = Full<Bytes>;

/// Serves HTTP on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, state: Arc<HttpState>, shutdown: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    warn!(%error, "http accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let state = state.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(&state, peer, &request)) }
            });
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(%peer, %error, "http connection ended with an error");
            }
        });
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}

/// The response to `request` from `peer`: the endpoint's whole routing and admin handling,
/// which reads the method, the path, the query string and the headers, never the body (so any
/// body type will do: the fuzz target passes requests without a socket).
pub fn route<B>(state: &HttpState, peer: SocketAddr, request: &Request<B>) -> Response<Body> {
    let path = request.uri().path();
    match (request.method(), path) {
        (&Method::GET, "/metrics") => text(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            state.metrics.encode(),
        ),
        (&Method::GET, "/healthz") => plain(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => {
            if state.ready.load(Ordering::Acquire) {
                plain(StatusCode::OK, "ready\n")
            } else {
                plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: the first probe round is running\n",
                )
            }
        }
        (&Method::GET, "/status") => json(
            StatusCode::OK,
            &status::status(
                &state.snapshot.load(),
                state.ready.load(Ordering::Acquire),
                &state.discovery,
                &state.secondaries,
            ),
        ),
        (&Method::POST, "/drain") => admin(state, peer, request, true),
        (&Method::POST, "/undrain") => admin(state, peer, request, false),
        (_, "/metrics" | "/healthz" | "/readyz" | "/status" | "/drain" | "/undrain") => {
            plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => plain(
            StatusCode::NOT_FOUND,
            "not found; try /metrics, /healthz, /readyz, /status\n",
        ),
    }
}

/// POST /drain?pool=NAME&member=ADDRESS (and /undrain): takes effect before the reply is sent.
fn admin<B>(
    state: &HttpState,
    peer: SocketAddr,
    request: &Request<B>,
    drain: bool,
) -> Response<Body> {
    if let Some(refusal) = authorize(state, peer, request) {
        return refusal;
    }
    let query = request.uri().query().unwrap_or("");
    let parameter = |key: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    };
    let (Some(pool), Some(member)) = (parameter("pool"), parameter("member")) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "expected ?pool=NAME&member=ADDRESS\n",
        );
    };
    let snapshot = state.snapshot.load();
    match drain_member(&snapshot, &pool, &member, drain) {
        Ok(changed) => {
            state.changes.send_modify(|generation| *generation += 1);
            let action = if drain { "drained" } else { "undrained" };
            info!(pool = %pool, member = %member, changed, "member {action} by the operator");
            json(
                StatusCode::OK,
                &serde_json::json!({ "pool": pool, "member": member, "drained": drain, "changed": changed }),
            )
        }
        Err(error) => plain(StatusCode::NOT_FOUND, &format!("{error}\n")),
    }
}

/// Drains or undrains a member named by the admin request's words: `pool` may omit the
/// trailing dot; `member` is an address, optionally with its port.
fn drain_member(
    snapshot: &Snapshot,
    pool: &str,
    member: &str,
    drain: bool,
) -> Result<bool, DrainError> {
    let wanted = pool.trim_end_matches('.').to_ascii_lowercase() + ".";
    let pool = Name::from_ascii(&wanted).map_err(|_| DrainError::NoPool(wanted.clone()))?;
    let selector = member
        .parse()
        .map(MemberSelector::Socket)
        .or_else(|_| member.parse().map(MemberSelector::Address));
    match selector {
        Ok(selector) => snapshot.set_drained(&pool, selector, drain),
        // An address that does not parse names no member, of a pool that may not exist either.
        Err(_) if snapshot.pools().any(|p| p.config.name == pool) => Err(DrainError::NoMember {
            pool,
            member: member.to_string(),
        }),
        Err(_) => Err(DrainError::NoPool(wanted)),
    }
}

/// Admin actions need the token when one is configured, and otherwise a loopback client.
fn authorize<B>(
    state: &HttpState,
    peer: SocketAddr,
    request: &Request<B>,
) -> Option<Response<Body>> {
    match &state.admin_token {
        Some(token) => {
            let expected = format!("Bearer {token}");
            let given = request
                .headers()
                .get(hyper::header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok());
            if given.is_some_and(|given| constant_time_eq(given.as_bytes(), expected.as_bytes())) {
                None
            } else {
                Some(plain(
                    StatusCode::UNAUTHORIZED,
                    "admin actions need Authorization: Bearer <admin_token>\n",
                ))
            }
        }
        None if peer.ip().is_loopback() => None,
        None => Some(plain(
            StatusCode::FORBIDDEN,
            "admin actions are allowed from loopback only unless [server] admin_token is set\n",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn plain(status: StatusCode, body: &str) -> Response<Body> {
    text(status, "text/plain; charset=utf-8", body.to_string())
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut body = serde_json::to_string_pretty(value).unwrap_or_else(|_| "{}".to_string());
    body.push('\n');
    text(status, "application/json", body)
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}
