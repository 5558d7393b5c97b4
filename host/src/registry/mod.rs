//! A Confluent-compatible schema registry client.
//!
//! Blocking HTTP (the pipeline is synchronous threads) with `ureq` on rustls. Schemas by id are
//! immutable, so they are cached forever; so are subject versions and registrations. An outage is
//! retried with capped exponential backoff for as long as it lasts: a worker stalls rather than
//! dead-letter good data, and only [`RegistryError::NotFound`] (the registry itself said the id or
//! subject does not exist) is an answer about the data. The [`RegistryClient::stop_handle`] flag
//! ends the retrying on shutdown.

mod client;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use client::RegistryClient;

/// How to reach the schema registry.
///
/// Relative `ca_file`, `cert_file` and `key_file` paths are resolved by
/// [`RegistryConfig::resolve_paths`] (the config loader passes the config file's folder);
/// [`RegistryClient::new`] takes them as they are, relative to the working directory.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Base URL, e.g. `https://registry:8081`; several comma-separated URLs are tried in turn when
    /// one cannot be reached.
    pub url: String,
    /// HTTP basic auth user (Confluent Cloud: the API key).
    #[serde(default)]
    pub username: Option<String>,
    /// HTTP basic auth password (Confluent Cloud: the API secret). Prefer `password_env`.
    #[serde(default)]
    pub password: Option<String>,
    /// The environment variable that holds the password, to keep the secret out of the YAML.
    #[serde(default)]
    pub password_env: Option<String>,
    /// PEM CA bundle to trust instead of the built-in (Mozilla) roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for mutual TLS; needs `key_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate. For tests only: it gives up what TLS is for.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Time limit of one request (connect, send, answer); a request over it is retried.
    #[serde(default = "default_timeout", with = "crate::config::humantime_serde")]
    pub timeout: Duration,
    /// Cap of the retry backoff: the first retry waits 100ms, then each wait doubles up to this
    /// (minus up to a quarter of jitter, so that workers do not retry in step).
    #[serde(
        default = "default_max_backoff",
        with = "crate::config::humantime_serde"
    )]
    pub max_backoff: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_max_backoff() -> Duration {
    Duration::from_secs(30)
}

impl Default for RegistryConfig {
    /// No URL (set one), no auth, built-in roots, the default timeout and backoff.
    fn default() -> Self {
        Self {
            url: String::new(),
            username: None,
            password: None,
            password_env: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            insecure_skip_verify: false,
            timeout: default_timeout(),
            max_backoff: default_max_backoff(),
        }
    }
}

/// The password is not printed.
impl fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_env", &self.password_env)
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field("timeout", &self.timeout)
            .field("max_backoff", &self.max_backoff)
            .finish()
    }
}

impl RegistryConfig {
    /// Resolves relative `ca_file`, `cert_file` and `key_file` against `base` (the config file's
    /// folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        for path in [&mut self.ca_file, &mut self.cert_file, &mut self.key_file]
            .into_iter()
            .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// The base URLs, trailing slashes trimmed.
    pub fn urls(&self) -> Vec<String> {
        self.url
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
            .collect()
    }

    /// Every problem, each prefixed with its key (`url: ...`). Call after
    /// [`resolve_paths`](Self::resolve_paths). Whether `password_env` is set is checked by
    /// [`RegistryClient::new`], since `weir validate` may run where the secret is not.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        let urls = self.urls();
        if urls.is_empty() {
            p.push("url: empty; give e.g. http://registry:8081".to_string());
        }
        for u in &urls {
            let rest = u
                .strip_prefix("https://")
                .or_else(|| u.strip_prefix("http://"));
            match rest {
                None => p.push(format!("url: `{u}` is not an http:// or https:// URL")),
                Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                    p.push(format!("url: `{u}` has no host"))
                }
                Some(_) => {}
            }
        }
        match (&self.username, &self.password, &self.password_env) {
            (_, Some(_), Some(_)) => {
                p.push("password: give `password` or `password_env`, not both".into())
            }
            (None, Some(_), None) | (None, None, Some(_)) => {
                p.push("username: a password without a username".into())
            }
            (Some(_), None, None) => {
                p.push("password: a username without `password` or `password_env`".into())
            }
            _ => {}
        }
        if let Some(var) = &self.password_env {
            if var.trim().is_empty() {
                p.push("password_env: empty; name an environment variable".into());
            }
        }
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => p.push("key_file: `cert_file` needs its private key".into()),
            (None, Some(_)) => p.push("cert_file: `key_file` without a certificate".into()),
            _ => {}
        }
        for (key, path) in [
            ("ca_file", &self.ca_file),
            ("cert_file", &self.cert_file),
            ("key_file", &self.key_file),
        ] {
            if let Some(path) = path {
                if let Err(e) = std::fs::File::open(path) {
                    p.push(format!("{key}: {}: {e}", path.display()));
                }
            }
        }
        if self.timeout.is_zero() {
            p.push("timeout: must be more than 0".into());
        }
        if self.max_backoff.is_zero() {
            p.push("max_backoff: must be more than 0".into());
        }
        p
    }
}

/// The kind of a registered schema; the registry omits `schemaType` for Avro.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SchemaType {
    /// Apache Avro.
    #[default]
    Avro,
    /// Protocol Buffers.
    Protobuf,
    /// JSON Schema.
    Json,
}

impl SchemaType {
    /// The registry's name: `AVRO`, `PROTOBUF`, `JSON`.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Protobuf => "PROTOBUF",
            SchemaType::Json => "JSON",
        }
    }
}

impl fmt::Display for SchemaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A schema's reference to another, as the registry writes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SchemaReference {
    /// The import name: the Protobuf import path (`common/money.proto`), the Avro full type name,
    /// or the JSON Schema `$ref` URL.
    pub name: String,
    /// The subject it is registered under.
    pub subject: String,
    /// Its version in that subject.
    pub version: i32,
}

/// A schema from the registry, with its references fetched.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredSchema {
    /// The global schema id (what the wire format's header carries).
    pub id: u32,
    /// Avro, Protobuf or JSON Schema.
    pub schema_type: SchemaType,
    /// The schema text as registered.
    pub schema: String,
    /// The direct references, in the registry's order, each resolved recursively.
    pub references: Vec<ResolvedReference>,
    /// The subject and version, when fetched through one (`None` when fetched by id: an id may be
    /// registered under several subjects).
    pub subject: Option<(String, i32)>,
}

/// A reference and the schema it names.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedReference {
    /// The import name (see [`SchemaReference::name`]).
    pub name: String,
    /// The referenced schema, its own references resolved.
    pub schema: Arc<RegisteredSchema>,
}

impl RegisteredSchema {
    /// Every schema this one imports, directly or not, by import name, each once (the first name
    /// met wins), dependencies before their dependents: the order Avro needs to define named types
    /// before they are used, and what a Protobuf compiler takes as its import files.
    pub fn imports(&self) -> Vec<(&str, &RegisteredSchema)> {
        fn walk<'a>(s: &'a RegisteredSchema, out: &mut Vec<(&'a str, &'a RegisteredSchema)>) {
            for r in &s.references {
                if out.iter().any(|(name, _)| *name == r.name) {
                    continue;
                }
                walk(&r.schema, out);
                if !out.iter().any(|(name, _)| *name == r.name) {
                    out.push((&r.name, &r.schema));
                }
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }
}

/// A version of a subject.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// The version number within the subject (from 1).
    pub version: i32,
    /// The global schema id.
    pub id: u32,
    /// The schema, references resolved.
    pub schema: Arc<RegisteredSchema>,
}

/// What can go wrong talking to the registry.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    /// The registry answered 404 with a registry error code (40401 subject, 40402 version, 40403
    /// schema): the data names something that does not exist. A 404 without such a code (a wrong
    /// URL path, a proxy) is [`Rejected`](Self::Rejected) instead, so that a misconfiguration is
    /// never mistaken for bad data.
    #[error("{what} not found in the schema registry")]
    NotFound {
        /// What was asked for: `schema id 7`, `subject `orders-value` version 3`.
        what: String,
    },
    /// The registry refused the request (a 4xx other than 429): 401/403 credentials, 409
    /// incompatible schema, 422 invalid schema, ... Not retried.
    #[error("the schema registry refused the request: HTTP {status}{}: {message}", code.map(|c| format!(" (error code {c})")).unwrap_or_default())]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The registry's `error_code`, when the body had one.
        code: Option<u32>,
        /// The registry's `message`, or the start of the body.
        message: String,
    },
    /// The registry could not be reached, and the stop flag was raised while retrying.
    #[error("the schema registry is unavailable ({attempts} attempt(s), stopped retrying for shutdown): {last}")]
    Unavailable {
        /// Requests made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// TLS failed on a certificate or protocol mismatch. Not retried: waiting does not make an
    /// untrusted certificate trusted.
    #[error("TLS with the schema registry failed: {0}")]
    Tls(String),
    /// The registry settings are not usable (a missing file, an unset `password_env`).
    #[error("schema registry config: {0}")]
    Config(String),
    /// The registry's answer could not be understood.
    #[error("unexpected answer from the schema registry: {0}")]
    Protocol(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<RegistryConfig, String> {
        serde_saphyr::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_humantime_durations() {
        let c = parse("url: http://r:8081").unwrap();
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.max_backoff, Duration::from_secs(30));
        assert!(!c.insecure_skip_verify);
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        let c = parse("url: http://r\ntimeout: 250ms\nmax_backoff: 2s").unwrap();
        assert_eq!(c.timeout, Duration::from_millis(250));
        assert_eq!(c.max_backoff, Duration::from_secs(2));
        let e = parse("url: http://r\ntimeout: soon").unwrap_err();
        assert!(e.contains("not a duration"), "{e}");
        let e = parse("url: http://r\npasword: x").unwrap_err();
        assert!(e.contains("pasword"), "{e}");
    }

    #[test]
    fn several_urls_are_split_and_trimmed() {
        let c = RegistryConfig {
            url: " http://a:8081/ , https://b/prefix/,".into(),
            ..Default::default()
        };
        assert_eq!(c.urls(), ["http://a:8081", "https://b/prefix"]);
        assert!(c.validate().is_empty(), "{:?}", c.validate());
    }

    #[test]
    fn validate_reports_every_problem_by_key() {
        let c = RegistryConfig {
            url: "ftp://r, http:///path".into(),
            username: Some("u".into()),
            password: Some("p".into()),
            password_env: Some("P".into()),
            ca_file: Some("/no/such/ca.pem".into()),
            cert_file: Some("/no/such/cert.pem".into()),
            timeout: Duration::ZERO,
            ..Default::default()
        };
        let p = c.validate();
        for expected in [
            "url: `ftp://r` is not an http:// or https:// URL",
            "url: `http:///path` has no host",
            "password: give `password` or `password_env`, not both",
            "key_file: `cert_file` needs its private key",
            "ca_file: /no/such/ca.pem: ",
            "cert_file: /no/such/cert.pem: ",
            "timeout: must be more than 0",
        ] {
            assert!(
                p.iter().any(|p| p.starts_with(expected)),
                "{expected} in {p:?}"
            );
        }
        assert_eq!(p.len(), 7, "{p:?}");

        let empty = RegistryConfig::default().validate();
        assert_eq!(empty, ["url: empty; give e.g. http://registry:8081"]);
        let no_user = RegistryConfig {
            url: "http://r".into(),
            password_env: Some("P".into()),
            ..Default::default()
        };
        assert_eq!(
            no_user.validate(),
            ["username: a password without a username"]
        );
        let no_cert = RegistryConfig {
            url: "http://r".into(),
            key_file: Some(std::env::current_exe().unwrap()),
            ..Default::default()
        };
        assert_eq!(
            no_cert.validate(),
            ["cert_file: `key_file` without a certificate"]
        );
    }

    #[test]
    fn relative_paths_resolve_against_the_base() {
        let mut c = RegistryConfig {
            url: "https://r".into(),
            ca_file: Some("certs/ca.pem".into()),
            key_file: Some("/abs/key.pem".into()),
            ..Default::default()
        };
        c.resolve_paths(Path::new("/etc/weir"));
        assert_eq!(c.ca_file.unwrap(), Path::new("/etc/weir/certs/ca.pem"));
        assert_eq!(c.key_file.unwrap(), Path::new("/abs/key.pem"));
        assert_eq!(c.cert_file, None);
    }

    #[test]
    fn debug_hides_the_password() {
        let c = RegistryConfig {
            url: "http://r".into(),
            username: Some("key".into()),
            password: Some("hunter2".into()),
            ..Default::default()
        };
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2") && d.contains("<redacted>"), "{d}");
    }

    fn schema(id: u32, refs: Vec<(&str, Arc<RegisteredSchema>)>) -> Arc<RegisteredSchema> {
        Arc::new(RegisteredSchema {
            id,
            schema_type: SchemaType::Protobuf,
            schema: format!("schema {id}"),
            references: refs
                .into_iter()
                .map(|(name, schema)| ResolvedReference {
                    name: name.into(),
                    schema,
                })
                .collect(),
            subject: None,
        })
    }

    #[test]
    fn imports_are_transitive_deduplicated_and_dependencies_first() {
        let common = schema(1, vec![]);
        let money = schema(2, vec![("common.proto", common.clone())]);
        let top = schema(
            3,
            vec![("money.proto", money), ("common.proto", common.clone())],
        );
        let names: Vec<(&str, u32)> = top.imports().iter().map(|(n, s)| (*n, s.id)).collect();
        assert_eq!(names, [("common.proto", 1), ("money.proto", 2)]);
        assert!(common.imports().is_empty());
    }
}
