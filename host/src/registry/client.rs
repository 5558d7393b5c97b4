//! The HTTP side: requests, retries, caches.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use super::{
    RegisteredSchema, RegistryConfig, RegistryError, ResolvedReference, SchemaReference,
    SchemaType, SubjectVersion,
};

/// The registry's media type, for requests and answers.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
const ACCEPT: &str = "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json; qs=0.9, application/json; qs=0.5";
/// The first retry's wait; each later one doubles, up to `max_backoff`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// How often a backoff sleep looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(20);
/// Answers above this are refused (a schema is kilobytes).
const MAX_BODY: u64 = 64 << 20;
/// References nested deeper than this are taken for a cycle.
const MAX_REFERENCE_DEPTH: usize = 32;

/// A blocking schema registry client. `Send + Sync`: share one through an `Arc`.
///
/// Every call retries timeouts, connection failures, 5xx and 429 for as long as they last
/// (logging a warning each time), until the [stop flag](Self::stop_handle) is raised. Other 4xx
/// answers are final. Concurrent misses of one cache entry may each make the request.
pub struct RegistryClient {
    agent: ureq::Agent,
    urls: Vec<String>,
    /// The URL that answered last: where the next request starts.
    preferred: AtomicUsize,
    authorization: Option<String>,
    max_backoff: Duration,
    stop: Arc<AtomicBool>,
    by_id: RwLock<HashMap<u32, Arc<RegisteredSchema>>>,
    by_version: RwLock<HashMap<(String, i32), Arc<RegisteredSchema>>>,
    registered: RwLock<HashMap<RegisterKey, u32>>,
}

#[derive(PartialEq, Eq, Hash)]
struct RegisterKey {
    subject: String,
    schema_type: SchemaType,
    schema: String,
    references: Vec<SchemaReference>,
}

/// The body of a schema to register or look up.
#[derive(Serialize)]
struct SchemaRequest<'a> {
    schema: &'a str,
    #[serde(rename = "schemaType", skip_serializing_if = "is_avro")]
    schema_type: SchemaType,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    references: &'a [SchemaReference],
}

fn is_avro(t: &SchemaType) -> bool {
    *t == SchemaType::Avro
}

/// A schema as the registry answers it (`/schemas/ids/..`, `/subjects/../versions/..`, lookup).
#[derive(Deserialize)]
struct SchemaAnswer {
    schema: String,
    #[serde(default, rename = "schemaType")]
    schema_type: SchemaType,
    #[serde(default)]
    references: Vec<SchemaReference>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    id: Option<u32>,
    #[serde(default)]
    version: Option<i32>,
}

#[derive(Deserialize)]
struct IdAnswer {
    id: u32,
}

/// An answer the caller decides on: a 2xx, or a 4xx other than 429.
struct Answer {
    status: u16,
    body: String,
}

/// Why one request did not produce an [`Answer`].
enum Failure {
    /// Worth another try: timeouts, connection errors, 5xx, 429.
    Retry(String),
    /// Not: TLS certificate problems, unusable URLs.
    Final(RegistryError),
}

impl RegistryClient {
    /// A client for `cfg`: reads the PEM files and the `password_env` variable now, so that a
    /// missing one fails at startup. Checks `cfg` with [`RegistryConfig::validate`] first.
    pub fn new(cfg: &RegistryConfig) -> Result<Self, RegistryError> {
        let problems = cfg.validate();
        if !problems.is_empty() {
            return Err(RegistryError::Config(problems.join("; ")));
        }
        let password = match (&cfg.password, &cfg.password_env) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(var)) => Some(std::env::var(var).map_err(|e| {
                RegistryError::Config(format!("password_env: environment variable `{var}`: {e}"))
            })?),
            (None, None) => None,
        };
        let authorization = cfg.username.as_ref().map(|user| {
            let pair = format!("{user}:{}", password.as_deref().unwrap_or_default());
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });

        let mut tls = TlsConfig::builder().disable_verification(cfg.insecure_skip_verify);
        if let Some(path) = &cfg.ca_file {
            let certs = read_certs("ca_file", path)?;
            tls = tls.root_certs(RootCerts::new_with_certs(&certs));
        }
        if let (Some(cert), Some(key)) = (&cfg.cert_file, &cfg.key_file) {
            let chain = read_certs("cert_file", cert)?;
            let key = read_key(key)?;
            tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(cfg.timeout))
            .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")))
            .accept(ACCEPT)
            .tls_config(tls.build())
            .build()
            .new_agent();
        Ok(Self {
            agent,
            urls: cfg.urls(),
            preferred: AtomicUsize::new(0),
            authorization,
            max_backoff: cfg.max_backoff,
            stop: Arc::new(AtomicBool::new(false)),
            by_id: RwLock::default(),
            by_version: RwLock::default(),
            registered: RwLock::default(),
        })
    }

    /// The stop flag: once set, a call that is retrying returns [`RegistryError::Unavailable`]
    /// within about 20ms (or, during a request, when it ends: at most `timeout`). Calls that
    /// succeed on their first try are not affected.
    pub fn stop_handle(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Uses `stop` (the worker's shutdown flag) as the stop flag.
    pub fn with_stop(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = stop;
        self
    }

    /// The schema with global id `id` (`GET /schemas/ids/{id}`), references resolved. Cached
    /// forever: an id's schema never changes.
    pub fn schema_by_id(&self, id: u32) -> Result<Arc<RegisteredSchema>, RegistryError> {
        if let Some(s) = read(&self.by_id).get(&id) {
            return Ok(s.clone());
        }
        let what = || format!("schema id {id}");
        let answer: SchemaAnswer = self.get(&format!("/schemas/ids/{id}"))?.json(what)?;
        let schema = Arc::new(self.resolve(id, answer, None, 0)?);
        write(&self.by_id).insert(id, schema.clone());
        Ok(schema)
    }

    /// The latest version of `subject` (`GET /subjects/{subject}/versions/latest`). Not cached.
    pub fn latest(&self, subject: &str) -> Result<SubjectVersion, RegistryError> {
        let path = format!("/subjects/{}/versions/latest", encode(subject));
        let answer: SchemaAnswer = self.get(&path)?.json(|| format!("subject `{subject}`"))?;
        self.subject_version(subject, answer, 0)
    }

    /// Version `version` of `subject` (`GET /subjects/{subject}/versions/{version}`); -1 is the
    /// latest. Cached, except for -1.
    pub fn version(&self, subject: &str, version: i32) -> Result<SubjectVersion, RegistryError> {
        let schema = self.version_at(subject, version, 0)?;
        let version = schema.subject.as_ref().map_or(version, |(_, v)| *v);
        Ok(SubjectVersion {
            subject: subject.to_string(),
            version,
            id: schema.id,
            schema,
        })
    }

    /// Registers `schema` under `subject` (`POST /subjects/{subject}/versions`) and returns its
    /// global id; the registry gives back the existing id when the schema is already there.
    /// Cached: registering the same schema again makes no request.
    pub fn register(
        &self,
        subject: &str,
        schema: &str,
        schema_type: SchemaType,
        references: &[SchemaReference],
    ) -> Result<u32, RegistryError> {
        let key = RegisterKey {
            subject: subject.to_string(),
            schema_type,
            schema: schema.to_string(),
            references: references.to_vec(),
        };
        if let Some(id) = read(&self.registered).get(&key) {
            return Ok(*id);
        }
        let body = schema_request(schema, schema_type, references)?;
        let path = format!("/subjects/{}/versions", encode(subject));
        let answer: IdAnswer = self
            .post(&path, &body)?
            .json(|| format!("subject `{subject}`"))?;
        write(&self.registered).insert(key, answer.id);
        Ok(answer.id)
    }

    /// The id of `schema` if it is registered under `subject` (`POST /subjects/{subject}`), `None`
    /// if the subject or the schema is unknown. Not cached.
    pub fn lookup(
        &self,
        subject: &str,
        schema: &str,
        schema_type: SchemaType,
        references: &[SchemaReference],
    ) -> Result<Option<u32>, RegistryError> {
        let body = schema_request(schema, schema_type, references)?;
        let answer = self.post(&format!("/subjects/{}", encode(subject)), &body)?;
        if answer.status == 404 {
            if let Some((40401 | 40403, _)) = error_body(&answer.body) {
                return Ok(None);
            }
        }
        let found: SchemaAnswer = answer.json(|| format!("subject `{subject}`"))?;
        found.id.map(Some).ok_or_else(|| {
            RegistryError::Protocol(format!(
                "lookup in subject `{subject}`: no `id` in the answer"
            ))
        })
    }

    fn version_at(
        &self,
        subject: &str,
        version: i32,
        depth: usize,
    ) -> Result<Arc<RegisteredSchema>, RegistryError> {
        let key = (subject.to_string(), version);
        if let Some(s) = read(&self.by_version).get(&key) {
            return Ok(s.clone());
        }
        let v = if version == -1 {
            "latest".to_string()
        } else {
            version.to_string()
        };
        let path = format!("/subjects/{}/versions/{v}", encode(subject));
        let answer: SchemaAnswer = self
            .get(&path)?
            .json(|| format!("subject `{subject}` version {version}"))?;
        let schema = self.subject_version(subject, answer, depth)?.schema;
        if version > 0 {
            write(&self.by_version).insert(key, schema.clone());
        }
        Ok(schema)
    }

    fn subject_version(
        &self,
        subject: &str,
        answer: SchemaAnswer,
        depth: usize,
    ) -> Result<SubjectVersion, RegistryError> {
        let (Some(id), Some(version)) = (answer.id, answer.version) else {
            return Err(RegistryError::Protocol(format!(
                "subject `{subject}`: the answer lacks `id` or `version`"
            )));
        };
        let subject = answer
            .subject
            .clone()
            .unwrap_or_else(|| subject.to_string());
        let schema = Arc::new(self.resolve(id, answer, Some((subject.clone(), version)), depth)?);
        Ok(SubjectVersion {
            subject,
            version,
            id,
            schema,
        })
    }

    /// Fetches what `answer` references, recursively.
    fn resolve(
        &self,
        id: u32,
        answer: SchemaAnswer,
        subject: Option<(String, i32)>,
        depth: usize,
    ) -> Result<RegisteredSchema, RegistryError> {
        if depth > MAX_REFERENCE_DEPTH && !answer.references.is_empty() {
            return Err(RegistryError::Protocol(format!(
                "schema id {id}: references nested over {MAX_REFERENCE_DEPTH} deep (a cycle?)"
            )));
        }
        let references = answer
            .references
            .iter()
            .map(|r| {
                Ok(ResolvedReference {
                    name: r.name.clone(),
                    schema: self.version_at(&r.subject, r.version, depth + 1)?,
                })
            })
            .collect::<Result<_, RegistryError>>()?;
        Ok(RegisteredSchema {
            id,
            schema_type: answer.schema_type,
            schema: answer.schema,
            references,
            subject,
        })
    }

    fn get(&self, path: &str) -> Result<Answer, RegistryError> {
        self.send(path, None)
    }

    fn post(&self, path: &str, body: &str) -> Result<Answer, RegistryError> {
        self.send(path, Some(body))
    }

    /// Sends until an [`Answer`]: each URL in turn from the preferred one, then a backoff wait,
    /// for as long as it takes or until the stop flag.
    fn send(&self, path: &str, body: Option<&str>) -> Result<Answer, RegistryError> {
        let method = if body.is_some() { "POST" } else { "GET" };
        let span = tracing::debug_span!("schema_registry", method, path);
        let _guard = span.enter();
        let mut attempts = 0u32;
        let mut last = String::new();
        let mut round = 0u32;
        loop {
            let start = self.preferred.load(Ordering::Relaxed);
            for i in 0..self.urls.len() {
                let index = (start + i) % self.urls.len();
                let url = format!("{}{path}", self.urls[index]);
                attempts = attempts.saturating_add(1);
                let began = Instant::now();
                match self.send_once(&url, body) {
                    Ok(answer) => {
                        tracing::debug!(status = answer.status, elapsed = ?began.elapsed(), attempts, "answered");
                        self.preferred.store(index, Ordering::Relaxed);
                        return Ok(answer);
                    }
                    Err(Failure::Final(e)) => return Err(e),
                    Err(Failure::Retry(why)) => {
                        tracing::warn!(attempt = attempts, %url, error = %why, "schema registry request failed; retrying");
                        last = why;
                    }
                }
                if self.stop.load(Ordering::Relaxed) {
                    return Err(RegistryError::Unavailable { attempts, last });
                }
            }
            if !self.sleep_unless_stopped(backoff(round, self.max_backoff, jitter())) {
                return Err(RegistryError::Unavailable { attempts, last });
            }
            round = round.saturating_add(1);
        }
    }

    fn send_once(&self, url: &str, body: Option<&str>) -> Result<Answer, Failure> {
        let result = match body {
            None => {
                let mut req = self.agent.get(url);
                if let Some(auth) = &self.authorization {
                    req = req.header("Authorization", auth);
                }
                req.call()
            }
            Some(body) => {
                let mut req = self.agent.post(url).header("Content-Type", CONTENT_TYPE);
                if let Some(auth) = &self.authorization {
                    req = req.header("Authorization", auth);
                }
                req.send(body)
            }
        };
        let mut response = result.map_err(|e| classify(url, e))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| classify(url, e))?;
        if status >= 500 || status == 429 {
            let detail = match error_body(&body) {
                Some((code, message)) => format!("{message} (error code {code})"),
                None => snippet(&body),
            };
            return Err(Failure::Retry(format!("HTTP {status}: {detail}")));
        }
        Ok(Answer { status, body })
    }

    /// Sleeps `d` in short slices; false if the stop flag was raised meanwhile.
    fn sleep_unless_stopped(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return false;
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            std::thread::sleep((end - now).min(STOP_POLL));
        }
    }
}

impl Answer {
    /// The 2xx body as `T`; any other status as its [`RegistryError`].
    fn json<T: DeserializeOwned>(self, what: impl Fn() -> String) -> Result<T, RegistryError> {
        if !(200..300).contains(&self.status) {
            return Err(answer_error(self.status, &self.body, what));
        }
        serde_json::from_str(&self.body).map_err(|e| {
            RegistryError::Protocol(format!("{}: {e} in {}", what(), snippet(&self.body)))
        })
    }
}

/// The error of a final non-2xx answer.
fn answer_error(status: u16, body: &str, what: impl Fn() -> String) -> RegistryError {
    match error_body(body) {
        Some((code, _)) if status == 404 && (40400..40500).contains(&code) => {
            RegistryError::NotFound { what: what() }
        }
        Some((code, message)) => RegistryError::Rejected {
            status,
            code: Some(code),
            message,
        },
        None => RegistryError::Rejected {
            status,
            code: None,
            message: snippet(body),
        },
    }
}

/// The registry's error body: `{"error_code": 40401, "message": "Subject 'x' not found."}`.
fn error_body(body: &str) -> Option<(u32, String)> {
    #[derive(Deserialize)]
    struct ErrorBody {
        error_code: u32,
        #[serde(default)]
        message: String,
    }
    serde_json::from_str::<ErrorBody>(body)
        .ok()
        .map(|e| (e.error_code, e.message))
}

/// Whether a failed request is worth another try.
fn classify(url: &str, e: ureq::Error) -> Failure {
    use ureq::Error as E;
    match e {
        E::Io(io) => match io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            Some(tls) => Failure::Final(tls_error(url, tls)),
            None => Failure::Retry(io.to_string()),
        },
        E::Rustls(tls) => Failure::Final(tls_error(url, &tls)),
        E::Tls(m) => Failure::Final(RegistryError::Tls(format!("{url}: {m}"))),
        E::Pem(p) => Failure::Final(RegistryError::Tls(format!("{url}: {p}"))),
        E::BadUri(m) => Failure::Final(RegistryError::Config(format!("url: `{url}`: {m}"))),
        E::BodyExceedsLimit(n) => Failure::Final(RegistryError::Protocol(format!(
            "{url}: an answer over {n} bytes"
        ))),
        other => Failure::Retry(other.to_string()),
    }
}

fn tls_error(url: &str, e: &rustls::Error) -> RegistryError {
    let hint = match e {
        rustls::Error::InvalidCertificate(_) => {
            " (is the registry's CA in `ca_file`, and its certificate for this host name?)"
        }
        rustls::Error::AlertReceived(_) => {
            " (did the registry refuse the client certificate? see `cert_file`, `key_file`)"
        }
        _ => "",
    };
    RegistryError::Tls(format!("{url}: {e}{hint}"))
}

/// The `n`th (from 0) backoff wait: 100ms doubling up to `max`, less `jitter` (0..1) quarters.
fn backoff(round: u32, max: Duration, jitter: f64) -> Duration {
    let nominal = FIRST_BACKOFF
        .checked_mul(1 << round.min(31))
        .unwrap_or(max)
        .min(max);
    nominal.mul_f64(1.0 - 0.25 * jitter.clamp(0.0, 1.0))
}

/// A number in 0..1 that differs between calls and processes (std's hasher keys are random).
fn jitter() -> f64 {
    let n = RandomState::new().hash_one(Instant::now());
    (n >> 11) as f64 / (1u64 << 53) as f64
}

/// Everything but the unreserved characters is escaped, so a subject is one path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A subject as a URL path segment.
fn encode(subject: &str) -> String {
    utf8_percent_encode(subject, SEGMENT).to_string()
}

fn schema_request(
    schema: &str,
    schema_type: SchemaType,
    references: &[SchemaReference],
) -> Result<String, RegistryError> {
    serde_json::to_string(&SchemaRequest {
        schema,
        schema_type,
        references,
    })
    .map_err(|e| RegistryError::Protocol(e.to_string()))
}

/// The start of a body, for messages.
fn snippet(body: &str) -> String {
    let body = body.trim();
    match body.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &body[..i]),
        None if body.is_empty() => "(empty body)".to_string(),
        None => body.to_string(),
    }
}

fn read_pem(key: &str, path: &Path) -> Result<Vec<PemItem<'static>>, RegistryError> {
    let bytes = std::fs::read(path)
        .map_err(|e| RegistryError::Config(format!("{key}: {}: {e}", path.display())))?;
    ureq::tls::parse_pem(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| RegistryError::Config(format!("{key}: {}: {e}", path.display())))
}

fn read_certs(key: &str, path: &Path) -> Result<Vec<Certificate<'static>>, RegistryError> {
    let certs: Vec<_> = read_pem(key, path)?
        .into_iter()
        .filter_map(|item| match item {
            PemItem::Certificate(c) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(RegistryError::Config(format!(
            "{key}: {}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKey<'static>, RegistryError> {
    read_pem("key_file", path)?
        .into_iter()
        .find_map(|item| match item {
            PemItem::PrivateKey(k) => Some(k),
            _ => None,
        })
        .ok_or_else(|| {
            RegistryError::Config(format!(
                "key_file: {}: no PEM private key in it",
                path.display()
            ))
        })
}

/// A poisoned cache lock still holds valid entries (they are inserted whole).
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_one_path_segment() {
        assert_eq!(encode("orders-value"), "orders-value");
        assert_eq!(encode("com.acme.Order_v1~x"), "com.acme.Order_v1~x");
        assert_eq!(encode("my topic/value"), "my%20topic%2Fvalue");
        assert_eq!(encode(":.ctx:orders?"), "%3A.ctx%3Aorders%3F");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn register_body_omits_avro_and_empty_references() {
        assert_eq!(
            schema_request("\"string\"", SchemaType::Avro, &[]).unwrap(),
            r#"{"schema":"\"string\""}"#
        );
        let refs = [SchemaReference {
            name: "common.proto".into(),
            subject: "common".into(),
            version: 2,
        }];
        assert_eq!(
            schema_request("syntax", SchemaType::Protobuf, &refs).unwrap(),
            r#"{"schema":"syntax","schemaType":"PROTOBUF","references":[{"name":"common.proto","subject":"common","version":2}]}"#
        );
    }

    #[test]
    fn answers_parse_with_and_without_schema_type() {
        let a: SchemaAnswer = serde_json::from_str(r#"{"schema":"\"int\""}"#).unwrap();
        assert_eq!(a.schema_type, SchemaType::Avro);
        assert!(a.references.is_empty());
        let a: SchemaAnswer = serde_json::from_str(
            r#"{"subject":"s","version":3,"id":9,"schemaType":"JSON","schema":"{}","guid":"x","references":[{"name":"a.json","subject":"a","version":1}]}"#,
        )
        .unwrap();
        assert_eq!(
            (a.schema_type, a.id, a.version, a.references.len()),
            (SchemaType::Json, Some(9), Some(3), 1)
        );
    }

    #[test]
    fn error_bodies_map_to_errors() {
        let what = || "schema id 7".to_string();
        let e = answer_error(
            404,
            r#"{"error_code":40403,"message":"Schema 7 not found"}"#,
            what,
        );
        assert!(matches!(&e, RegistryError::NotFound { what } if what == "schema id 7"));
        assert_eq!(
            e.to_string(),
            "schema id 7 not found in the schema registry"
        );
        // A 404 that is not the registry's (a wrong path, a proxy) is not about the data.
        let e = answer_error(404, "<html>Not Found</html>", what);
        assert!(
            matches!(&e, RegistryError::Rejected { status: 404, code: None, message } if message == "<html>Not Found</html>"),
            "{e:?}"
        );
        let e = answer_error(
            404,
            r#"{"error_code":404,"message":"HTTP 404 Not Found"}"#,
            what,
        );
        assert!(
            matches!(
                e,
                RegistryError::Rejected {
                    code: Some(404),
                    ..
                }
            ),
            "{e:?}"
        );
        let e = answer_error(
            409,
            r#"{"error_code":409,"message":"Schema being registered is incompatible"}"#,
            what,
        );
        assert_eq!(
            e.to_string(),
            "the schema registry refused the request: HTTP 409 (error code 409): Schema being registered is incompatible"
        );
        let e = answer_error(401, "", what);
        assert!(
            matches!(&e, RegistryError::Rejected { status: 401, message, .. } if message == "(empty body)"),
            "{e:?}"
        );
    }

    #[test]
    fn snippets_are_cut_on_a_char_boundary() {
        let long = "é".repeat(300);
        let s = snippet(&long);
        assert_eq!(s.chars().count(), 203);
        assert!(s.ends_with("..."));
    }

    #[test]
    fn backoff_doubles_from_100ms_up_to_the_cap_less_jitter() {
        let max = Duration::from_secs(30);
        let waits: Vec<u128> = (0..12).map(|r| backoff(r, max, 0.0).as_millis()).collect();
        assert_eq!(
            waits,
            [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000]
        );
        assert_eq!(backoff(u32::MAX, max, 0.0), max);
        assert_eq!(backoff(0, max, 1.0), Duration::from_millis(75));
        assert_eq!(backoff(20, max, 1.0), Duration::from_millis(22_500));
        assert_eq!(
            backoff(3, Duration::from_millis(200), 0.0),
            Duration::from_millis(200)
        );
        let j: Vec<f64> = (0..50).map(|_| jitter()).collect();
        assert!(j.iter().all(|j| (0.0..1.0).contains(j)));
        assert!(j.iter().any(|x| *x != j[0]), "jitter varies");
    }

    #[test]
    fn new_reports_config_problems_and_missing_secrets() {
        let e = RegistryClient::new(&RegistryConfig::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("url: empty"), "{e}");
        let cfg = RegistryConfig {
            url: "http://r".into(),
            username: Some("u".into()),
            password_env: Some("WEIR_TEST_NO_SUCH_VARIABLE".into()),
            ..Default::default()
        };
        let e = RegistryClient::new(&cfg).err().unwrap().to_string();
        assert!(
            e.contains("password_env") && e.contains("WEIR_TEST_NO_SUCH_VARIABLE"),
            "{e}"
        );
        let not_pem = std::env::current_exe().unwrap();
        let cfg = RegistryConfig {
            url: "https://r".into(),
            ca_file: Some(not_pem.clone()),
            ..Default::default()
        };
        let e = RegistryClient::new(&cfg).err().unwrap().to_string();
        assert!(
            e.contains("ca_file") && e.contains(&not_pem.display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn the_client_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<RegistryClient>();
    }
}
