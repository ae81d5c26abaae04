//! A plain HTTPS/1.1 client for the stand-in, for tests that check what it sends on the wire
//! (status codes, single watch events) without a Kubernetes client library: blocking, one
//! request per connection, the cluster CA as the only root.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::Value;

use super::{Auth, KubeCluster};

/// How long a read may wait: a watch that sends bookmarks each second is never this quiet.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Client {
    address: SocketAddr,
    server_name: ServerName<'static>,
    config: Arc<ClientConfig>,
    token: Option<String>,
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

impl Client {
    /// A client of the API server at `address` that verifies its certificate for
    /// `server_name` with `cluster`'s CA, and authenticates as `auth` says (`None`: not at all).
    pub fn new(
        cluster: &KubeCluster,
        address: SocketAddr,
        server_name: &str,
        auth: Option<Auth>,
    ) -> Self {
        let mut roots = RootCertStore::empty();
        let ca = CertificateDer::from_pem_slice(cluster.ca_pem().as_bytes()).expect("our CA");
        roots.add(ca).expect("our CA");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots);
        let mut config = if auth == Some(Auth::ClientCert) {
            let chain = vec![
                CertificateDer::from_pem_slice(cluster.client_cert_pem().as_bytes())
                    .expect("our client certificate"),
            ];
            let key = PrivateKeyDer::from_pem_slice(cluster.client_key_pem().as_bytes())
                .expect("our client key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("a client certificate")
        } else {
            builder.with_no_client_auth()
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            address,
            server_name: ServerName::try_from(server_name.to_string()).expect("a server name"),
            config: Arc::new(config),
            token: (auth == Some(Auth::Token)).then(|| cluster.token()),
        }
    }

    /// Like [`Client::new`], with a bearer token of the caller's choosing (a wrong one).
    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }

    /// `GET path`: the status code and the whole body.
    pub fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        let mut response = self.request(path)?;
        let mut body = Vec::new();
        while let Some(piece) = response.next_piece()? {
            body.extend_from_slice(&piece);
        }
        Ok((response.status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// `GET path` for a watch: the response, whose events [`Watch::next_event`] reads.
    pub fn watch(&self, path: &str) -> std::io::Result<Watch> {
        Ok(Watch {
            response: self.request(path)?,
            buffer: Vec::new(),
        })
    }

    fn request(&self, path: &str) -> std::io::Result<Response> {
        let stream = TcpStream::connect_timeout(&self.address, READ_TIMEOUT)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        let connection = ClientConnection::new(self.config.clone(), self.server_name.clone())
            .map_err(std::io::Error::other)?;
        let mut tls = StreamOwned::new(connection, stream);
        let authorization = self
            .token
            .as_ref()
            .map(|token| format!("Authorization: Bearer {token}\r\n"))
            .unwrap_or_default();
        let host = self.server_name.to_str();
        write!(
            tls,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n{authorization}Connection: close\r\n\r\n"
        )?;
        tls.flush()?;
        Response::read(BufReader::new(tls))
    }
}

struct Response {
    status: u16,
    chunked: bool,
    /// Bytes left of a body with a Content-Length.
    remaining: Option<usize>,
    reader: BufReader<Tls>,
    done: bool,
}

impl Response {
    fn read(mut reader: BufReader<Tls>) -> std::io::Result<Self> {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not an HTTP status line: {line:?}")))?;
        let (mut chunked, mut remaining) = (false, None);
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            let (name, value) = (name.to_ascii_lowercase(), value.trim());
            if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if name == "content-length" {
                remaining = value.parse().ok();
            }
        }
        Ok(Self {
            status,
            chunked,
            remaining,
            reader,
            done: false,
        })
    }

    /// The next piece of the body (a chunk, when chunked); `None` at its end.
    fn next_piece(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        if self.chunked {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let size = line.trim_end().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size.trim(), 16)
                .map_err(|_| std::io::Error::other(format!("not a chunk size: {line:?}")))?;
            let mut piece = vec![0; size + 2];
            self.reader.read_exact(&mut piece)?;
            piece.truncate(size);
            if size == 0 {
                self.done = true;
                return Ok(None);
            }
            return Ok(Some(piece));
        }
        let mut piece = Vec::new();
        match self.remaining {
            Some(length) => {
                piece.resize(length, 0);
                self.reader.read_exact(&mut piece)?;
            }
            None => {
                self.reader.read_to_end(&mut piece)?;
            }
        }
        self.done = true;
        Ok(Some(piece))
    }
}

/// An open watch: its status, and its events one by one.
pub struct Watch {
    response: Response,
    buffer: Vec<u8>,
}

impl Watch {
    pub fn status(&self) -> u16 {
        self.response.status
    }

    /// The next WatchEvent (`{"type": ..., "object": ...}`); `None` when the stream ended
    /// cleanly, an error when it broke off or a read waited too long.
    pub fn next_event(&mut self) -> std::io::Result<Option<Value>> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&byte| byte == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return serde_json::from_slice(&line)
                    .map(Some)
                    .map_err(std::io::Error::other);
            }
            match self.response.next_piece()? {
                Some(piece) => self.buffer.extend_from_slice(&piece),
                None if self.buffer.is_empty() => return Ok(None),
                None => return Err(std::io::Error::other("the stream ended inside an event")),
            }
        }
    }
}
