//! The device service: HTTP(S) in front of a [`Store`].
//!
//! ```text
//! GET  /v1/status                      → Status JSON
//! POST /v1/install[?allow_downgrade=1] → body: the .efb; Installed JSON
//! POST /v1/rollback                    → Installed JSON
//! ```
//! Every request carries `Authorization: Bearer TOKEN`, compared in constant time. Uploads larger
//! than the limit are refused from their `Content-Length` before the body is read. Errors are
//! `{"error": "...", "kind": "..."}` with a status code per [`ErrorKind`]. One thread per
//! connection (bounded); the store serialises installs.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::http::{self, Head, Stream};
use super::store::{InstallOptions, Store};
use super::{constant_time_eq, DeployError, ErrorKind};

/// The slowest upload the agent waits for, after the first `io_timeout`: 1 KiB/s (8 kbit/s,
/// below any working GPRS link). A 20 MB bundle may take up to 5.5 hours at it.
pub const MIN_UPLOAD_RATE: u64 = 1024;

pub struct AgentConfig {
    pub store: Arc<Store>,
    pub token: String,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Largest bundle accepted, bytes.
    pub max_bundle: u64,
    /// How long a connection may stay silent.
    pub io_timeout: Duration,
    pub max_connections: usize,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Truncated => "truncated",
            ErrorKind::BadBundle => "bad_bundle",
            ErrorKind::BadSignature => "bad_signature",
            ErrorKind::WrongBoard => "wrong_board",
            ErrorKind::Downgrade => "downgrade",
            ErrorKind::SelfTest => "self_test",
            ErrorKind::DiskFull => "disk_full",
            ErrorKind::NotFound => "not_found",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Io => "io",
        }
    }

    pub fn from_name(s: &str) -> ErrorKind {
        [
            ErrorKind::Unauthorized,
            ErrorKind::TooLarge,
            ErrorKind::Truncated,
            ErrorKind::BadBundle,
            ErrorKind::BadSignature,
            ErrorKind::WrongBoard,
            ErrorKind::Downgrade,
            ErrorKind::SelfTest,
            ErrorKind::DiskFull,
            ErrorKind::NotFound,
            ErrorKind::BadRequest,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .unwrap_or(ErrorKind::Io)
    }

    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::Unauthorized => 401,
            ErrorKind::TooLarge => 413,
            ErrorKind::Truncated | ErrorKind::BadBundle | ErrorKind::BadRequest => 400,
            ErrorKind::BadSignature => 403,
            ErrorKind::WrongBoard | ErrorKind::Downgrade => 409,
            ErrorKind::SelfTest => 422,
            ErrorKind::DiskFull => 507,
            ErrorKind::NotFound => 404,
            ErrorKind::Io => 500,
        }
    }
}

fn error_body(e: &DeployError) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"error": e.msg, "kind": e.kind.as_str()}))
        .unwrap_or_default()
}

/// Serves until the listener fails. Logs one line per request to stderr.
pub fn serve(listener: TcpListener, cfg: AgentConfig) -> io::Result<()> {
    let cfg = Arc::new(cfg);
    let open = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let tcp = match conn {
            Ok(t) => t,
            Err(e) => {
                eprintln!("edgefuse agent: accept: {e}");
                continue;
            }
        };
        let (cfg, open) = (Arc::clone(&cfg), Arc::clone(&open));
        if open.fetch_add(1, Ordering::SeqCst) >= cfg.max_connections {
            open.fetch_sub(1, Ordering::SeqCst);
            let mut t = tcp;
            let e = DeployError::new(ErrorKind::Io, "agent busy: too many connections");
            let _ = http::write_response(&mut t, 503, &error_body(&e));
            continue;
        }
        std::thread::spawn(move || {
            let peer = tcp
                .peer_addr()
                .map_or_else(|_| "?".to_string(), |a| a.to_string());
            if let Err(e) = connection(tcp, &cfg, &peer) {
                eprintln!("edgefuse agent: {peer}: {e}");
            }
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(())
}

fn connection(tcp: TcpStream, cfg: &AgentConfig, peer: &str) -> io::Result<()> {
    tcp.set_write_timeout(Some(cfg.io_timeout))?;
    tcp.set_nodelay(true)?;
    // The head (and a TLS handshake before it) must arrive within the timeout in all: a peer
    // sending a byte now and then does not hold a connection (and, 64 of them, the agent).
    let clock = http::Clock::new(cfg.io_timeout);
    clock.limit(cfg.io_timeout);
    let tcp = http::Socket::new(tcp, Arc::clone(&clock));
    let mut stream: Box<dyn Stream> = match &cfg.tls {
        Some(tls) => {
            let conn = rustls::ServerConnection::new(Arc::clone(tls)).map_err(io::Error::other)?;
            Box::new(rustls::StreamOwned::new(conn, tcp))
        }
        None => Box::new(tcp),
    };
    let (head, rest) = match http::read_head(stream.as_mut()) {
        Ok(h) => h,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            let e = DeployError::new(ErrorKind::BadRequest, format!("bad request: {e}"));
            http::write_response(stream.as_mut(), 400, &error_body(&e))?;
            drain(stream.as_mut());
            return Err(io::Error::other(e.msg));
        }
        Err(e) => return Err(e),
    };
    // The body may take as long as it needs at MIN_UPLOAD_RATE, no longer: an authenticated
    // client trickling an upload does not hold the connection for ever either.
    clock.limit_rate(cfg.io_timeout, MIN_UPLOAD_RATE);
    let result = handle(stream.as_mut(), cfg, &head, rest);
    let (code, body) = match &result {
        Ok(body) => (200, body.clone()),
        Err(e) => (e.kind.http_status(), error_body(e)),
    };
    match &result {
        Ok(_) => eprintln!("edgefuse agent: {peer} {} {}: ok", head.first, head.path()),
        Err(e) => {
            eprintln!(
                "edgefuse agent: {peer} {} {}: {}",
                head.first,
                head.path(),
                e.msg
            );
            if e.kind != ErrorKind::Unauthorized && e.kind != ErrorKind::NotFound {
                cfg.store.record_error(&e.msg);
            }
        }
    }
    http::write_response(stream.as_mut(), code, &body)?;
    if code == 413 || code == 401 || code == 400 {
        drain(stream.as_mut());
    }
    Ok(())
}

/// After a refusal sent before the request was read: lets the client finish sending (bounded)
/// so it reads the refusal instead of a connection reset.
fn drain(stream: &mut dyn Stream) {
    let mut sink = [0u8; 64 << 10];
    let mut drained = 0usize;
    let deadline = Instant::now() + Duration::from_secs(2);
    while drained < (64 << 20) && Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

fn handle(
    s: &mut dyn Stream,
    cfg: &AgentConfig,
    head: &Head,
    rest: Vec<u8>,
) -> Result<Vec<u8>, DeployError> {
    let token = head
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match token {
        None => {
            return Err(DeployError::new(
                ErrorKind::Unauthorized,
                "missing token: send Authorization: Bearer TOKEN (flash --token-file FILE)",
            ))
        }
        Some(t) if !constant_time_eq(t.as_bytes(), cfg.token.as_bytes()) => {
            return Err(DeployError::new(ErrorKind::Unauthorized, "wrong token"))
        }
        Some(_) => {}
    }
    match (head.first.as_str(), head.path()) {
        ("GET", "/v1/status") => Ok(json(&cfg.store.status())),
        ("POST", "/v1/rollback") => cfg.store.rollback().map(|i| json(&i)),
        ("POST", "/v1/install") => {
            if let Some(te) = head.header("transfer-encoding") {
                return Err(DeployError::new(
                    ErrorKind::BadRequest,
                    format!(
                        "Transfer-Encoding {te:?} is not supported: send the bundle with a Content-Length"
                    ),
                ));
            }
            let len = head
                .content_length()
                .map_err(|e| DeployError::new(ErrorKind::BadRequest, e.to_string()))?
                .ok_or_else(|| {
                    DeployError::new(ErrorKind::BadRequest, "install needs a Content-Length")
                })?;
            if len > cfg.max_bundle {
                return Err(DeployError::new(
                    ErrorKind::TooLarge,
                    format!(
                        "upload of {len} bytes exceeds this agent's limit of {} bytes (agent --max-bundle-mb)",
                        cfg.max_bundle
                    ),
                ));
            }
            if head
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
            {
                s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                    .and_then(|_| s.flush())
                    .map_err(|e| DeployError::new(ErrorKind::Io, format!("upload: {e}")))?;
            }
            let body = http::read_body(s, rest, len).map_err(|e| {
                let kind = if e.kind() == io::ErrorKind::UnexpectedEof {
                    ErrorKind::Truncated
                } else {
                    ErrorKind::Io
                };
                DeployError::new(kind, format!("{e}; nothing was installed"))
            })?;
            let opts = InstallOptions {
                allow_downgrade: matches!(head.query("allow_downgrade"), Some("1" | "true")),
            };
            cfg.store.install(&body, &opts).map(|i| json(&i))
        }
        (_, "/v1/status" | "/v1/rollback" | "/v1/install") => Err(DeployError::new(
            ErrorKind::BadRequest,
            format!("{} is not allowed on {}", head.first, head.path()),
        )),
        (_, p) => Err(DeployError::new(
            ErrorKind::NotFound,
            format!("no such endpoint {p} (try /v1/status)"),
        )),
    }
}

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}
