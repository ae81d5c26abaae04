//! One stand-in API server: a TLS listener on its own small tokio runtime, serving HTTP/2 or
//! HTTP/1.1 per ALPN, each request answered by `routes`.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
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
    runtime.spawn(accept(listener, acceptor, address, shared));
    Ok(ApiServer {
        address,
        runtime: Some(runtime),
    })
}

async fn accept(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    server: SocketAddr,
    shared: Arc<Shared>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(connection(stream, acceptor.clone(), server, shared.clone()));
    }
}

async fn connection(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    server: SocketAddr,
    shared: Arc<Shared>,
) {
    // A client that rejects our certificate, or presents one our CA did not sign, ends here.
    let Ok(stream) = acceptor.accept(stream).await else {
        return;
    };
    let (_, tls) = stream.get_ref();
    let connection = Arc::new(Connection {
        server,
        client_cert: tls
            .peer_certificates()
            .is_some_and(|chain| !chain.is_empty()),
        http2: tls.alpn_protocol() == Some(b"h2"),
    });
    let http2 = connection.http2;
    let service =
        service_fn(move |request| routes::answer(request, connection.clone(), shared.clone()));
    let io = TokioIo::new(stream);
    // Errors are the client's going away, or a watch cut on purpose.
    if http2 {
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .serve_connection(io, service)
            .await;
    } else {
        let _ = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .serve_connection(io, service)
            .await;
    }
}
