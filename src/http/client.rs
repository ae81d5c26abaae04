//! The few lines of HTTP/1.1 that `apidns status`, `drain` and `undrain` need to reach a running
//! daemon's HTTP endpoint: one request, `Connection: close`, read to the end.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Why the admin endpoint could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach apidns at http://{address}: {source}")]
    Connect {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot send the request: {0}")]
    Send(std::io::Error),
    #[error("cannot read the response: {0}")]
    Receive(std::io::Error),
    #[error("not an HTTP response: {0}")]
    NotHttp(String),
}

/// Sends `POST path` to `address` and returns the status code and body.
pub fn post(
    address: SocketAddr,
    path_and_query: &str,
    token: Option<&str>,
) -> Result<(u16, String), ClientError> {
    request("POST", address, path_and_query, token)
}

/// Sends `GET path` to `address` and returns the status code and body.
pub fn get(address: SocketAddr, path_and_query: &str) -> Result<(u16, String), ClientError> {
    request("GET", address, path_and_query, None)
}

fn request(
    method: &str,
    address: SocketAddr,
    path_and_query: &str,
    token: Option<&str>,
) -> Result<(u16, String), ClientError> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&address, timeout)
        .map_err(|source| ClientError::Connect { address, source })?;
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let authorization = token
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: {address}\r\n{authorization}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(ClientError::Send)?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(ClientError::Receive)?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| ClientError::NotHttp(head.to_string()))?;
    Ok((status, body.to_string()))
}
