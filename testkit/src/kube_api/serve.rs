//! One stand-in API server: a TLS listener on its own small tokio runtime, serving HTTP/2 or
//! HTTP/1.1 per ALPN, each request answered by `routes`; it can be frozen, as a stopped
//! process or a host that hangs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::{ApiServer, Shared, routes};

/// What a request's connection tells about it.
pub(super) struct Connection {
    pub server: SocketAddr,
    /// The client presented a certificate that the CA verified.
    pub client_cert: bool,
    pub http2: bool,
}

pub(super) fn start(shared: Arc<Shared>, address: SocketAddr) -> std::io::Result<ApiServer> {
    // A std listener bound here, not in the runtime, so that a test already inside a tokio
    // runtime can start servers too.
    let listener = std::net::TcpListener::bind(address)?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("kube-standin")
        .enable_all()
        .build()?;
    let listener = {
        let _entered = runtime.enter();
        TcpListener::from_std(listener)?
    };
    let acceptor = shared.pki.acceptor(address.ip());
    let frozen = watch::Sender::new(false);
    let server = Server {
        address,
        acceptor,
        frozen: frozen.clone(),
        shared,
    };
    runtime.spawn(accept(listener, Arc::new(server)));
    Ok(ApiServer {
        address,
        frozen,
        runtime: Some(runtime),
    })
}

struct Server {
    address: SocketAddr,
    acceptor: TlsAcceptor,
    /// While true nothing is accepted, read or written, as in a stopped process: the kernel
    /// still completes handshakes into the backlog and buffers what clients send.
    frozen: watch::Sender<bool>,
    shared: Arc<Shared>,
}

async fn accept(listener: TcpListener, server: Arc<Server>) {
    let mut frozen = server.frozen.subscribe();
    loop {
        if *frozen.borrow_and_update() {
            let _ = frozen.wait_for(|frozen| !*frozen).await;
            continue;
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = frozen.changed() => continue,
        };
        match accepted {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream, server.clone()));
            }
            // Out of descriptors, or the like: try again shortly rather than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn connection(stream: TcpStream, server: Arc<Server>) {
    let mut frozen = server.frozen.subscribe();
    // A client that rejects our certificate, or presents one our CA did not sign, ends here.
    let Some(Ok(stream)) = drive(server.acceptor.accept(stream), &mut frozen).await else {
        return;
    };
    let (_, tls) = stream.get_ref();
    let connection = Arc::new(Connection {
        server: server.address,
        client_cert: tls
            .peer_certificates()
            .is_some_and(|chain| !chain.is_empty()),
        http2: tls.alpn_protocol() == Some(b"h2"),
    });
    let http2 = connection.http2;
    let shared = server.shared.clone();
    let service =
        service_fn(move |request| routes::answer(request, connection.clone(), shared.clone()));
    let io = TokioIo::new(stream);
    // Errors are the client's going away, or a watch cut on purpose.
    if http2 {
        let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .serve_connection(io, service);
        let _ = drive(connection, &mut frozen).await;
    } else {
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .serve_connection(io, service);
        let _ = drive(connection, &mut frozen).await;
    }
}

/// Polls `work` to its end, except while the server is frozen; `None` if the server went away.
async fn drive<F: Future>(work: F, frozen: &mut watch::Receiver<bool>) -> Option<F::Output> {
    let mut work = std::pin::pin!(work);
    loop {
        if *frozen.borrow_and_update() {
            frozen.wait_for(|frozen| !*frozen).await.ok()?;
            continue;
        }
        tokio::select! {
            output = work.as_mut() => return Some(output),
            changed = frozen.changed() => changed.ok()?,
        }
    }
}
