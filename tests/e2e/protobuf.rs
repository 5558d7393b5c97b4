//! Protobuf through Kafka: Confluent-framed messages (schema id and message indexes) whose
//! `.proto` schema and its import come from the schema registry, encoded by prost-reflect (an
//! independent encoder), decoded by weir into Parquet and read back with pyarrow.

use std::collections::HashMap;
use std::time::Duration;

use prost_reflect::prost::Message;
use prost_reflect::{DynamicMessage, MapKey, Value};

use crate::harness::*;
use crate::registry_server::TestRegistry;

const COMMON: &str = r#"syntax = "proto3";
package acme;
message Money { string currency = 1; int64 units = 2; }
"#;

const ORDERS: &str = r#"syntax = "proto3";
package acme;
import "acme/common.proto";
import "google/protobuf/timestamp.proto";
message Order {
  enum Status { NEW = 0; PAID = 1; }
  message Line { string sku = 1; int32 qty = 2; }
  string id = 1;
  Money total = 2;
  repeated string tags = 3;
  map<string, int64> attrs = 4;
  Status status = 5;
  google.protobuf.Timestamp at = 6;
  repeated Line lines = 7;
  optional string note = 8;
}
message Refund { string id = 1; double amount = 2; }
"#;

/// Confluent framing: magic 0, schema id, message indexes (`[0]` is written as a single 0).
fn framed(id: u32, indexes: &[i32], body: &[u8]) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&id.to_be_bytes());
    let zigzag = |v: &mut Vec<u8>, n: i64| {
        let mut z = ((n << 1) ^ (n >> 63)) as u64;
        while z >= 0x80 {
            v.push(z as u8 | 0x80);
            z >>= 7;
        }
        v.push(z as u8);
    };
    if indexes == [0] {
        v.push(0);
    } else {
        zigzag(&mut v, indexes.len() as i64);
        for &i in indexes {
            zigzag(&mut v, i as i64);
        }
    }
    v.extend_from_slice(body);
    v
}

#[test]
fn protobuf_from_the_registry_with_imports_decodes_to_parquet() {
    let registry = TestRegistry::start();
    registry.register("acme/common.proto", "PROTOBUF", COMMON, &[]);
    let id = registry.register(
        "orders-value",
        "PROTOBUF",
        ORDERS,
        &[("acme/common.proto", "acme/common.proto", 1)],
    );
    let pool = weir::decode::protobuf::compile_proto(
        "orders.proto",
        &[
            ("acme/common.proto".into(), COMMON.into()),
            ("orders.proto".into(), ORDERS.into()),
        ],
    )
    .unwrap();
    let order_desc = pool.get_message_by_name("acme.Order").unwrap();
    let refund_desc = pool.get_message_by_name("acme.Refund").unwrap();
    let w = Workdir::new();
    let cluster = Cluster::new(&["pb", "weir-dlq"]);
    let mut messages = Vec::new();
    for k in 0..200i64 {
        let key = format!("o-{k}");
        let value = if k % 4 == 3 {
            let mut m = DynamicMessage::new(refund_desc.clone());
            m.set_field_by_name("id", Value::String(key.clone()));
            m.set_field_by_name("amount", Value::F64(k as f64 / 2.0));
            framed(id, &[1], &m.encode_to_vec())
        } else {
            let mut m = DynamicMessage::new(order_desc.clone());
            m.set_field_by_name("id", Value::String(key.clone()));
            let mut money = DynamicMessage::new(pool.get_message_by_name("acme.Money").unwrap());
            money.set_field_by_name("currency", Value::String("EUR".into()));
            money.set_field_by_name("units", Value::I64(k * 100));
            m.set_field_by_name("total", Value::Message(money));
            m.set_field_by_name(
                "tags",
                Value::List((0..k % 3).map(|t| Value::String(format!("t{t}"))).collect()),
            );
            let attrs: HashMap<MapKey, Value> = [(MapKey::String("n".into()), Value::I64(k))]
                .into_iter()
                .collect();
            m.set_field_by_name("attrs", Value::Map(attrs));
            m.set_field_by_name("status", Value::EnumNumber((k % 2) as i32));
            if k % 5 == 0 {
                m.set_field_by_name("note", Value::String("gift".into()));
            }
            framed(id, &[0], &m.encode_to_vec())
        };
        messages.push(("pb".to_string(), key, value));
    }
    let good = messages[0].2.clone();
    let poison: [(&str, Vec<u8>, &str); 3] = [
        (
            "unknown-id",
            framed(id + 100, &[0], &good[6..]),
            "unknown schema id",
        ),
        ("bad-index", framed(id, &[7], &good[6..]), "schema id"),
        ("truncated", good[..good.len() - 3].to_vec(), "protobuf"),
    ];
    for (key, value, _) in &poison {
        messages.push(("pb".into(), (*key).to_string(), value.clone()));
    }
    let out = w.path().join("out");
    let yaml = format!(
        r#"source:
  kafka:
    brokers: "{brokers}"
    group_id: weir-pb
    topics: [pb]
    batch: {{ max_records: 1000, max_wait: 50ms }}
    until_idle: 3s
schema_registry: {{ url: "{url}" }}
decode:
  format: protobuf
  metadata: [_key]
routes:
  - match: acme\.Order
    sink: {{ parquet: {{ path: "{orders}" }} }}
  - match: acme\.Refund
    sink: {{ parquet: {{ path: "{refunds}" }} }}
errors:
  dead_letter: {{ kafka: {{ topic: weir-dlq }} }}
"#,
        brokers = cluster.brokers(),
        url = registry.url(),
        orders = out.join("orders").display(),
        refunds = out.join("refunds").display(),
    );
    let config = w.write_config(&yaml);
    let mut child = w.spawn(&config, 1);
    cluster.produce(&messages);
    let status = w.wait(&mut child, 1, Duration::from_secs(90));
    assert!(status.success(), "{}", w.logs(1));

    let orders = crate::pyarrow_read(
        &out.join("orders"),
        &["id", "total", "tags", "attrs", "status", "note"],
    );
    assert_eq!(orders["rows"], 150, "{}", w.logs(1));
    let schema = orders["schema"].as_str().unwrap();
    assert!(schema.contains("at: timestamp[ns, tz=UTC]"), "{schema}");
    for r in orders["records"].as_array().unwrap() {
        let id = r["id"].as_str().unwrap();
        let k: i64 = id[2..].parse().unwrap();
        assert_eq!(r["total"]["units"], k * 100, "{r}");
        assert_eq!(r["total"]["currency"], "EUR");
        assert_eq!(r["tags"].as_array().unwrap().len() as i64, k % 3, "{r}");
        assert_eq!(r["attrs"], serde_json::json!([["n", k]]), "{r}");
        assert_eq!(r["status"], ["NEW", "PAID"][(k % 2) as usize], "{r}");
        assert_eq!(r["note"].is_null(), k % 5 != 0, "{r}");
    }
    let refunds = crate::pyarrow_read(&out.join("refunds"), &["id", "amount"]);
    assert_eq!(refunds["rows"], 50);
    for r in refunds["records"].as_array().unwrap() {
        let k: f64 = r["id"].as_str().unwrap()[2..].parse().unwrap();
        assert_eq!(r["amount"].as_f64().unwrap(), k / 2.0);
    }
    let dead = cluster.read_topic("weir-dlq", poison.len());
    assert_decode_dead_letters(&dead, &poison, &w.logs(1));
}
