//! The schema registry client against the test registry: caching, references, errors, retries,
//! shutdown, auth, registration and TLS.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use weir::registry::{RegistryClient, RegistryConfig, RegistryError, SchemaReference, SchemaType};

use crate::registry_server::{tls_dir, TestRegistry};

const ORDER: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}"#;
const ORDER_V2: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"amount","type":"double","default":0}]}"#;

/// Quick retries, so that the tests do not wait on backoff.
fn config(url: &str) -> RegistryConfig {
    RegistryConfig {
        url: url.to_string(),
        timeout: Duration::from_secs(5),
        max_backoff: Duration::from_millis(200),
        ..Default::default()
    }
}

fn client(reg: &TestRegistry) -> RegistryClient {
    RegistryClient::new(&config(&reg.url())).unwrap()
}

#[test]
fn registry_schema_by_id_is_fetched_once_and_cached() {
    let reg = TestRegistry::start();
    let id = reg.register("orders-value", "AVRO", ORDER, &[]);
    let c = client(&reg);
    let first = c.schema_by_id(id).unwrap();
    assert_eq!(
        (first.id, first.schema_type, first.schema.as_str()),
        (id, SchemaType::Avro, ORDER)
    );
    assert!(first.references.is_empty() && first.subject.is_none());
    let second = c.schema_by_id(id).unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &second), "the cached value");
    assert_eq!(reg.requests(), [format!("GET /schemas/ids/{id}")]);
}

#[test]
fn registry_references_are_resolved_recursively_and_cached() {
    let reg = TestRegistry::start();
    let common = "syntax = \"proto3\"; package c; message Id { string v = 1; }";
    let money = "syntax = \"proto3\"; package m; import \"common.proto\"; message Money { c.Id currency = 1; int64 units = 2; }";
    let order = "syntax = \"proto3\"; import \"money.proto\"; import \"common.proto\"; message Order { c.Id id = 1; m.Money total = 2; }";
    let refund =
        "syntax = \"proto3\"; import \"money.proto\"; message Refund { m.Money amount = 1; }";
    reg.register("common", "PROTOBUF", common, &[]);
    reg.register("money", "PROTOBUF", money, &[("common.proto", "common", 1)]);
    let order_id = reg.register(
        "orders-value",
        "PROTOBUF",
        order,
        &[("money.proto", "money", 1), ("common.proto", "common", 1)],
    );
    let refund_id = reg.register(
        "refunds-value",
        "PROTOBUF",
        refund,
        &[("money.proto", "money", 1)],
    );
    let c = client(&reg);

    let s = c.schema_by_id(order_id).unwrap();
    assert_eq!(
        (s.schema_type, s.schema.as_str()),
        (SchemaType::Protobuf, order)
    );
    let direct: Vec<&str> = s.references.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(direct, ["money.proto", "common.proto"]);
    let m = &s.references[0].schema;
    assert_eq!(m.schema, money);
    assert_eq!(m.subject, Some(("money".to_string(), 1)));
    assert_eq!(m.references[0].name, "common.proto");
    assert_eq!(m.references[0].schema.schema, common);
    let imports: Vec<(&str, &str)> = s
        .imports()
        .into_iter()
        .map(|(name, s)| (name, s.schema.as_str()))
        .collect();
    assert_eq!(imports, [("common.proto", common), ("money.proto", money)]);

    // Another schema importing the same versions fetches only itself.
    let r = c.schema_by_id(refund_id).unwrap();
    assert_eq!(r.imports().len(), 2);
    assert_eq!(
        reg.requests(),
        [
            format!("GET /schemas/ids/{order_id}"),
            "GET /subjects/money/versions/1".to_string(),
            "GET /subjects/common/versions/1".to_string(),
            format!("GET /schemas/ids/{refund_id}"),
        ]
    );
}

#[test]
fn registry_unknown_ids_subjects_and_versions_are_not_found() {
    let reg = TestRegistry::start();
    reg.register("orders-value", "AVRO", ORDER, &[]);
    let c = client(&reg);
    let e = c.schema_by_id(42).unwrap_err();
    assert!(
        matches!(&e, RegistryError::NotFound { what } if what == "schema id 42"),
        "{e:?}"
    );
    let e = c.latest("no-such-subject").unwrap_err();
    assert!(matches!(e, RegistryError::NotFound { .. }), "{e:?}");
    let e = c.version("orders-value", 7).unwrap_err();
    assert_eq!(
        e.to_string(),
        "subject `orders-value` version 7 not found in the schema registry"
    );
    assert_eq!(reg.requests().len(), 3, "404s are not retried");

    // A 404 that is not the registry's (a wrong base path) is not taken for missing data.
    let wrong = RegistryClient::new(&config(&format!("{}/wrong/prefix", reg.url()))).unwrap();
    let e = wrong.schema_by_id(1).unwrap_err();
    assert!(
        matches!(
            e,
            RegistryError::Rejected {
                status: 404,
                code: Some(404),
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn registry_server_errors_are_retried_until_they_pass() {
    let reg = TestRegistry::start();
    let id = reg.register("orders-value", "AVRO", ORDER, &[]);
    let c = client(&reg);
    reg.fail_next(3, 503);
    let started = Instant::now();
    assert_eq!(c.schema_by_id(id).unwrap().schema, ORDER);
    // Backoff 100ms, 200ms, 200ms (the cap), each less at most a quarter of jitter.
    assert!(
        started.elapsed() >= Duration::from_millis(375),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(reg.requests(), vec![format!("GET /schemas/ids/{id}"); 4]);

    // 429 is retried too; a registration goes through after it.
    reg.fail_next(2, 429);
    let v2 = c
        .register("orders-value", ORDER_V2, SchemaType::Avro, &[])
        .unwrap();
    assert_eq!(v2, id + 1);
    assert_eq!(
        reg.requests()[4..],
        vec!["POST /subjects/orders-value/versions".to_string(); 3]
    );
}

#[test]
fn registry_stalled_answers_past_the_timeout_are_retried() {
    let reg = TestRegistry::start();
    let id = reg.register("orders-value", "AVRO", ORDER, &[]);
    let c = RegistryClient::new(&RegistryConfig {
        timeout: Duration::from_millis(300),
        ..config(&reg.url())
    })
    .unwrap();
    reg.stall_next(2, Duration::from_secs(3));
    let started = Instant::now();
    assert_eq!(c.schema_by_id(id).unwrap().schema, ORDER);
    let took = started.elapsed();
    // Two timeouts and their backoff, not the 3s stalls.
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(reg.requests().len(), 3);
}

#[test]
fn registry_the_stop_flag_ends_retrying_promptly() {
    let reg = TestRegistry::start();
    reg.fail_next(u32::MAX, 503);
    // A long cap: without the flag the client would sleep for seconds between tries.
    let c = RegistryClient::new(&RegistryConfig {
        max_backoff: Duration::from_secs(60),
        ..config(&reg.url())
    })
    .unwrap();
    let stop = c.stop_handle();
    let raised = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        stop.store(true, Ordering::Relaxed);
        Instant::now()
    });
    let e = c.schema_by_id(1).unwrap_err();
    let returned = Instant::now();
    let raised = raised.join().unwrap();
    assert!(
        returned.duration_since(raised) < Duration::from_millis(200),
        "returned {:?} after the flag",
        returned.duration_since(raised)
    );
    match e {
        RegistryError::Unavailable { attempts, last } => {
            // 0, 100, 300, 700 and 1500ms (jitter permitting): at least 4 tries before the flag.
            assert!(attempts >= 4, "{attempts}");
            assert_eq!(attempts as usize, reg.requests().len());
            assert!(
                last.contains("HTTP 503") && last.contains("failing on purpose"),
                "{last}"
            );
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn registry_failover_to_the_next_url() {
    let reg = TestRegistry::start();
    let id = reg.register("orders-value", "AVRO", ORDER, &[]);
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let c = RegistryClient::new(&config(&format!("http://{closed}, {}", reg.url()))).unwrap();
    let started = Instant::now();
    assert_eq!(c.schema_by_id(id).unwrap().schema, ORDER);
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "no backoff before the next URL"
    );
    // The URL that answered is where the next request starts.
    c.latest("orders-value").unwrap();
    assert_eq!(reg.requests().len(), 2);
}

#[test]
fn registry_basic_auth() {
    let reg = TestRegistry::start();
    let id = reg.register("orders-value", "AVRO", ORDER, &[]);
    reg.require_basic_auth("alice", "s3cret");
    let with = |username: &str, password: &str| {
        RegistryClient::new(&RegistryConfig {
            username: Some(username.into()),
            password: Some(password.into()),
            ..config(&reg.url())
        })
        .unwrap()
    };
    assert_eq!(with("alice", "s3cret").schema_by_id(id).unwrap().id, id);

    let e = with("alice", "wrong").schema_by_id(id).unwrap_err();
    assert!(
        matches!(&e, RegistryError::Rejected { status: 401, message, .. } if message == "Unauthorized"),
        "{e:?}"
    );
    let e = client(&reg).latest("orders-value").unwrap_err();
    assert!(
        matches!(e, RegistryError::Rejected { status: 401, .. }),
        "{e:?}"
    );
    assert_eq!(reg.requests().len(), 3, "a 401 is not retried");

    // The password from an environment variable.
    std::env::set_var("WEIR_E2E_REGISTRY_PASSWORD", "s3cret");
    let c = RegistryClient::new(&RegistryConfig {
        username: Some("alice".into()),
        password_env: Some("WEIR_E2E_REGISTRY_PASSWORD".into()),
        ..config(&reg.url())
    })
    .unwrap();
    assert_eq!(c.latest("orders-value").unwrap().id, id);
}

#[test]
fn registry_register_lookup_latest_and_version() {
    let reg = TestRegistry::start();
    let c = client(&reg);
    let subject = "weird subject/value";
    let v1 = c.register(subject, ORDER, SchemaType::Avro, &[]).unwrap();
    let v2 = c
        .register(subject, ORDER_V2, SchemaType::Avro, &[])
        .unwrap();
    assert_ne!(v1, v2);

    let latest = c.latest(subject).unwrap();
    assert_eq!(
        (
            latest.subject.as_str(),
            latest.version,
            latest.id,
            latest.schema.schema.as_str()
        ),
        (subject, 2, v2, ORDER_V2)
    );
    let first = c.version(subject, 1).unwrap();
    assert_eq!(
        (first.version, first.id, first.schema.schema.as_str()),
        (1, v1, ORDER)
    );
    assert_eq!(c.version(subject, -1).unwrap().id, v2);

    assert_eq!(
        c.lookup(subject, ORDER, SchemaType::Avro, &[]).unwrap(),
        Some(v1)
    );
    let unknown = r#"{"type":"string"}"#;
    assert_eq!(
        c.lookup(subject, unknown, SchemaType::Avro, &[]).unwrap(),
        None
    );
    assert_eq!(
        c.lookup("nobody", ORDER, SchemaType::Avro, &[]).unwrap(),
        None
    );

    // References go with a registration; a Protobuf schema is typed.
    let common = c
        .register(
            "common",
            "syntax = \"proto3\"; message Id {}",
            SchemaType::Protobuf,
            &[],
        )
        .unwrap();
    let refs = [SchemaReference {
        name: "common.proto".into(),
        subject: "common".into(),
        version: 1,
    }];
    let text = "syntax = \"proto3\"; import \"common.proto\"; message Order { Id id = 1; }";
    let order = c
        .register("orders-proto", text, SchemaType::Protobuf, &refs)
        .unwrap();
    let s = c.schema_by_id(order).unwrap();
    assert_eq!(s.schema_type, SchemaType::Protobuf);
    assert_eq!(s.references[0].schema.id, common);
    assert_eq!(
        c.lookup("orders-proto", text, SchemaType::Protobuf, &refs)
            .unwrap(),
        Some(order)
    );

    // An invalid schema is refused with the registry's code, once.
    let before = reg.requests().len();
    let e = c
        .register(subject, "{not json", SchemaType::Avro, &[])
        .unwrap_err();
    assert!(
        matches!(&e, RegistryError::Rejected { status: 422, code: Some(42201), message } if message.starts_with("Invalid schema")),
        "{e:?}"
    );
    assert_eq!(reg.requests().len(), before + 1);
    assert!(
        reg.requests()
            .contains(&"POST /subjects/weird%20subject%2Fvalue/versions".to_string()),
        "{:?}",
        reg.requests()
    );
}

#[test]
fn registry_the_same_schema_registered_twice_is_one_request() {
    let reg = TestRegistry::start();
    let c = client(&reg);
    let id = c
        .register("orders-value", ORDER, SchemaType::Avro, &[])
        .unwrap();
    assert_eq!(
        c.register("orders-value", ORDER, SchemaType::Avro, &[])
            .unwrap(),
        id
    );
    assert_eq!(reg.requests(), ["POST /subjects/orders-value/versions"]);
    // Under another subject: a request, and the registry's same id.
    assert_eq!(
        c.register("orders-copy", ORDER, SchemaType::Avro, &[])
            .unwrap(),
        id
    );
    assert_eq!(reg.requests().len(), 2);
}

#[test]
fn registry_tls_trusts_ca_file_and_fails_clearly_without_it() {
    let reg = TestRegistry::start_tls(false);
    let id = reg.register("orders-value", "AVRO", ORDER, &[]);
    let trusted = RegistryClient::new(&RegistryConfig {
        ca_file: Some(tls_dir().join("ca.pem")),
        ..config(&reg.url())
    })
    .unwrap();
    assert_eq!(trusted.schema_by_id(id).unwrap().schema, ORDER);

    let started = Instant::now();
    let e = client(&reg).schema_by_id(id).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1), "not retried");
    let RegistryError::Tls(message) = &e else {
        panic!("{e:?}")
    };
    assert!(
        message.contains("invalid peer certificate") && message.contains("ca_file"),
        "{message}"
    );

    let insecure = RegistryClient::new(&RegistryConfig {
        insecure_skip_verify: true,
        ..config(&reg.url())
    })
    .unwrap();
    assert_eq!(insecure.schema_by_id(id).unwrap().id, id);
    // The failed handshake never made a request.
    assert_eq!(reg.requests().len(), 2);
}

#[test]
fn registry_mutual_tls_sends_the_client_certificate() {
    let reg = TestRegistry::start_tls(true);
    let id = reg.register("orders-value", "AVRO", ORDER, &[]);
    let dir = tls_dir();
    let trusting = RegistryConfig {
        ca_file: Some(dir.join("ca.pem")),
        ..config(&reg.url())
    };
    let with_cert = RegistryClient::new(&RegistryConfig {
        cert_file: Some(dir.join("client.pem")),
        key_file: Some(dir.join("client.key")),
        ..trusting.clone()
    })
    .unwrap();
    assert_eq!(with_cert.schema_by_id(id).unwrap().schema, ORDER);

    let without = RegistryClient::new(&trusting).unwrap();
    let e = without.schema_by_id(id).unwrap_err();
    let RegistryError::Tls(message) = &e else {
        panic!("{e:?}")
    };
    assert!(
        message.contains("received fatal alert") && message.contains("cert_file"),
        "{message}"
    );
    assert_eq!(reg.requests().len(), 1);

    // A key file that holds no key is named.
    let e = RegistryClient::new(&RegistryConfig {
        cert_file: Some(dir.join("client.pem")),
        key_file: Some(dir.join("client.pem")),
        ..trusting
    })
    .err()
    .unwrap();
    assert!(
        e.to_string().contains("key_file") && e.to_string().contains("client.pem"),
        "{e}"
    );
}
