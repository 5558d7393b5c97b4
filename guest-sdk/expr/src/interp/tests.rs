//! Unit tests of the interpreter on hand-built trees and of its per-element helpers. The
//! specification's examples, through the parser, are in `tests/spec.rs`.

use super::functions::{cast_value, to_number_str, to_string_text};
use super::*;
use crate::ast::Function;
use crate::value::Kind;

fn json(text: &str) -> Value {
    Value::parse_json(text).expect("test JSON")
}

fn b(ast: Ast) -> Box<Ast> {
    Box::new(ast)
}

fn field(name: &str) -> Ast {
    Ast::Field(name.to_string())
}

fn lit(text: &str) -> Ast {
    Ast::Literal(json(text))
}

fn eval(ast: &Ast, doc: &str) -> Value {
    search(ast, &json(doc)).expect("evaluates")
}

/// Exact equality: `Int` and `Float` differ (JMESPath equality does not tell them apart).
fn same(a: &Value, b: &Value) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

fn call_values(f: Function, args: &[Value]) -> Result<Value, EvalError> {
    call(f, args.iter().cloned().map(Arg::Value).collect())
}

#[test]
fn fields_indexes_and_slices_of_the_wrong_type_are_null() {
    assert_eq!(eval(&field("a"), "[1]"), Value::Null);
    assert_eq!(eval(&Ast::Index(0), r#"{"a": 1}"#), Value::Null);
    let slice = Ast::Slice {
        start: None,
        stop: None,
        step: None,
    };
    assert_eq!(eval(&slice, r#""abc""#), Value::Null);
    assert_eq!(eval(&slice, "[1, 2]"), json("[1, 2]"));
}

#[test]
fn subexpression_runs_the_right_side_on_null_as_the_reference_does() {
    // `missing.to_string(@)`: jmespath.py does not stop at a null left side.
    let ast = Ast::Subexpr(
        b(field("missing")),
        b(Ast::Call(Function::ToString, vec![Ast::Current])),
    );
    assert_eq!(eval(&ast, "{}"), json(r#""null""#));
    let ast = Ast::Subexpr(b(field("missing")), b(field("x")));
    assert_eq!(eval(&ast, "{}"), Value::Null);
}

#[test]
fn projections_drop_nulls_and_need_their_type() {
    let proj = Ast::Projection(b(field("a")), b(field("b")));
    assert_eq!(
        eval(&proj, r#"{"a": [{"b": 1}, {}, {"b": 2}]}"#),
        json("[1, 2]")
    );
    assert_eq!(eval(&proj, r#"{"a": {"b": 1}}"#), Value::Null);
    let values = Ast::ValueProjection(b(field("a")), b(Ast::Current));
    assert_eq!(eval(&values, r#"{"a": {"x": 1, "y": null}}"#), json("[1]"));
    assert_eq!(eval(&values, r#"{"a": [1]}"#), Value::Null);
    let flat = Ast::Flatten(b(field("a")));
    assert_eq!(eval(&flat, r#"{"a": [1, [2, [3]]]}"#), json("[1, 2, [3]]"));
    assert_eq!(eval(&flat, r#"{"a": "x"}"#), Value::Null);
}

#[test]
fn filter_keeps_truthy_elements_then_projects() {
    let ast = Ast::FilterProjection {
        lhs: b(field("a")),
        predicate: b(Ast::Compare(CmpOp::Gt, b(field("n")), b(lit("1")))),
        rhs: b(field("n")),
    };
    assert_eq!(
        eval(&ast, r#"{"a": [{"n": 1}, {"n": 2}, {"n": "3"}, {"n": 4}]}"#),
        json("[2, 4]")
    );
    assert_eq!(eval(&ast, r#"{"a": {"n": 5}}"#), Value::Null);
}

#[test]
fn multiselects_are_null_on_null() {
    let list = Ast::MultiList(vec![field("a"), field("b")]);
    assert_eq!(eval(&list, r#"{"a": 1}"#), json("[1, null]"));
    assert_eq!(eval(&list, "null"), Value::Null);
    let hash = Ast::MultiHash(vec![("x".into(), field("a")), ("y".into(), field("b"))]);
    assert_eq!(eval(&hash, r#"{"a": 1}"#), json(r#"{"x": 1, "y": null}"#));
    assert_eq!(eval(&hash, "null"), Value::Null);
    // Keys keep the expression's order.
    let Value::Object(map) = eval(&hash, "{}") else {
        panic!("an object")
    };
    assert_eq!(map.keys().collect::<Vec<_>>(), ["x", "y"]);
}

#[test]
fn and_or_not_follow_truthiness() {
    let and = Ast::And(b(field("a")), b(field("b")));
    assert_eq!(eval(&and, r#"{"a": [], "b": 1}"#), json("[]"));
    assert_eq!(eval(&and, r#"{"a": 0, "b": 1}"#), json("1"));
    let or = Ast::Or(b(field("a")), b(field("b")));
    assert_eq!(eval(&or, r#"{"a": "", "b": 2}"#), json("2"));
    assert_eq!(eval(&or, r#"{"a": 0, "b": 2}"#), json("0"));
    assert_eq!(eval(&Ast::Not(b(field("a"))), r#"{"a": 0}"#), json("false"));
}

#[test]
fn a_bare_expression_reference_is_an_error() {
    let err = search(&Ast::ExpRef(b(field("a"))), &Value::Null).expect_err("fails");
    assert!(matches!(err, EvalError::InvalidValue(_)), "{err:?}");
}

#[test]
fn index_counts_negative_positions_from_the_end() {
    assert_eq!(index(3, 0), Some(0));
    assert_eq!(index(3, -1), Some(2));
    assert_eq!(index(3, -3), Some(0));
    assert_eq!(index(3, -4), None);
    assert_eq!(index(3, 3), None);
    assert_eq!(index(0, 0), None);
    assert_eq!(index(3, i64::MIN), None);
}

#[test]
fn slices_follow_python() {
    let s = |start, stop, step| slice_indices(10, start, stop, step);
    assert_eq!(s(None, None, None), (0..10).collect::<Vec<_>>());
    assert_eq!(s(Some(8), Some(2), Some(-2)), [8, 6, 4]);
    assert_eq!(
        s(Some(10), Some(-20), Some(-1)),
        (0..10).rev().collect::<Vec<_>>()
    );
    assert_eq!(s(Some(10), Some(-20), None), Vec::<usize>::new());
    assert_eq!(s(None, Some(-5), Some(-1)), [9, 8, 7, 6]);
    assert_eq!(s(Some(-4), Some(-1), None), [6, 7, 8]);
    assert_eq!(s(Some(i64::MIN), Some(i64::MAX), Some(i64::MAX)), [0]);
    assert_eq!(s(Some(i64::MAX), Some(i64::MIN), Some(i64::MIN)), [9]);
    assert_eq!(s(None, None, Some(0)), Vec::<usize>::new());
    assert_eq!(slice_indices(0, None, None, Some(-1)), Vec::<usize>::new());
}

#[test]
fn orderings_hold_for_numbers_and_timestamps_only() {
    let c = |op, a: &str, b: &str| compare(op, &json(a), &json(b));
    assert_eq!(c(CmpOp::Lt, "1", "2.5"), Value::Bool(true));
    assert_eq!(c(CmpOp::Ge, "2", "2.0"), Value::Bool(true));
    assert_eq!(c(CmpOp::Lt, r#""a""#, r#""b""#), Value::Null);
    assert_eq!(c(CmpOp::Lt, "1", "null"), Value::Null);
    assert_eq!(
        c(CmpOp::Eq, "[1, {\"a\": 2}]", "[1.0, {\"a\": 2}]"),
        Value::Bool(true)
    );
    assert_eq!(c(CmpOp::Ne, "1", "\"1\""), Value::Bool(true));
    let t = |m| Value::Timestamp(m);
    assert_eq!(compare(CmpOp::Lt, &t(1), &t(2)), Value::Bool(true));
    assert_eq!(compare(CmpOp::Lt, &t(1), &Value::Int(2)), Value::Null);
    let nan = Value::Float(f64::NAN);
    assert_eq!(compare(CmpOp::Lt, &nan, &Value::Int(1)), Value::Bool(false));
    assert_eq!(compare(CmpOp::Ge, &nan, &nan), Value::Bool(false));
}

#[test]
fn integers_and_floats_compare_exactly() {
    let big = Value::Int((1 << 53) + 1);
    let float = Value::Float(9_007_199_254_740_992.0); // 2^53
    assert_eq!(compare(CmpOp::Gt, &big, &float), Value::Bool(true));
    assert_eq!(compare(CmpOp::Lt, &float, &big), Value::Bool(true));
    assert_eq!(
        number_order(&Value::Int(-1), &Value::Float(-1.5)),
        Some(Ordering::Greater)
    );
    assert_eq!(
        number_order(&Value::Int(i64::MAX), &Value::Float(f64::INFINITY)),
        Some(Ordering::Less)
    );
    assert_eq!(
        number_order(&Value::Int(0), &Value::Float(-0.0)),
        Some(Ordering::Equal)
    );
}

#[test]
fn arithmetic_keeps_integers_and_falls_back_to_floats() {
    let a = |op, x: Value, y: Value| arith(op, &x, &y).expect("arith");
    use Value::{Float, Int};
    assert!(same(&a(ArithOp::Add, Int(1), Int(2)), &Int(3)));
    assert!(same(&a(ArithOp::Add, Int(1), Float(2.0)), &Float(3.0)));
    assert!(same(&a(ArithOp::Sub, Int(1), Int(3)), &Int(-2)));
    assert!(same(&a(ArithOp::Mul, Int(4), Int(3)), &Int(12)));
    assert!(same(
        &a(ArithOp::Add, Int(i64::MAX), Int(1)),
        &Float(i64::MAX as f64 + 1.0)
    ));
    assert!(same(
        &a(ArithOp::Mul, Int(i64::MAX), Int(2)),
        &Float(i64::MAX as f64 * 2.0)
    ));
    assert!(same(&a(ArithOp::Div, Int(6), Int(3)), &Float(2.0)));
    assert!(same(&a(ArithOp::Div, Int(2), Int(4)), &Float(0.5)));
    assert!(same(&a(ArithOp::Rem, Int(-7), Int(3)), &Int(-1)));
    assert!(same(&a(ArithOp::Rem, Int(7), Int(-3)), &Int(1)));
    assert!(same(&a(ArithOp::Rem, Int(i64::MIN), Int(-1)), &Int(0)));
    assert!(same(&a(ArithOp::Rem, Float(7.5), Int(2)), &Float(1.5)));
    assert!(same(&a(ArithOp::IntDiv, Int(7), Int(2)), &Int(3)));
    assert!(same(&a(ArithOp::IntDiv, Int(-7), Int(2)), &Int(-4)));
    assert!(same(&a(ArithOp::IntDiv, Int(7), Int(-2)), &Int(-4)));
    assert!(same(&a(ArithOp::IntDiv, Int(-8), Int(2)), &Int(-4)));
    assert!(same(
        &a(ArithOp::IntDiv, Int(i64::MIN), Int(-1)),
        &Float(-(i64::MIN as f64))
    ));
    assert!(same(&a(ArithOp::IntDiv, Float(-7.0), Int(2)), &Float(-4.0)));
    assert_eq!(a(ArithOp::Add, Value::Null, Int(1)), Value::Null);
    assert_eq!(
        a(ArithOp::Add, Value::String("a".into()), Value::Null),
        Value::Null
    );
}

#[test]
fn arithmetic_errors_name_the_operator() {
    for op in [ArithOp::Div, ArithOp::Rem, ArithOp::IntDiv] {
        for zero in [Value::Int(0), Value::Float(0.0)] {
            let err = arith(op, &Value::Int(1), &zero).expect_err("fails");
            assert!(matches!(err, EvalError::InvalidValue(_)), "{err:?}");
        }
    }
    assert_eq!(
        arith(ArithOp::Sub, &Value::Int(1), &Value::String("a".into())),
        Err(EvalError::InvalidType {
            function: "-",
            position: 2,
            expected: "number",
            actual: Kind::String,
        })
    );
    assert_eq!(
        arith(ArithOp::Sub, &Value::Timestamp(2), &Value::Timestamp(1)),
        Err(EvalError::InvalidType {
            function: "-",
            position: 1,
            expected: "number",
            actual: Kind::Timestamp,
        })
    );
}

#[test]
fn negation() {
    assert!(same(&negate(&Value::Int(2)).expect("neg"), &Value::Int(-2)));
    assert!(same(
        &negate(&Value::Int(i64::MIN)).expect("neg"),
        &Value::Float(9_223_372_036_854_775_808.0)
    ));
    assert!(same(
        &negate(&Value::Float(1.5)).expect("neg"),
        &Value::Float(-1.5)
    ));
    assert_eq!(negate(&Value::Null), Ok(Value::Null));
    assert!(negate(&Value::Bool(true)).is_err());
}

#[test]
fn json_text_is_compact_and_keeps_key_order() {
    // Built by hand: `Value::parse_json` goes through serde_json's sorted map.
    let object = Value::Object(
        [
            ("b".to_string(), json(r#"[1, 2.5, "x\"y\n"]"#)),
            ("a".to_string(), json(r#"{"c": null, "d": true}"#)),
        ]
        .into_iter()
        .collect(),
    );
    assert_eq!(
        to_json_text(&object),
        r#"{"b":[1,2.5,"x\"y\n"],"a":{"c":null,"d":true}}"#
    );
    assert_eq!(to_json_text(&Value::Float(1.0)), "1.0");
    assert_eq!(to_json_text(&Value::Float(1e100)), "1e+100");
    assert_eq!(to_json_text(&Value::Float(f64::NAN)), "null");
    assert_eq!(
        to_json_text(&Value::String("\u{1}é".into())),
        "\"\\u0001é\""
    );
    assert_eq!(to_json_text(&Value::Timestamp(0)), "1970-01-01T00:00:00Z");
    assert_eq!(
        to_json_text(&Value::Array(vec![Value::Timestamp(0)])),
        r#"["1970-01-01T00:00:00Z"]"#
    );
    assert_eq!(to_string_text(Value::String("a\"b".into())), "a\"b");
    assert_eq!(to_string_text(Value::Timestamp(0)), "1970-01-01T00:00:00Z");
}

#[test]
fn strings_become_numbers_only_when_they_are_json_numbers() {
    let n = to_number_str;
    assert!(same(&n("4"), &Value::Int(4)));
    assert!(same(&n("-0"), &Value::Int(0)));
    assert!(same(&n("1.0"), &Value::Float(1.0)));
    assert!(same(&n("1e3"), &Value::Float(1000.0)));
    assert!(same(&n("-2.5E-1"), &Value::Float(-0.25)));
    assert!(same(
        &n("9223372036854775808"),
        &Value::Float(9_223_372_036_854_775_808.0)
    ));
    for bad in [
        "", "-", "+1", " 1", "1 ", "01", "1.", ".5", "1e", "1e+", "0x10", "NaN", "inf", "1_000",
        "1e400",
    ] {
        assert_eq!(n(bad), Value::Null, "{bad:?}");
    }
}

#[test]
fn substr_counts_code_points_and_clamps() {
    assert_eq!(substr_chars("héllo", 1, Some(3)), "éll");
    assert_eq!(substr_chars("héllo", -3, None), "llo");
    assert_eq!(substr_chars("héllo", -10, Some(2)), "hé");
    assert_eq!(substr_chars("héllo", 10, None), "");
    assert_eq!(substr_chars("héllo", 2, Some(-1)), "");
    assert_eq!(substr_chars("héllo", 0, Some(i64::MAX)), "héllo");
    assert_eq!(substr_chars("", i64::MIN, Some(i64::MIN)), "");
}

#[test]
fn sha256_hashes_salt_then_text() {
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(sha256_hex("abc", None), abc);
    assert_eq!(sha256_hex("bc", Some("a")), abc);
}

#[test]
fn time_helpers() {
    assert_eq!(
        epoch_to_micros(&Value::Int(2), MICROS_PER_SECOND),
        Some(2_000_000)
    );
    assert_eq!(
        epoch_to_micros(&Value::Float(1.5), MICROS_PER_MILLI),
        Some(1_500)
    );
    assert_eq!(
        epoch_to_micros(&Value::Float(0.0004), MICROS_PER_MILLI),
        Some(0)
    );
    assert_eq!(
        epoch_to_micros(&Value::Int(i64::MAX), MICROS_PER_SECOND),
        None
    );
    assert_eq!(epoch_to_micros(&Value::Int(i64::MAX), 1), None); // beyond chrono's years
    assert_eq!(epoch_to_micros(&Value::Float(f64::NAN), 1), None);
    assert_eq!(epoch_to_micros(&Value::String("1".into()), 1), None);
    let t = 1_714_566_896_789_000; // 2024-05-01T12:34:56.789Z
    assert_eq!(
        truncate_micros(t, MICROS_PER_HOUR),
        Some(1_714_564_800_000_000)
    );
    assert_eq!(
        truncate_micros(t, MICROS_PER_DAY),
        Some(1_714_521_600_000_000)
    );
    assert_eq!(truncate_micros(-1, MICROS_PER_DAY), Some(-MICROS_PER_DAY));
    assert_eq!(truncate_micros(i64::MIN, MICROS_PER_DAY), None);
    assert_eq!(date_text(t).as_deref(), Some("2024-05-01"));
    assert_eq!(date_text(-1).as_deref(), Some("1969-12-31"));
    assert_eq!(date_text(i64::MAX), None);
    // Around year 0 and 9999, where the fast path hands over to chrono.
    assert_eq!(
        date_text(-62_167_219_200_000_000).as_deref(),
        Some("0000-01-01")
    );
    assert_eq!(
        date_text(-62_167_219_200_000_001).as_deref(),
        Some("-0001-12-31")
    );
    assert_eq!(
        date_text(253_402_300_799_999_999).as_deref(),
        Some("9999-12-31")
    );
    assert_eq!(
        date_text(253_402_300_800_000_000).as_deref(),
        Some("+10000-01-01")
    );
}

proptest::proptest! {
    /// The fast `YYYY-MM-DD` is chrono's `%Y-%m-%d`, to the byte, wherever it answers.
    #[test]
    fn dates_are_written_as_chrono_writes_them(t in -70_000_000_000_000_000i64..300_000_000_000_000_000) {
        let chrono = chrono::DateTime::from_timestamp_micros(t).map(|d| d.format("%Y-%m-%d").to_string());
        if let Some(b) = date_bytes(t) {
            proptest::prop_assert_eq!(Some(String::from_utf8(b.to_vec()).unwrap()), chrono.clone());
        }
        proptest::prop_assert_eq!(date_text(t), chrono);
    }
}

#[test]
fn cast_type_names() {
    assert_eq!(CastType::from_name("string"), Ok(CastType::Utf8));
    assert_eq!(CastType::from_name("bool"), Ok(CastType::Boolean));
    let Err(EvalError::InvalidValue(message)) = CastType::from_name("int128") else {
        panic!("unknown type accepted")
    };
    assert!(message.contains("int8, int16"), "{message}");
}

#[test]
fn casts_to_integers_truncate_and_check_the_range() {
    let c = |v: Value, t| cast_value(v, t).expect("cast");
    use Value::{Float, Int, Null};
    assert!(same(&c(Float(-2.9), CastType::Int32), &Int(-2)));
    assert!(same(&c(Int(127), CastType::Int8), &Int(127)));
    assert!(same(&c(Int(128), CastType::Int8), &Null));
    assert!(same(&c(Float(127.9), CastType::Int8), &Int(127)));
    assert!(same(&c(Float(128.0), CastType::Int8), &Null));
    assert!(same(&c(Float(-128.9), CastType::Int8), &Int(-128)));
    assert!(same(&c(Int(-1), CastType::UInt8), &Null));
    assert!(same(&c(Float(-0.5), CastType::UInt8), &Int(0)));
    assert!(same(
        &c(Float(9_223_372_036_854_775_808.0), CastType::Int64),
        &Null
    ));
    assert!(same(&c(Float(f64::NAN), CastType::Int64), &Null));
    assert!(same(
        &c(Value::String("42.7".into()), CastType::Int16),
        &Int(42)
    ));
    assert!(same(&c(Value::String("x".into()), CastType::Int16), &Null));
    assert!(same(&c(Value::Bool(true), CastType::UInt64), &Int(1)));
    assert!(same(&c(Value::Timestamp(5), CastType::Int64), &Int(5)));
}

#[test]
fn casts_to_other_types() {
    let c = |v: Value, t| cast_value(v, t).expect("cast");
    use Value::{Bool, Float, Int, Null};
    assert!(same(&c(Int(5), CastType::Float64), &Float(5.0)));
    assert!(same(
        &c(Float(0.1), CastType::Float32),
        &Float(f64::from(0.1f32))
    ));
    assert!(same(
        &c(Value::String("2.5".into()), CastType::Float64),
        &Float(2.5)
    ));
    assert!(same(
        &c(Float(2.5), CastType::Utf8),
        &Value::String("2.5".into())
    ));
    assert!(same(
        &c(Bool(true), CastType::Utf8),
        &Value::String("true".into())
    ));
    assert!(same(
        &c(Value::String("true".into()), CastType::Boolean),
        &Bool(true)
    ));
    assert!(same(
        &c(Value::String("yes".into()), CastType::Boolean),
        &Null
    ));
    assert!(same(&c(Int(0), CastType::Boolean), &Bool(false)));
    assert!(same(
        &c(Int(1_500), CastType::Timestamp),
        &Value::Timestamp(1_500_000)
    ));
    assert!(same(
        &c(
            Value::String("2024-05-01T12:34:56.789Z".into()),
            CastType::Timestamp
        ),
        &Value::Timestamp(1_714_566_896_789_000)
    ));
    assert!(same(
        &c(
            Value::String("2024-05-01T14:34:56.789+02:00".into()),
            CastType::Timestamp
        ),
        &Value::Timestamp(1_714_566_896_789_000)
    ));
    assert!(same(
        &c(Value::String("soon".into()), CastType::Timestamp),
        &Null
    ));
    assert!(same(&c(Null, CastType::Int8), &Null));
    assert!(cast_value(json("[1]"), CastType::Utf8).is_err());
    assert!(cast_value(Value::Timestamp(0), CastType::Boolean).is_err());
    assert!(cast_value(Bool(true), CastType::Timestamp).is_err());
}

#[test]
fn regexes_are_cached_and_bad_ones_reported() {
    assert!(compiled_regex("^a+$").expect("valid").is_match("aaa"));
    assert!(compiled_regex("^a+$").expect("cached").is_match("a"));
    for i in 0..100 {
        // More patterns than the cache holds.
        assert!(compiled_regex(&format!("^{i}$")).is_ok());
    }
    let Err(EvalError::InvalidValue(message)) = compiled_regex("(") else {
        panic!("bad pattern accepted")
    };
    assert!(message.contains("regex_match"), "{message}");
}

#[test]
fn calls_check_arity_for_callers_other_than_the_parser() {
    assert!(matches!(
        call_values(Function::Abs, &[]),
        Err(EvalError::InvalidValue(_))
    ));
    assert!(matches!(
        call_values(Function::Abs, &[Value::Int(1), Value::Int(2)]),
        Err(EvalError::InvalidValue(_))
    ));
}

#[test]
fn numbers_keep_integer_ness_through_functions() {
    let f = |f, v: &str| call_values(f, &[json(v)]).expect("call");
    assert!(same(&f(Function::Abs, "-3"), &Value::Int(3)));
    assert!(same(&f(Function::Abs, "-3.5"), &Value::Float(3.5)));
    assert!(same(&f(Function::Sum, "[1, 2]"), &Value::Int(3)));
    assert!(same(&f(Function::Sum, "[1, 2.5]"), &Value::Float(3.5)));
    assert!(same(&f(Function::Sum, "[]"), &Value::Int(0)));
    assert!(same(
        &f(Function::Sum, "[9223372036854775807, 1]"),
        &Value::Float(9_223_372_036_854_775_808.0)
    ));
    assert!(same(&f(Function::Avg, "[1, 2]"), &Value::Float(1.5)));
    assert!(same(&f(Function::Avg, "[2, 2]"), &Value::Float(2.0)));
    assert!(same(&f(Function::Max, "[1, 3, 2]"), &Value::Int(3)));
    assert!(same(&f(Function::Min, "[1.5, 3, 2]"), &Value::Float(1.5)));
    assert!(same(&f(Function::Ceil, "1.2"), &Value::Int(2)));
    assert!(same(&f(Function::Floor, "-1.2"), &Value::Int(-2)));
    assert!(same(&f(Function::Floor, "1e300"), &Value::Float(1e300)));
    assert!(same(&f(Function::Ceil, "7"), &Value::Int(7)));
}

#[test]
fn max_and_min_return_the_first_of_equal_elements() {
    let people =
        r#"[{"a": 1, "n": "x"}, {"a": 2, "n": "y"}, {"a": 2, "n": "z"}, {"a": 1, "n": "w"}]"#;
    let by = |f| {
        call(
            f,
            vec![Arg::Value(json(people)), Arg::Expr(&Ast::Field("a".into()))],
        )
        .expect("call")
    };
    assert_eq!(by(Function::MaxBy), json(r#"{"a": 2, "n": "y"}"#));
    assert_eq!(by(Function::MinBy), json(r#"{"a": 1, "n": "x"}"#));
}

#[test]
fn sort_puts_nan_at_the_end_without_panicking() {
    let items = Value::Array(vec![
        Value::Float(f64::NAN),
        Value::Int(2),
        Value::Float(1.5),
        Value::Int(i64::MAX),
    ]);
    let Value::Array(sorted) = call_values(Function::Sort, &[items]).expect("sort") else {
        panic!("an array")
    };
    assert!(same(&sorted[0], &Value::Float(1.5)));
    assert!(same(&sorted[2], &Value::Int(i64::MAX)));
    assert!(matches!(sorted[3], Value::Float(x) if x.is_nan()));
}

#[test]
fn expression_arguments_and_value_arguments_do_not_mix() {
    let e = Ast::Field("a".into());
    let err = call(Function::Length, vec![Arg::Expr(&e)]).expect_err("fails");
    assert!(
        matches!(err, EvalError::InvalidValue(ref m) if m.contains("expression")),
        "{err:?}"
    );
    let err = call_values(Function::SortBy, &[json("[1]"), json("1")]).expect_err("fails");
    assert_eq!(
        err,
        EvalError::InvalidType {
            function: "sort_by",
            position: 2,
            expected: "expression",
            actual: Kind::Number,
        }
    );
}

#[test]
fn to_number_of_a_timestamp_is_null() {
    let v = call_values(Function::ToNumber, &[Value::Timestamp(1_500_999)]).expect("call");
    assert_eq!(v, Value::Null);
}

#[test]
fn timestamps_in_functions() {
    let t = Value::Timestamp(1_714_566_896_789_000);
    let f = |f, v: &Value| call_values(f, std::slice::from_ref(v)).expect("call");
    assert_eq!(f(Function::Type, &t), json(r#""timestamp""#));
    assert_eq!(
        f(Function::ToString, &t),
        json(r#""2024-05-01T12:34:56.789Z""#)
    );
    assert_eq!(
        f(Function::ToIso8601, &t),
        json(r#""2024-05-01T12:34:56.789Z""#)
    );
    assert_eq!(f(Function::Date, &t), json(r#""2024-05-01""#));
    assert!(same(
        &f(Function::TruncateHour, &t),
        &Value::Timestamp(1_714_564_800_000_000)
    ));
    assert!(same(&f(Function::FromEpochMillis, &t), &t));
    assert!(same(
        &f(Function::FromEpochSeconds, &Value::Float(1.5)),
        &Value::Timestamp(1_500_000)
    ));
    assert!(same(
        &f(Function::FromEpochMicros, &Value::Int(7)),
        &Value::Timestamp(7)
    ));
    assert_eq!(f(Function::Length, &json("\"\"")), Value::Int(0));
    assert!(call_values(Function::Length, &[t]).is_err());
}
