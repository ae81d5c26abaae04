//! The answers: authentication, discovery documents, EndpointSlice list and get, and the
//! hand-off of watches to `watch`; errors as `Status` objects, as kube-apiserver sends them.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Response};
use serde_json::{Value, json};

use super::serve::Connection;
use super::store::{GROUP_VERSION, KIND, Selector};
use super::{Auth, Request, Shared, Verb, watch};

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(super) type Body = BoxBody<Bytes, BoxError>;

/// A request's query parameters, percent-decoded.
pub(super) type Query = BTreeMap<String, String>;

pub(super) async fn answer(
    request: hyper::Request<Incoming>,
    connection: Arc<Connection>,
    shared: Arc<Shared>,
) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_string();
    let query = parse_query(request.uri().query().unwrap_or(""));
    let auth = authenticate(&request, &connection, &shared);
    let (verb, response) = route(request.method(), &path, &query, auth, &shared);
    if verb == Verb::Unknown {
        eprintln!(
            "kube-standin {}: no route for {} {}",
            connection.server,
            request.method(),
            request.uri()
        );
    }
    shared.requests.lock().expect("requests").push(Request {
        server: connection.server,
        verb,
        method: request.method().to_string(),
        path: request
            .uri()
            .path_and_query()
            .map_or(path, |p| p.to_string()),
        resource_version: query.get("resourceVersion").cloned(),
        auth,
        status: response.status().as_u16(),
        http2: connection.http2,
    });
    shared.requests_changed.notify_all();
    Ok(response)
}

/// kube-apiserver's order: the client certificate (verified in the handshake), then the
/// bearer token.
fn authenticate(
    request: &hyper::Request<Incoming>,
    connection: &Connection,
    shared: &Shared,
) -> Option<Auth> {
    if connection.client_cert {
        return Some(Auth::ClientCert);
    }
    let bearer = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    (bearer == Some(shared.pki.token())).then_some(Auth::Token)
}

fn route(
    method: &Method,
    path: &str,
    query: &Query,
    auth: Option<Auth>,
    shared: &Arc<Shared>,
) -> (Verb, Response<Body>) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let verb = verb_of(&segments, query);
    if auth.is_none() {
        return (verb, status(401, "Unauthorized", "Unauthorized"));
    }
    if verb == Verb::Unknown {
        return (
            verb,
            status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
        );
    }
    if method != Method::GET {
        let message =
            format!("the server does not allow this method on the requested resource: {method}");
        return (verb, status(405, "MethodNotAllowed", &message));
    }
    let response = match segments.as_slice() {
        ["version"] => json_response(200, &version()),
        ["api"] => json_response(200, &api_versions()),
        ["apis"] => json_response(200, &group_list()),
        ["apis", "discovery.k8s.io"] => json_response(200, &group()),
        ["apis", "discovery.k8s.io", "v1"] => json_response(
            200,
            &resource_list(GROUP_VERSION, &[endpointslices_resource()]),
        ),
        ["apis", "discovery.k8s.io", "v1", "endpointslices"] => collection(None, query, shared),
        [
            "apis",
            "discovery.k8s.io",
            "v1",
            "namespaces",
            namespace,
            "endpointslices",
        ] => collection(Some(namespace), query, shared),
        [
            "apis",
            "discovery.k8s.io",
            "v1",
            "namespaces",
            namespace,
            "endpointslices",
            name,
        ] => get(namespace, name, shared),
        _ => status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    };
    (verb, response)
}

fn verb_of(segments: &[&str], query: &Query) -> Verb {
    let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    match segments {
        ["version"]
        | ["api"]
        | ["api", "v1"]
        | ["apis"]
        | ["apis", "discovery.k8s.io"]
        | ["apis", "discovery.k8s.io", "v1"] => Verb::Discovery,
        ["apis", "discovery.k8s.io", "v1", "endpointslices"]
        | [
            "apis",
            "discovery.k8s.io",
            "v1",
            "namespaces",
            _,
            "endpointslices",
        ] => {
            if watching {
                Verb::Watch
            } else {
                Verb::List
            }
        }
        [
            "apis",
            "discovery.k8s.io",
            "v1",
            "namespaces",
            _,
            "endpointslices",
            _,
        ] => Verb::Get,
        _ => Verb::Unknown,
    }
}

/// Which objects a list or watch selects: its namespace (`None`: all), `labelSelector`, and
/// the `fieldSelector`s kubectl sends (`metadata.name`, `metadata.namespace`).
pub(super) struct Filter {
    namespace: Option<String>,
    labels: Selector,
    name: Option<String>,
}

impl Filter {
    fn new(namespace: Option<&str>, query: &Query) -> Result<Self, String> {
        let labels = Selector::parse(query.get("labelSelector").map_or("", String::as_str))?;
        let mut filter = Self {
            namespace: namespace.map(str::to_string),
            labels,
            name: None,
        };
        let fields = query.get("fieldSelector").map_or("", String::as_str);
        for field in fields.split(',').filter(|f| !f.is_empty()) {
            match field.split_once('=') {
                Some(("metadata.name", name)) => {
                    filter.name = Some(name.trim_start_matches('=').into())
                }
                Some(("metadata.namespace", namespace)) => {
                    let namespace = namespace.trim_start_matches('=');
                    if filter.namespace.as_deref().is_some_and(|n| n != namespace) {
                        filter.name = Some(String::new());
                    }
                    filter.namespace = Some(namespace.into());
                }
                _ => return Err(format!("field label not supported: {field}")),
            }
        }
        Ok(filter)
    }

    pub fn matches(&self, object: &Value) -> bool {
        let metadata = &object["metadata"];
        self.namespace
            .as_deref()
            .is_none_or(|namespace| metadata["namespace"] == namespace)
            && self
                .name
                .as_deref()
                .is_none_or(|name| metadata["name"] == name)
            && self.labels.matches(object)
    }
}

fn collection(namespace: Option<&str>, query: &Query, shared: &Arc<Shared>) -> Response<Body> {
    let filter = match Filter::new(namespace, query) {
        Ok(filter) => filter,
        Err(message) => return status(400, "BadRequest", &message),
    };
    if matches!(query.get("watch").map(String::as_str), Some("true" | "1")) {
        return match watch::start(shared, filter, query) {
            Ok(response) => response,
            Err((code, reason, message)) => status(code, reason, &message),
        };
    }
    let store = shared.store.lock().expect("store");
    // An exact list is served from history, which compaction removes; the other semantics
    // ("any", "not older than") are served from the current state.
    if query.get("resourceVersionMatch").map(String::as_str) == Some("Exact") {
        let requested = query.get("resourceVersion").and_then(|rv| rv.parse().ok());
        let Some(requested) = requested else {
            return status(
                400,
                "BadRequest",
                "resourceVersionMatch=Exact needs a resourceVersion",
            );
        };
        if let Err(expired) = store.check_start(requested) {
            return status(410, "Expired", &expired_message(&expired));
        }
    }
    let items: Vec<Value> = store
        .slices()
        .into_iter()
        .filter(|slice| filter.matches(slice))
        .map(|mut slice| {
            // List items carry no kind or apiVersion: the list's say it.
            if let Some(object) = slice.as_object_mut() {
                object.remove("kind");
                object.remove("apiVersion");
            }
            slice
        })
        .collect();
    json_response(
        200,
        &json!({
            "kind": "EndpointSliceList",
            "apiVersion": GROUP_VERSION,
            "metadata": {"resourceVersion": store.resource_version().to_string()},
            "items": items,
        }),
    )
}

fn get(namespace: &str, name: &str, shared: &Shared) -> Response<Body> {
    let slice = if namespace == "default" {
        shared.store.lock().expect("store").slice(name)
    } else {
        None
    };
    match slice {
        Some(slice) => json_response(200, &slice),
        None => status(
            404,
            "NotFound",
            &format!("endpointslices.discovery.k8s.io \"{name}\" not found"),
        ),
    }
}

pub(super) fn expired_message(expired: &super::store::Expired) -> String {
    format!(
        "too old resource version: {} ({})",
        expired.requested, expired.oldest
    )
}

/// A `Status` object: how the API reports every failure.
pub(super) fn status_object(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

pub(super) fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    json_response(code, &status_object(code, reason, message))
}

fn json_response(code: u16, value: &Value) -> Response<Body> {
    let body = Full::new(Bytes::from(value.to_string()))
        .map_err(|never| match never {})
        .boxed();
    Response::builder()
        .status(code)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(body)
        .expect("a valid response")
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-standin",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn api_versions() -> Value {
    json!({
        "kind": "APIVersions",
        // No core group: the stand-in serves none of its resources, and an empty v1 would
        // make client-go's discovery report "received empty response for: v1".
        "versions": [],
        "serverAddressByClientCIDRs": [],
    })
}

fn group() -> Value {
    let version = json!({"groupVersion": GROUP_VERSION, "version": "v1"});
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": "discovery.k8s.io",
        "versions": [version],
        "preferredVersion": version,
    })
}

fn group_list() -> Value {
    let mut group = group();
    if let Some(group) = group.as_object_mut() {
        group.remove("kind");
        group.remove("apiVersion");
    }
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]})
}

fn endpointslices_resource() -> Value {
    json!({
        "name": "endpointslices",
        "singularName": "endpointslice",
        "namespaced": true,
        "kind": KIND,
        "verbs": ["get", "list", "watch"],
    })
}

fn resource_list(group_version: &str, resources: &[Value]) -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}

fn parse_query(query: &str) -> Query {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; a `%` not
/// followed by two hex digits stays as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|pair| pair.iter().all(u8::is_ascii_hexdigit))
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 2;
            }
            (byte, _) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_percent_decoded() {
        let query = parse_query(
            "labelSelector=kubernetes.io%2Fservice-name%3Dkubernetes&watch=1&x=%zz+y&y=%+1",
        );
        assert_eq!(
            query["labelSelector"],
            "kubernetes.io/service-name=kubernetes"
        );
        assert_eq!(query["watch"], "1");
        assert_eq!(query["x"], "%zz y");
        assert_eq!(query["y"], "% 1");
    }
}
