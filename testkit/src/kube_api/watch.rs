//! Watch streams: a chunked (HTTP/1.1) or streamed (HTTP/2) body of newline-delimited
//! WatchEvents, fed by a task that wakes on every write to the store, sends bookmarks, ends at
//! `timeoutSeconds`, and breaks off when the cluster cuts watches.
//!
//! Where a watch starts, per the API reference: with no resourceVersion (or "0"), synthetic
//! ADDED events for every object that exists, then changes; from resourceVersion N, the
//! changes after N, or a single ERROR event (Status 410 Expired) when N's history is gone;
//! with `sendInitialEvents=true` (which needs `resourceVersionMatch=NotOlderThan` and
//! bookmarks), ADDED events for what exists, then a BOOKMARK annotated
//! `k8s.io/initial-events-end`; from a resourceVersion the cluster has not reached, a wait of
//! up to 3 s for it, then an ERROR event (504, cause `ResourceVersionTooLarge`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Response;
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Shared;
use super::routes::{Body, BoxError, Filter, Query, expired_message, status_object};
use super::store::{GROUP_VERSION, KIND};

type Line = Result<Bytes, std::io::Error>;

/// Starts a watch; `Err` is the status code, reason and message of a request that cannot be
/// one.
pub(super) fn start(
    shared: &Arc<Shared>,
    filter: Filter,
    query: &Query,
) -> Result<Response<Body>, (u16, &'static str, String)> {
    let flag = |name: &str| matches!(query.get(name).map(String::as_str), Some("true" | "1"));
    let bookmarks = flag("allowWatchBookmarks");
    let send_initial = flag("sendInitialEvents");
    if send_initial
        && (query.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan")
            || !bookmarks)
    {
        return Err((
            422,
            "Invalid",
            "sendInitialEvents=true needs resourceVersionMatch=NotOlderThan and allowWatchBookmarks=true".into(),
        ));
    }
    let timeout = match query.get("timeoutSeconds") {
        None => None,
        Some(seconds) => match seconds.parse::<u64>() {
            Ok(seconds) => Some(Duration::from_secs(seconds)),
            Err(_) => {
                return Err((
                    400,
                    "BadRequest",
                    format!("invalid timeoutSeconds {seconds:?}"),
                ));
            }
        },
    };
    let requested = match query.get("resourceVersion").map(String::as_str) {
        None | Some("" | "0") => None,
        Some(text) => match text.parse::<u64>() {
            Ok(version) => Some(version),
            Err(_) => {
                return Err((
                    400,
                    "BadRequest",
                    format!("invalid resourceVersion {text:?}"),
                ));
            }
        },
    };
    // Subscribed before the store is read, so that no write after the read goes unnoticed.
    let changed = shared.changed.subscribe();
    let cuts = shared.cuts.subscribe();
    let mut lines = Vec::new();
    let mut sent;
    let mut wait_for = None;
    {
        let store = shared.store.lock().expect("store");
        sent = store.resource_version();
        match requested {
            Some(version) if !send_initial && version > sent => {
                wait_for = Some(version);
                sent = version;
            }
            Some(version) if !send_initial => match store.check_start(version) {
                Err(expired) => {
                    // The watch cache answers 200 and reports the error in the stream.
                    let status = status_object(410, "Expired", &expired_message(&expired));
                    return Ok(stream_response(vec![event_line("ERROR", &status)], None));
                }
                Ok(()) => {
                    let events = store.events_after(version).unwrap_or_default();
                    for event in events.iter().filter(|event| filter.matches(&event.object)) {
                        lines.push(event_line(event.kind, &event.object));
                    }
                }
            },
            _ => {
                for slice in store.slices().iter().filter(|slice| filter.matches(slice)) {
                    lines.push(event_line("ADDED", slice));
                }
                if send_initial {
                    lines.push(bookmark_line(sent, true));
                }
            }
        }
    }
    let (sender, receiver) = mpsc::channel(64);
    let watch = Watch {
        shared: shared.clone(),
        filter,
        sent,
        wait_for,
        bookmarks: bookmarks.then(|| *shared.bookmark_interval.lock().expect("interval")),
        deadline: timeout.map(|timeout| Instant::now() + timeout),
        sender,
    };
    let guard = OpenWatch::new(shared.clone());
    tokio::spawn(async move {
        watch.run(lines, changed, cuts).await;
        drop(guard);
    });
    Ok(stream_response(Vec::new(), Some(receiver)))
}

struct Watch {
    shared: Arc<Shared>,
    filter: Filter,
    /// Every change up to this resourceVersion has been sent.
    sent: u64,
    /// A resourceVersion newer than the store's, which the watch waits for before it starts.
    wait_for: Option<u64>,
    bookmarks: Option<Duration>,
    deadline: Option<Instant>,
    sender: mpsc::Sender<Line>,
}

impl Watch {
    async fn run(
        mut self,
        first: Vec<Bytes>,
        mut changed: tokio::sync::watch::Receiver<u64>,
        mut cuts: tokio::sync::watch::Receiver<u64>,
    ) {
        if !self.send(first).await {
            return;
        }
        if let Some(wanted) = self.wait_for {
            let reached = tokio::time::timeout(
                TOO_LARGE_WAIT,
                changed.wait_for(|current| *current >= wanted),
            )
            .await
            .is_ok_and(|reached| reached.is_ok());
            if !reached {
                let current = *changed.borrow();
                let _ = self.send(vec![too_large(wanted, current)]).await;
                return;
            }
            if !self.catch_up(false).await {
                return;
            }
        }
        let mut bookmark = self.bookmarks.map(|every| {
            let mut interval = tokio::time::interval_at(Instant::now() + every, every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        });
        loop {
            tokio::select! {
                () = self.sender.closed() => return,
                changed = changed.changed() => {
                    if changed.is_err() || !self.catch_up(false).await {
                        return;
                    }
                }
                _ = cuts.changed() => {
                    // An error in the body makes hyper abort the stream: no last chunk, or
                    // an HTTP/2 reset.
                    let _ = self.sender.send(Err(std::io::Error::other("watch cut"))).await;
                    return;
                }
                _ = tick(bookmark.as_mut()) => {
                    if !self.catch_up(true).await {
                        return;
                    }
                }
                () = sleep_until(self.deadline) => return,
            }
        }
    }

    /// Sends the changes not yet sent (and a bookmark when asked); false once the stream is
    /// over: the client left, or the history it needed is gone.
    async fn catch_up(&mut self, bookmark: bool) -> bool {
        let mut lines = Vec::new();
        let mut expired = false;
        {
            let store = self.shared.store.lock().expect("store");
            match store.events_after(self.sent) {
                Ok(events) => {
                    for event in events.iter().filter(|e| self.filter.matches(&e.object)) {
                        lines.push(event_line(event.kind, &event.object));
                    }
                    self.sent = store.resource_version();
                    if bookmark {
                        lines.push(bookmark_line(self.sent, false));
                    }
                }
                Err(gone) => {
                    let status = status_object(410, "Expired", &expired_message(&gone));
                    lines.push(event_line("ERROR", &status));
                    expired = true;
                }
            }
        }
        self.send(lines).await && !expired
    }

    async fn send(&self, lines: Vec<Bytes>) -> bool {
        for line in lines {
            if self.sender.send(Ok(line)).await.is_err() {
                return false;
            }
        }
        true
    }
}

async fn tick(interval: Option<&mut tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// How long kube-apiserver's watch cache waits for a resourceVersion it has not seen yet (a
/// client that watched another API server, further ahead) before it gives up.
const TOO_LARGE_WAIT: Duration = Duration::from_secs(3);

/// The ERROR event for a resourceVersion the store never reached: 504 with the
/// `ResourceVersionTooLarge` cause that client-go answers with a fresh list. (A client that
/// carries a resourceVersion from another `KubeCluster` gets this, rather than silently
/// missing every change up to its number.)
fn too_large(wanted: u64, current: u64) -> Bytes {
    let mut status = status_object(
        504,
        "Timeout",
        &format!("Too large resource version: {wanted}, current: {current}"),
    );
    status["details"] = json!({
        "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
        "retryAfterSeconds": 1,
    });
    event_line("ERROR", &status)
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// A BOOKMARK: an object of the watched kind with only a resourceVersion (and, ending the
/// initial events of a streaming list, the annotation that says so).
fn bookmark_line(resource_version: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": resource_version.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event_line(
        "BOOKMARK",
        &json!({"kind": KIND, "apiVersion": GROUP_VERSION, "metadata": metadata}),
    )
}

/// A 200 response whose body is `first`, then what `receiver` brings until its sender ends.
fn stream_response(first: Vec<Bytes>, receiver: Option<mpsc::Receiver<Line>>) -> Response<Body> {
    let body = StreamBody {
        first: first.into_iter().collect(),
        receiver,
    };
    Response::builder()
        .status(200)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(body.boxed())
        .expect("a valid response")
}

struct StreamBody {
    first: std::collections::VecDeque<Bytes>,
    receiver: Option<mpsc::Receiver<Line>>,
}

impl hyper::body::Body for StreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(line) = self.first.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(line))));
        }
        match self.receiver.as_mut() {
            None => Poll::Ready(None),
            Some(receiver) => receiver
                .poll_recv(cx)
                .map(|line| line.map(|line| line.map(Frame::data).map_err(BoxError::from))),
        }
    }
}

/// Counts a watch as open while it lives, and wakes `wait_for_watchers`.
struct OpenWatch {
    shared: Arc<Shared>,
}

impl OpenWatch {
    fn new(shared: Arc<Shared>) -> Self {
        *shared.watchers.lock().expect("watchers") += 1;
        shared.watchers_changed.notify_all();
        Self { shared }
    }
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        *self.shared.watchers.lock().expect("watchers") -= 1;
        self.shared.watchers_changed.notify_all();
    }
}
