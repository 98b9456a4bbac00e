//! Small serde helpers that keep the wire shape exact.

/// `Option<Option<T>>`: `None` = key absent, `Some(None)` = explicit `null`,
/// `Some(Some(v))` = a value. Use with
/// `#[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]`.
pub(crate) mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S, T>(value: &Option<Option<T>>, s: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        T: Serialize,
    {
        match value {
            None | Some(None) => s.serialize_none(),
            Some(Some(v)) => v.serialize(s),
        }
    }

    pub(crate) fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// Serialises an `f64` the way JavaScript's `JSON.stringify` does: integral values
/// without a fraction (`0`, not `0.0`), so a number the CLI printed round-trips equal.
pub(crate) fn js_number(v: f64) -> serde_json::Value {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    if v.is_finite() && v.fract() == 0.0 && v.abs() <= MAX_SAFE {
        if v >= 0.0 && !(v == 0.0 && v.is_sign_negative()) {
            return serde_json::Value::from(v as u64);
        }
        if v < 0.0 {
            return serde_json::Value::from(v as i64);
        }
    }
    serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// `Option<f64>` with JavaScript number formatting; use with
/// `#[serde(default, skip_serializing_if = "Option::is_none", with = "js_f64_opt")]`.
pub(crate) mod js_f64_opt {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::js_number(*v).serialize(s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<f64>::deserialize(d)
    }
}

/// The JSON type name of a value, for error messages.
pub(crate) fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// JSON equality where numbers compare by value: `1`, `1.0` and `1e0` are the same number (the
/// CLI writes numbers as JavaScript does; other writers may not). Everything else compares
/// exactly, including object key sets.
pub(crate) fn json_equivalent(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || matches!((x.as_f64(), y.as_f64()), (Some(p), Some(q)) if p == q)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equivalent(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equivalent(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod equivalence_tests {
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value_and_nothing_else_is_loosened() {
        assert!(super::json_equivalent(
            &json!({"a": [1.0, 2]}),
            &json!({"a": [1, 2.0]})
        ));
        assert!(!super::json_equivalent(
            &json!({"a": 1}),
            &json!({"a": 1.5})
        ));
        assert!(!super::json_equivalent(
            &json!({"a": 1}),
            &json!({"a": "1"})
        ));
        assert!(!super::json_equivalent(
            &json!({"a": 1}),
            &json!({"a": 1, "b": null})
        ));
    }
}
