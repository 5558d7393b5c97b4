//! A schema registry for the tests: the Confluent REST endpoints weir uses, their JSON shapes and
//! error codes, over plain HTTP/1.1 or TLS (the certificates in `tls/`), with knobs to fail,
//! stall and require credentials. Std only: one thread per connection, one request per connection.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

/// The test certificates: `ca.pem` signed `server.pem` (127.0.0.1, localhost) and `client.pem`.
pub fn tls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/tls")
}

/// A running registry; stops on drop.
pub struct TestRegistry {
    addr: SocketAddr,
    https: bool,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

/// A schema as registered: its id is its index in `State::schemas` plus 1.
#[derive(Clone, PartialEq)]
struct Stored {
    schema_type: String,
    schema: String,
    /// (name, subject, version)
    references: Vec<(String, String, i32)>,
}

#[derive(Default)]
struct State {
    schemas: Vec<Stored>,
    /// Subject -> the schema id of each version (version n at index n - 1).
    subjects: BTreeMap<String, Vec<u32>>,
    fail: (u32, u16),
    stall: (u32, Duration),
    /// The expected `Authorization` header.
    auth: Option<String>,
    log: Vec<String>,
}

/// An error answer: HTTP status, registry error code, message.
type Refusal = (u16, u32, String);

impl TestRegistry {
    /// A plain HTTP registry on 127.0.0.1.
    pub fn start() -> Self {
        Self::serve(None)
    }

    /// An HTTPS registry with `tls/server.pem`; with `client_auth`, it requires a client
    /// certificate signed by `tls/ca.pem`.
    pub fn start_tls(client_auth: bool) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let dir = tls_dir();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if client_auth {
            let mut roots = rustls::RootCertStore::empty();
            for ca in CertificateDer::pem_file_iter(dir.join("ca.pem")).unwrap() {
                roots.add(ca.unwrap()).unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let chain = CertificateDer::pem_file_iter(dir.join("server.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
        Self::serve(Some(Arc::new(
            builder.with_single_cert(chain, key).unwrap(),
        )))
    }

    fn serve(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let https = tls.is_some();
        let accept = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((tcp, _)) => {
                            let (state, tls) = (state.clone(), tls.clone());
                            std::thread::spawn(move || connection(tcp, tls, &state));
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5))
                        }
                        Err(e) => panic!("accept: {e}"),
                    }
                }
            })
        };
        TestRegistry {
            addr,
            https,
            state,
            stop,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:port` (or `https://`).
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Answers the next `n` requests with `status` and a registry error body.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.state().fail = (n, status);
    }

    /// Sleeps `delay` before answering each of the next `n` requests.
    pub fn stall_next(&self, n: u32, delay: Duration) {
        self.state().stall = (n, delay);
    }

    /// Answers 401 to requests without these basic auth credentials.
    pub fn require_basic_auth(&self, user: &str, password: &str) {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.state().auth = Some(format!("Basic {token}"));
    }

    /// Every request received, as `METHOD /path` (the path as sent, percent-encoded).
    pub fn requests(&self) -> Vec<String> {
        self.state().log.clone()
    }

    /// Registers a schema directly (no HTTP), as `POST /subjects/{subject}/versions` would.
    /// `schema_type` is `AVRO`, `PROTOBUF` or `JSON`; references are (name, subject, version).
    pub fn register(
        &self,
        subject: &str,
        schema_type: &str,
        schema: &str,
        references: &[(&str, &str, i32)],
    ) -> u32 {
        let stored = Stored {
            schema_type: schema_type.to_string(),
            schema: schema.to_string(),
            references: references
                .iter()
                .map(|(n, s, v)| (n.to_string(), s.to_string(), *v))
                .collect(),
        };
        self.state()
            .register(subject, stored)
            .unwrap_or_else(|(_, _, m)| panic!("register {subject}: {m}"))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Serves one request on a connection, then closes it.
fn connection(mut tcp: TcpStream, tls: Option<Arc<rustls::ServerConfig>>, state: &Mutex<State>) {
    tcp.set_nonblocking(false).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    match tls {
        None => {
            exchange(&mut tcp, state);
            linger(&tcp);
        }
        Some(config) => {
            let conn = rustls::ServerConnection::new(config).unwrap();
            let mut stream = rustls::StreamOwned::new(conn, tcp);
            exchange(&mut stream, state);
            stream.conn.send_close_notify();
            let _ = stream.flush();
            linger(&stream.sock);
        }
    }
}

/// Closes after the client has: closing with unread input would reset the connection, and a
/// reset can overtake what was sent last (the TLS alert that says why).
fn linger(tcp: &TcpStream) {
    let _ = tcp.shutdown(std::net::Shutdown::Write);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = std::io::copy(&mut &*tcp, &mut std::io::sink());
}

fn exchange<S: Read + Write>(stream: &mut S, state: &Mutex<State>) {
    // A failed handshake or a client gone: nothing to answer.
    let Some((method, path, headers, body)) = read_request(stream) else {
        return;
    };
    let (delay, answer) = {
        let mut s = state.lock().unwrap();
        s.log.push(format!("{method} {path}"));
        let delay = if s.stall.0 > 0 {
            s.stall.0 -= 1;
            Some(s.stall.1)
        } else {
            None
        };
        let answer = if s.fail.0 > 0 {
            s.fail.0 -= 1;
            let status = s.fail.1;
            refusal(status, u32::from(status) * 100 + 1, "failing on purpose")
        } else if s.auth.is_some() && headers.get("authorization") != s.auth.as_ref() {
            refusal(401, 401, "Unauthorized")
        } else {
            s.route(&method, &path, &body)
                .unwrap_or_else(|(status, code, message)| refusal(status, code, &message))
        };
        (delay, answer)
    };
    if let Some(d) = delay {
        std::thread::sleep(d);
    }
    let (status, body) = answer;
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body.as_bytes()))
        .and_then(|_| stream.flush());
}

/// Method, path, lower-cased headers and body; `None` if the connection ends first.
#[allow(clippy::type_complexity)]
fn read_request<S: Read>(
    stream: &mut S,
) -> Option<(String, String, BTreeMap<String, String>, String)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let len: usize = headers
        .get("content-length")
        .map_or(Some(0), |l| l.parse().ok())?;
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, headers, String::from_utf8(body).ok()?))
}

fn refusal(status: u16, code: u32, message: &str) -> (u16, String) {
    (
        status,
        json!({"error_code": code, "message": message}).to_string(),
    )
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

impl State {
    fn route(&mut self, method: &str, path: &str, body: &str) -> Result<(u16, String), Refusal> {
        let segments: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let ok = |v: Value| Ok((200, v.to_string()));
        match (method, segments.as_slice()) {
            ("GET", ["schemas", "ids", id]) => {
                let stored = id
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| self.schemas.get(i.checked_sub(1)?))
                    .ok_or_else(|| (404, 40403, format!("Schema {id} not found")))?;
                let mut v = json!({"schema": stored.schema});
                describe(&mut v, stored);
                ok(v)
            }
            ("GET", ["subjects", subject, "versions", version]) => {
                let (version, id) = self.version(subject, version)?;
                ok(self.subject_version(subject, version, id))
            }
            ("POST", ["subjects", subject, "versions"]) => {
                let stored = parse_schema(body)?;
                ok(json!({"id": self.register(subject, stored)?}))
            }
            ("POST", ["subjects", subject]) => {
                let stored = parse_schema(body)?;
                let versions = self
                    .subjects
                    .get(*subject)
                    .ok_or_else(|| subject_not_found(subject))?;
                let found = versions
                    .iter()
                    .enumerate()
                    .find(|(_, id)| self.schemas[**id as usize - 1] == stored);
                let (i, id) = found.ok_or((404, 40403, "Schema not found".to_string()))?;
                ok(self.subject_version(subject, i as i32 + 1, *id))
            }
            _ => Err((404, 404, "HTTP 404 Not Found".to_string())),
        }
    }

    /// A version of a subject (`latest` or a number) and its schema id.
    fn version(&self, subject: &str, version: &str) -> Result<(i32, u32), Refusal> {
        let versions = self
            .subjects
            .get(subject)
            .ok_or_else(|| subject_not_found(subject))?;
        let n: i32 = match version {
            "latest" | "-1" => versions.len() as i32,
            v => v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                (
                    422,
                    42202,
                    format!("The specified version '{v}' is not a valid version id."),
                )
            })?,
        };
        let id = versions
            .get(n as usize - 1)
            .ok_or_else(|| (404, 40402, format!("Version {version} not found.")))?;
        Ok((n, *id))
    }

    fn subject_version(&self, subject: &str, version: i32, id: u32) -> Value {
        let stored = &self.schemas[id as usize - 1];
        let mut v =
            json!({"subject": subject, "version": version, "id": id, "schema": stored.schema});
        describe(&mut v, stored);
        v
    }

    /// Registers under `subject`; the same schema (type, text, references) keeps its id
    /// everywhere, and is one version per subject.
    fn register(&mut self, subject: &str, stored: Stored) -> Result<u32, Refusal> {
        if stored.schema.trim().is_empty()
            || (stored.schema_type == "AVRO"
                && serde_json::from_str::<Value>(&stored.schema).is_err())
        {
            return Err((422, 42201, format!("Invalid schema {}", stored.schema)));
        }
        for (name, subject, version) in &stored.references {
            self.version(subject, &version.to_string()).map_err(|_| {
                (
                    422,
                    42201,
                    format!(
                        "Invalid schema: reference {name} to {subject} version {version} not found"
                    ),
                )
            })?;
        }
        let id = match self.schemas.iter().position(|s| *s == stored) {
            Some(i) => i as u32 + 1,
            None => {
                self.schemas.push(stored);
                self.schemas.len() as u32
            }
        };
        let versions = self.subjects.entry(subject.to_string()).or_default();
        if !versions.contains(&id) {
            versions.push(id);
        }
        Ok(id)
    }
}

fn subject_not_found(subject: &str) -> Refusal {
    (404, 40401, format!("Subject '{subject}' not found."))
}

/// Adds `schemaType` (left out for Avro, as Confluent does) and `references` (when any).
fn describe(v: &mut Value, stored: &Stored) {
    if stored.schema_type != "AVRO" {
        v["schemaType"] = json!(stored.schema_type);
    }
    if !stored.references.is_empty() {
        v["references"] = stored
            .references
            .iter()
            .map(|(name, subject, version)| json!({"name": name, "subject": subject, "version": version}))
            .collect();
    }
}

/// A registration or lookup body: `{"schema": .., "schemaType": .., "references": [..]}`.
fn parse_schema(body: &str) -> Result<Stored, Refusal> {
    let bad = |m: String| (422, 42201, m);
    let v: Value = serde_json::from_str(body).map_err(|e| bad(format!("Invalid body: {e}")))?;
    let schema = v["schema"]
        .as_str()
        .ok_or_else(|| bad("Invalid schema: no `schema`".into()))?;
    let schema_type = v
        .get("schemaType")
        .and_then(Value::as_str)
        .unwrap_or("AVRO");
    if !["AVRO", "PROTOBUF", "JSON"].contains(&schema_type) {
        return Err(bad(format!("Invalid schema type {schema_type}")));
    }
    let references = match v.get("references") {
        None | Some(Value::Null) => Vec::new(),
        Some(refs) => refs
            .as_array()
            .ok_or_else(|| bad("references: not a list".into()))?
            .iter()
            .map(|r| {
                Some((
                    r["name"].as_str()?.to_string(),
                    r["subject"].as_str()?.to_string(),
                    i32::try_from(r["version"].as_i64()?).ok()?,
                ))
            })
            .collect::<Option<_>>()
            .ok_or_else(|| bad("references: each needs name, subject, version".into()))?,
    };
    Ok(Stored {
        schema_type: schema_type.to_string(),
        schema: schema.to_string(),
        references,
    })
}
