//! The official JMESPath compliance suite (jmespath.test), as the `jmespath` crate's package on
//! crates.io carries it: every case, through [`Expr::search`]. Each given document is also run
//! column-wise, as a one-row batch, against the row semantics on the same Arrow data.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use weir_expr::{EvalError, Expr, Value};

/// `tests/compliance` of the `jmespath` package, found through `cargo metadata`.
fn suite_dir() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let manifest = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "jmespath")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("the jmespath crate is a dev-dependency");
    PathBuf::from(manifest)
        .parent()
        .unwrap()
        .join("tests/compliance")
}

#[test]
fn official_compliance_suite() {
    let dir = suite_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "suite not found in {}", dir.display());
    let (mut passed, mut columnar) = (0, 0);
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(file).unwrap();
        let suites = Value::parse_json(&text).unwrap();
        let Value::Array(suites) = suites else {
            panic!("{name}: not a list")
        };
        for suite in suites {
            let Value::Object(suite) = suite else {
                panic!("{name}: not an object")
            };
            let given = suite.get("given").cloned().unwrap_or_default();
            let Some(Value::Array(cases)) = suite.get("cases") else {
                continue;
            };
            for case in cases {
                let Value::Object(case) = case else { continue };
                let Some(Value::String(source)) = case.get("expression") else {
                    continue;
                };
                let outcome = check(&given, source, case.get("result"), case.get("error"));
                match outcome {
                    Ok(true) => passed += 1,
                    Ok(false) => {} // a benchmark entry: nothing to check
                    Err(why) => failures.push(format!("{name}: `{source}`: {why}")),
                }
                if columnar_agrees(&given, source) {
                    columnar += 1;
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} compliance cases failed:\n{}",
        failures.len(),
        failures.len() + passed,
        failures.join("\n")
    );
    assert!(passed > 600, "only {passed} cases ran");
    println!("compliance: {passed} cases passed; {columnar} also checked column-wise");
}

/// `Ok(true)` when the case passes, `Ok(false)` for entries with nothing to check.
fn check(
    given: &Value,
    source: &str,
    result: Option<&Value>,
    error: Option<&Value>,
) -> Result<bool, String> {
    let parsed = Expr::parse(source);
    match (result, error) {
        (Some(want), None) => {
            let expr = parsed.map_err(|e| format!("does not parse: {e}"))?;
            let got = expr.search(given).map_err(|e| format!("failed: {e}"))?;
            if &got == want {
                Ok(true)
            } else {
                Err(format!("gave {got}, expected {want}"))
            }
        }
        (_, Some(Value::String(kind))) => {
            let got = parsed
                .map_err(|e| ("parse", e.to_string()))
                .and_then(|expr| {
                    expr.search(given).map_err(|e| {
                        let k = match e {
                            EvalError::InvalidType { .. } => "invalid-type",
                            EvalError::InvalidValue(_) => "invalid-value",
                            _ => "other",
                        };
                        (k, e.to_string())
                    })
                });
            // Unknown functions and wrong arities are refused when the expression is parsed.
            let expected_stage = match kind.as_str() {
                "syntax" | "unknown-function" | "invalid-arity" => "parse",
                other => other,
            };
            match got {
                Err((stage, _)) if stage == expected_stage => Ok(true),
                Err((stage, msg)) => Err(format!("expected a {kind} error, got {stage}: {msg}")),
                Ok(v) => Err(format!("expected a {kind} error, gave {v}")),
            }
        }
        _ => Ok(false),
    }
}

/// The given document as a one-row Arrow batch (when it is an object Arrow can hold) gives the
/// same column-wise as row by row on that batch's row.
fn columnar_agrees(given: &Value, source: &str) -> bool {
    let Ok(expr) = Expr::parse(source) else {
        return false;
    };
    if !matches!(given, Value::Object(o) if !o.is_empty()) {
        return false;
    }
    let Ok(array) = weir_expr::from_values(std::slice::from_ref(given)) else {
        return false;
    };
    let Some(row_struct) = array.as_any().downcast_ref::<arrow_array::StructArray>() else {
        return false;
    };
    let batch = arrow_array::RecordBatch::from(row_struct.clone());
    let row = weir_expr::to_values(row_struct).unwrap().remove(0);
    let want = expr.search(&row);
    match (expr.evaluate_rows(&batch), want) {
        (Ok(got), Ok(want)) => {
            assert!(
                got.errors.is_empty(),
                "`{source}` on {row}: {:?}",
                got.errors
            );
            let got = weir_expr::to_values(got.array.as_ref()).unwrap().remove(0);
            assert_eq!(got, want, "`{source}` on {row}: column-wise differs");
            true
        }
        (Ok(got), Err(e)) => {
            assert_eq!(
                got.errors.len(),
                1,
                "`{source}` on {row}: row fails ({e}), batch does not"
            );
            true
        }
        (Err(EvalError::MixedTypes(_)), _) => false,
        (Err(e), _) => panic!("`{source}` on {row}: {e}"),
    }
}
