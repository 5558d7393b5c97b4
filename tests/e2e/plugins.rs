//! The built-in plugins end to end: filter + enrich + project on orders, mask on payments, both
//! into Parquet read back by pyarrow and checked value by value; every message accounted for.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sha2::Digest;

use crate::harness::*;
use crate::pyarrow_read;

/// The FX table the enrich step is granted: currency -> rate to EUR.
const FX: &str = "currency,rate\nEUR,1.0\nUSD,0.5\nGBP,1.25\n";

fn rate(currency: &str) -> Option<f64> {
    match currency {
        "EUR" => Some(1.0),
        "USD" => Some(0.5),
        "GBP" => Some(1.25),
        _ => None,
    }
}

fn config(brokers: &str, orders: &std::path::Path, payments: &std::path::Path) -> String {
    format!(
        r#"source:
  kafka:
    brokers: "{brokers}"
    group_id: weir-e2e-plugins
    topics: [orders, payments]
    batch: {{ max_records: 700, max_wait: 50ms }}
    commit_interval: 200ms
    until_idle: 2s
decode:
  schemas:
    orders: {{ fields: {{ id: utf8, amount: float64, currency: utf8, customer: "struct<tier: utf8>" }} }}
    payments: {{ fields: {{ id: utf8, email: utf8, card: "struct<brand: utf8, last4: utf8>" }} }}
routes:
  - name: orders
    match: orders
    transforms:
      # `abs` of a string fails: big orders in the currency BAD are row failures.
      - plugin: builtin:filter
        params: {{ where: "amount > `100` && (currency != 'BAD' || abs(currency) > `0`)" }}
      - plugin: builtin:enrich
        files: {{ fx: fx.csv }}
        params: {{ table: fx, on: currency, key: currency, columns: [rate] }}
      - plugin: builtin:project
        params: {{ select: "{{id: id, tier: customer.tier, currency: currency, eur: amount * rate}}" }}
    sink:
      parquet: {{ path: "{orders}", max_rows: 2000, max_age: 1s }}
  - name: payments
    match: payments
    transforms:
      - plugin: builtin:mask
        params:
          fields:
            email: {{ hash: {{ salt: pepper }} }}
            card.last4: {{ fixed: "****" }}
    sink:
      parquet: {{ path: "{payments}", max_rows: 2000, max_age: 1s }}
errors:
  dead_letter: {{ kafka: {{ topic: weir-dlq }} }}
"#,
        orders = orders.display(),
        payments = payments.display(),
    )
}

/// What must become of each order.
#[derive(Default)]
struct Expected {
    /// Kept orders: id -> (tier, currency, amount).
    kept: BTreeMap<String, (String, String, f64)>,
    filtered: BTreeSet<String>,
    failed: BTreeSet<String>,
    /// Payments: id -> email.
    payments: BTreeMap<String, String>,
}

fn input(n: usize) -> (Vec<(String, String, Vec<u8>)>, Expected) {
    let mut messages = Vec::new();
    let mut e = Expected::default();
    for k in 0..n {
        if k % 3 == 2 {
            let id = format!("p-{k}");
            let email = format!("user{k}@example.com");
            let value = format!(
                r#"{{"id":"{id}","email":"{email}","card":{{"brand":"visa","last4":"{:04}"}}}}"#,
                k % 10_000
            );
            e.payments.insert(id.clone(), email);
            messages.push(("payments".to_string(), id, value.into_bytes()));
            continue;
        }
        let id = format!("o-{k}");
        let amount = (k * 37 % 200) as f64 + 0.25;
        let currency = ["EUR", "USD", "GBP", "CHF", "BAD"][k % 5];
        let tier = ["free", "gold"][k % 2];
        if amount <= 100.0 {
            e.filtered.insert(id.clone());
        } else if currency == "BAD" {
            e.failed.insert(id.clone());
        } else {
            e.kept
                .insert(id.clone(), (tier.into(), currency.into(), amount));
        }
        let value = format!(
            r#"{{"id":"{id}","amount":{amount},"currency":"{currency}","customer":{{"tier":"{tier}"}}}}"#
        );
        messages.push(("orders".to_string(), id, value.into_bytes()));
    }
    (messages, e)
}

fn hex_sha256(salt: &str, value: &str) -> String {
    let digest = sha2::Sha256::new()
        .chain_update(salt)
        .chain_update(value)
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn filter_enrich_project_and_mask_into_parquet() {
    let cluster = Cluster::new(&["orders", "payments", "weir-dlq"]);
    let work = Workdir::new();
    std::fs::write(work.path().join("fx.csv"), FX).unwrap();
    let (orders, payments) = (work.path().join("orders"), work.path().join("payments"));
    let cfg = work.write_config(&config(&cluster.brokers(), &orders, &payments));
    let (messages, expected) = input(3000);
    assert!(
        !(expected.kept.is_empty() || expected.filtered.is_empty() || expected.failed.is_empty())
    );
    cluster.produce(&messages);
    let mut child = work.spawn(&cfg, 1);
    let status = work.wait(&mut child, 1, Duration::from_secs(120));
    assert!(status.success(), "weir failed\n{}", work.logs(1));

    // Orders: exactly the kept ones, each once, shaped by project, with eur = amount * rate.
    let read = pyarrow_read(&orders, &["id", "tier", "currency", "eur"]);
    assert!(
        read["schema"]
            .as_str()
            .unwrap()
            .starts_with("id: string; tier: string; currency: string; eur: double"),
        "{}",
        read["schema"]
    );
    let records = read["records"].as_array().unwrap();
    let mut seen = BTreeSet::new();
    for r in records {
        let id = r["id"].as_str().unwrap();
        assert!(seen.insert(id.to_string()), "{id} written twice");
        let (tier, currency, amount) = &expected.kept[id];
        assert_eq!(r["tier"], tier.as_str(), "{r}");
        assert_eq!(r["currency"], currency.as_str(), "{r}");
        match rate(currency) {
            Some(rate) => {
                let eur = r["eur"].as_f64().unwrap();
                assert!((eur - amount * rate).abs() < 1e-9, "{r}: {amount} * {rate}");
            }
            // A currency the table lacks joins as null, so eur is null.
            None => assert!(r["eur"].is_null(), "{r}"),
        }
    }
    assert_eq!(seen, expected.kept.keys().cloned().collect());

    // Payments: every one, the email hashed as `sha256(email, 'pepper')`, the digits hidden.
    let read = pyarrow_read(&payments, &["id", "email", "card"]);
    let records = read["records"].as_array().unwrap();
    assert_eq!(records.len(), expected.payments.len());
    for r in records {
        let email = &expected.payments[r["id"].as_str().unwrap()];
        assert_eq!(r["email"], hex_sha256("pepper", email).as_str(), "{r}");
        assert_eq!(r["card"]["last4"], "****", "{r}");
        assert_eq!(r["card"]["brand"], "visa", "{r}");
    }

    // The failed rows are dead letters with the filter's reason; the rest were filtered.
    let dead = cluster.read_topic("weir-dlq", expected.failed.len());
    assert_eq!(keys(&dead), crate::once(&expected.failed));
    for d in &dead {
        assert_eq!(d.headers["weir.stage"], "transform");
        assert_eq!(d.headers["weir.plugin"], "builtin:filter");
        assert!(
            d.headers["weir.error"].contains("where: abs()"),
            "{:?}",
            d.headers
        );
    }
    let s = work.summary(1);
    assert_eq!(s["consumed"], messages.len());
    assert_eq!(s["routes"][0]["filtered"], expected.filtered.len());
    assert_eq!(s["routes"][0]["rows_out"], expected.kept.len());
    assert_eq!(work.committed_total(1), messages.len() as i64);
}
