//! Just enough HTTP/1.1 for the agent and its client: one request per connection, bodies framed by
//! `Content-Length` (no chunked encoding), JSON responses, optional TLS (rustls, ring provider).
//! The agent's API is three routes, so this stays small instead of pulling in a server framework.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::{DeployError, DeployResult, ErrorKind};

/// Largest request or response head accepted.
const MAX_HEAD: usize = 16 << 10;

/// Most bytes of an agent's answer a client reads: answers are small JSON objects, and a
/// `Content-Length` past this (a broken or hostile peer) is an error, not an allocation.
const MAX_RESPONSE: u64 = 16 << 20;

/// Bytes a body buffer reserves before any arrive; a longer body grows it as it comes.
const RESERVE_AHEAD: usize = 1 << 20;

/// A byte stream, plain or TLS.
pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// A request line and headers.
#[derive(Debug, Clone)]
pub struct Head {
    /// Method for a request; the status code for a response.
    pub first: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The `Content-Length`: None when absent; an error naming the value when it is not a
    /// decimal number of bytes, or when two of them disagree.
    pub fn content_length(&self) -> io::Result<Option<u64>> {
        let mut found = None;
        for (_, v) in self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        {
            let n = Some(v)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "Content-Length {} is not a number of bytes",
                        shown(v)
                    ))
                })?;
            if found.is_some_and(|f| f != n) {
                return Err(invalid(format!(
                    "two different Content-Length headers ({} and {n})",
                    found.unwrap_or(n)
                )));
            }
            found = Some(n);
        }
        Ok(found)
    }
    /// The path without its query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    /// Value of query parameter `key`.
    pub fn query(&self, key: &str) -> Option<&str> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then_some(v)
        })
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// `s` quoted for an error message, cut after 60 characters.
fn shown(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{:?}...", &s[..i]),
        None => format!("{s:?}"),
    }
}

/// Read time limits shared by a [`Socket`] and its owner: each read waits at most `per_read`,
/// and while a limit is set ([`Clock::limit`], [`Clock::limit_rate`]) all reads must end by its
/// deadline, so a peer trickling a byte now and then cannot hold the other side for ever.
pub struct Clock {
    per_read: Duration,
    limit: std::sync::Mutex<Option<Limit>>,
}

/// A deadline of `base` after `start`, moved later by one second for every `min_rate` bytes
/// received (Apache's `mod_reqtimeout` rule): a body may take as long as it needs at that rate.
#[derive(Clone, Copy)]
struct Limit {
    start: Instant,
    base: Duration,
    min_rate: u64,
    received: u64,
}

impl Limit {
    /// None: past the clock's range, no limit.
    fn deadline(&self) -> Option<Instant> {
        let earned = match self.min_rate {
            0 => Duration::ZERO,
            r => Duration::from_secs_f64(self.received as f64 / r as f64),
        };
        self.start.checked_add(self.base.checked_add(earned)?)
    }

    fn late(&self) -> io::Error {
        let msg = match self.min_rate {
            0 => format!("the peer did not finish within {:?}", self.base),
            r => format!(
                "the peer sent {} bytes in {:.1?}, slower than {r} bytes/s after the first {:?}",
                self.received,
                self.start.elapsed(),
                self.base
            ),
        };
        io::Error::new(io::ErrorKind::TimedOut, msg)
    }
}

impl Clock {
    pub fn new(per_read: Duration) -> Arc<Clock> {
        Arc::new(Clock {
            per_read,
            limit: std::sync::Mutex::new(None),
        })
    }
    /// From now on, reads end within `limit` in all (a limit past the clock's range is none).
    pub fn limit(&self, limit: Duration) {
        self.limit_rate(limit, 0);
    }
    /// From now on, reads end within `base`, plus a second for every `min_rate` bytes they
    /// bring (0: none).
    pub fn limit_rate(&self, base: Duration, min_rate: u64) {
        *self.lock() = Some(Limit {
            start: Instant::now(),
            base,
            min_rate,
            received: 0,
        });
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Limit>> {
        self.limit.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A TCP socket that applies its [`Clock`] on every read. It sits under TLS as well, so the
/// limits hold for every record and handshake read rustls makes, not per call above it.
pub struct Socket {
    tcp: TcpStream,
    clock: Arc<Clock>,
}

impl Socket {
    pub fn new(tcp: TcpStream, clock: Arc<Clock>) -> Socket {
        Socket { tcp, clock }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let limit = *self.clock.lock();
        let until = limit.and_then(|l| Some((l.deadline()?, l)));
        let mut wait = self.clock.per_read;
        if let Some((u, l)) = until {
            let left = u.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(l.late());
            }
            wait = wait.min(left);
        }
        self.tcp.set_read_timeout(Some(wait))?;
        // A socket timeout reads as "Resource temporarily unavailable": say which one it was.
        let n = self.tcp.read(buf).map_err(|e| match (e.kind(), until) {
            (io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut, Some((u, l)))
                if Instant::now() >= u =>
            {
                l.late()
            }
            (io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut, _) => io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the peer sent nothing for {:?}", self.clock.per_read),
            ),
            _ => e,
        })?;
        if let Some(l) = self.clock.lock().as_mut() {
            l.received = l.received.saturating_add(n as u64);
        }
        Ok(n)
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// Reads a head (request or response). Returns it and the body bytes read past it; an
/// `InvalidData` error names a malformed line.
pub fn read_head(s: &mut dyn Stream) -> io::Result<(Head, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before the end of the HTTP head",
            ));
        }
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            break from + p + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(invalid("HTTP head longer than 16 KiB"));
        }
    };
    let text =
        std::str::from_utf8(&buf[..end - 4]).map_err(|_| invalid("HTTP head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut first = line.split(' ');
    let (a, b) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    // Request: METHOD TARGET VERSION. Response: VERSION CODE REASON.
    let (first, target) = if a.starts_with("HTTP/") {
        (b.to_string(), String::new())
    } else if a.is_empty() || b.is_empty() {
        return Err(invalid(format!(
            "malformed request line {} (expected METHOD PATH HTTP/1.1)",
            shown(line)
        )));
    } else {
        (a.to_string(), b.to_string())
    };
    let headers = lines
        .map(|l| {
            let (k, v) = l
                .split_once(':')
                .ok_or_else(|| invalid(format!("header line {} has no ':'", shown(l))))?;
            Ok((k.trim().to_string(), v.trim().to_string()))
        })
        .collect::<io::Result<_>>()?;
    Ok((
        Head {
            first,
            target,
            headers,
        },
        buf[end..].to_vec(),
    ))
}

/// Reads exactly `len` body bytes (some may already be in `have`); a short read is an
/// `UnexpectedEof` whose message gives the count received.
pub fn read_body(s: &mut dyn Stream, mut have: Vec<u8>, len: u64) -> io::Result<Vec<u8>> {
    let len = usize::try_from(len).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidData, format!("a body of {len} bytes"))
    })?;
    have.truncate(len);
    // Only what a peer has announced, up to a bound: the bytes must still arrive.
    have.reserve_exact((len - have.len()).min(RESERVE_AHEAD));
    let mut chunk = vec![0u8; 256 << 10];
    while have.len() < len {
        let want = (len - have.len()).min(chunk.len());
        let n = match s.read(&mut chunk[..want]) {
            Ok(0) => 0,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A peer that stops sending (TLS without close_notify, reset) is a short upload too.
            Err(e)
                if e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::TimedOut =>
            {
                0
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("upload truncated: received {} of {len} bytes", have.len()),
            ));
        }
        have.extend_from_slice(&chunk[..n]);
    }
    Ok(have)
}

pub fn reason(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        _ => "Internal Server Error",
    }
}

/// Writes a complete JSON response and flushes.
pub fn write_response(s: &mut dyn Stream, code: u16, body: &[u8]) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason(code),
        body.len()
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    s.write_all(&out)?;
    s.flush()
}

/// An agent address: `http://HOST:PORT` or `https://HOST:PORT` (a path after it is ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl Url {
    pub fn parse(s: &str) -> DeployResult<Url> {
        let bad = |why: &str| {
            DeployError::new(
                ErrorKind::BadRequest,
                format!("\"{s}\" is not an agent URL like http://10.0.0.7:7443 ({why})"),
            )
        };
        let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad("scheme must be http or https"));
        };
        let auth = rest.split('/').next().unwrap_or("");
        let (host, port) = if let Some(r) = auth.strip_prefix('[') {
            let (h, p) = r.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            match p {
                "" => (h, None),
                p => (
                    h,
                    Some(p.strip_prefix(':').ok_or_else(|| bad("no ':' after ]"))?),
                ),
            }
        } else {
            match auth.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (auth, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("bad port"))?,
            None if tls => 443,
            None => 80,
        };
        Ok(Url {
            tls,
            host: host.to_string(),
            port,
        })
    }

    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.authority())
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(what: String) -> DeployError {
    DeployError::new(ErrorKind::BadRequest, what)
}

/// Server TLS from a PEM certificate chain and a PEM private key.
pub fn server_tls(cert: &Path, key: &Path) -> DeployResult<Arc<rustls::ServerConfig>> {
    let pem = std::fs::read(cert).map_err(|e| DeployError::io("reading", cert, e))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(format!("{}: not a PEM certificate: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(tls_err(format!(
            "{}: no certificate in the file",
            cert.display()
        )));
    }
    let kpem = std::fs::read(key).map_err(|e| DeployError::io("reading", key, e))?;
    let key_der = PrivateKeyDer::from_pem_slice(&kpem)
        .map_err(|e| tls_err(format!("{}: not a PEM private key: {e}", key.display())))?;
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key_der))
        .map_err(|e| tls_err(format!("TLS setup with {}: {e}", cert.display())))?;
    Ok(Arc::new(cfg))
}

/// Client TLS trusting the certificates in a PEM file (the agents' certificate or their CA).
pub fn client_tls(ca: &Path) -> DeployResult<Arc<rustls::ClientConfig>> {
    let pem = std::fs::read(ca).map_err(|e| DeployError::io("reading", ca, e))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&pem) {
        let c = c.map_err(|e| tls_err(format!("{}: not a PEM certificate: {e}", ca.display())))?;
        roots
            .add(c)
            .map_err(|e| tls_err(format!("{}: unusable certificate: {e}", ca.display())))?;
    }
    let cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Sends one request and returns the status code and body.
pub fn request(
    url: &Url,
    tls: Option<&Arc<rustls::ClientConfig>>,
    method: &str,
    target: &str,
    token: Option<&str>,
    body: &[u8],
    timeout: Duration,
) -> DeployResult<(u16, Vec<u8>)> {
    let net = |e: io::Error| DeployError::new(ErrorKind::Io, format!("{url}: {e}"));
    let addrs: Vec<_> = std::net::ToSocketAddrs::to_socket_addrs(&url.authority())
        .map_err(net)?
        .collect();
    let addr = addrs
        .first()
        .ok_or_else(|| net(io::Error::other("host has no address")))?;
    let tcp = TcpStream::connect_timeout(addr, timeout).map_err(net)?;
    tcp.set_write_timeout(Some(timeout)).map_err(net)?;
    tcp.set_nodelay(true).map_err(net)?;
    let clock = Clock::new(timeout);
    // Reads while sending are the TLS handshake's: within the timeout in all.
    clock.limit(timeout);
    let tcp = Socket::new(tcp, Arc::clone(&clock));
    let mut stream: Box<dyn Stream> = if url.tls {
        let cfg = tls.ok_or_else(|| {
            DeployError::new(
                ErrorKind::BadRequest,
                format!("{url}: https needs --ca FILE (the agent's certificate or its CA)"),
            )
        })?;
        let name =
            ServerName::try_from(url.host.clone()).map_err(|e| tls_err(format!("{url}: {e}")))?;
        let conn = rustls::ClientConnection::new(Arc::clone(cfg), name)
            .map_err(|e| tls_err(format!("{url}: {e}")))?;
        Box::new(rustls::StreamOwned::new(conn, tcp))
    } else {
        Box::new(tcp)
    };
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        url.authority(),
        body.len()
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    let sent = stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body))
        .and_then(|_| stream.flush());
    // If sending failed, the agent may still have answered (a refusal before the body was read).
    // The whole answer must come within twice the timeout (no silence longer than one, while
    // an install finishes): an agent trickling it cannot hold a rollout.
    clock.limit(timeout.saturating_mul(2));
    let answer = read_head(stream.as_mut()).and_then(|(h, rest)| {
        let len = h.content_length()?.unwrap_or(rest.len() as u64);
        let code = h
            .first
            .parse::<u16>()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not an HTTP response"))?;
        if len > MAX_RESPONSE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("an answer of {len} bytes (an agent answers at most {MAX_RESPONSE})"),
            ));
        }
        Ok((code, read_body(stream.as_mut(), rest, len)?))
    });
    match (answer, sent) {
        (Ok(a), _) => Ok(a),
        (Err(_), Err(e)) => Err(net(e)),
        (Err(e), Ok(())) => Err(net(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer announcing an absurd body is an error naming it, for the client (which reads
    /// at most `MAX_RESPONSE`) and for `read_body` itself (which reserves only
    /// `RESERVE_AHEAD` before bytes arrive); it used to reserve the announced size at once.
    /// A peer on loopback that reads one request and answers it with `answer`; its URL.
    fn answer_once(
        answer: impl FnOnce(&mut TcpStream) + Send + 'static,
    ) -> (Url, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let _ = read_head(&mut s);
            answer(&mut s);
        });
        (
            Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
            server,
        )
    }

    fn status(url: &Url, timeout: Duration) -> DeployResult<(u16, Vec<u8>)> {
        request(url, None, "GET", "/v1/status", None, b"", timeout)
    }

    #[test]
    fn an_absurd_content_length_is_an_error_not_an_allocation() {
        let (url, server) = answer_once(|s| {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999\r\n\r\n{}");
        });
        let e = status(&url, Duration::from_secs(5))
            .expect_err("an answer of 10^17 bytes was accepted");
        assert!(e.to_string().contains("99999999999999999 bytes"), "{e}");
        server.join().unwrap();
        // read_body on a peer that closes early: a truncation error, nothing reserved ahead.
        let mut short: &[u8] = b"abc";
        let e = read_body(&mut ShortPeer(&mut short), Vec::new(), 1 << 50).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
    }

    /// An agent that trickles its answer (a byte every 100 ms, each read well inside the
    /// per-read timeout) cannot hold the client: the whole answer must come within twice the
    /// timeout. Before, this answer of about 200 bytes held it for 20 s (any length: for ever).
    #[test]
    fn a_trickled_answer_is_cut_at_the_deadline() {
        let (url, server) = answer_once(|s| {
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: 160\r\n\r\n{}",
                "x".repeat(160)
            );
            for b in answer.bytes() {
                if s.write_all(&[b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let t = Instant::now();
        let e = status(&url, Duration::from_secs(1)).expect_err("a trickled answer was waited for");
        let took = t.elapsed();
        assert!(e.to_string().contains("did not finish within 2s"), "{e}");
        assert!(took < Duration::from_secs(4), "took {took:?}");
        server.join().unwrap();
    }

    struct ShortPeer<'a, 'b>(&'a mut &'b [u8]);

    impl io::Read for ShortPeer<'_, '_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }

    impl io::Write for ShortPeer<'_, '_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}
