//! HTTP/1.1 to the server's endpoint (`/status`, `/metrics`, `/readyz`, admin calls), and the
//! pieces of `/status` and `/metrics` that tests read.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::client::REPLY_TIMEOUT;
use crate::server::TestServer;

/// One HTTP/1.1 request to `address`; returns the status code and the body.
pub fn http_request(
    address: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&address, REPLY_TIMEOUT).expect("http connect");
    stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .expect("set timeout");
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: apidns\r\n{authorization}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("http write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("http read");
    let (head, body) = response.split_once("\r\n\r\n").expect("http head and body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    (status, body.to_string())
}

pub fn http_get(address: SocketAddr, path: &str) -> (u16, String) {
    http_request(address, "GET", path, None)
}

/// The `/status` document of `server`.
pub fn status(server: &TestServer) -> serde_json::Value {
    let (code, body) = http_get(server.http.expect("http endpoint"), "/status");
    assert_eq!(code, 200, "/status: {body}");
    serde_json::from_str(&body).expect("status is JSON")
}

/// The `/status` entry of the first pool's member at `member` (address and port).
pub fn member_status(server: &TestServer, member: SocketAddr) -> serde_json::Value {
    status(server)["zones"][0]["pools"][0]["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["address"] == member.ip().to_string() && m["port"] == member.port())
        .cloned()
        .expect("member listed")
}

/// The value of the `/metrics` line that starts with `series` (name and labels).
pub fn metric(server: &TestServer, series: &str) -> Option<f64> {
    let (_, metrics) = http_get(server.http.expect("http endpoint"), "/metrics");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series))
        .and_then(|value| value.trim().parse().ok())
}
