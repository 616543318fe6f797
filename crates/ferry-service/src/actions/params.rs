//! Typed parameter schemas: each action lists its parameters (path, type, required, range) with
//! the field rules of `ferry_job::fields` (the CreateMigrateJob rules are
//! `ferry_job::job_fields`, shared with the CLI's job files), and [`check`] validates a call
//! against them before anything is deserialized or changed.
//!
//! Errors: a parameter the action does not know → `UnknownParameter`; a required one absent (or
//! `null`) → `MissingParameter`; a value of the wrong type → `InvalidParameter`; a value out of its
//! range or not one of its choices → `InvalidParameterValue`. Each message names the parameter by
//! its full path (`MigrateOption.RunMode`).
//!
//! With [`ParamEncoding::Flat`] (GET or form POST) every leaf arrives as a string: integers and
//! booleans are converted here by the schema. With JSON bodies the types must already be right.
//! `null` for an optional parameter means "not given".

use ferry_api::{ApiError, ParamEncoding};
pub use ferry_job::fields::{opt, req, Field, Ty};
use ferry_job::fields::{FieldError, FieldErrorKind, Source};
use serde_json::{Map, Value};

/// A broken field rule as the API's error.
fn api_error(e: FieldError) -> ApiError {
    match e.kind {
        FieldErrorKind::Unknown => ApiError::unknown_parameter(&e.path),
        FieldErrorKind::Missing => ApiError::missing_parameter(&e.path),
        FieldErrorKind::WrongType => ApiError::invalid_parameter(format!("the parameter {e}")),
        FieldErrorKind::BadValue => ApiError::invalid_parameter_value(format!("the parameter {e}")),
    }
}

/// Validates an action's parameters against its schema: the parameters with integers and
/// booleans converted, absent and `null` optional ones left out.
pub fn check(
    schema: &[Field],
    params: &Map<String, Value>,
    enc: ParamEncoding,
) -> Result<Map<String, Value>, ApiError> {
    let source = match enc {
        ParamEncoding::Flat => Source::ApiFlat,
        _ => Source::Api,
    };
    ferry_job::fields::check(schema, params, source).map_err(api_error)
}

/// A string parameter of a checked map.
pub fn str_of<'a>(m: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    m.get(name).and_then(Value::as_str)
}

/// An integer parameter of a checked map.
pub fn int_of(m: &Map<String, Value>, name: &str) -> Option<i64> {
    m.get(name).and_then(Value::as_i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const INNER: &[Field] = &[req("RunMode", Ty::IntIn(&[1, 2])), opt("Flag", Ty::Bool)];
    const SCHEMA: &[Field] = &[
        req("JobId", Ty::Str),
        opt("Limit", Ty::Int(1, 100)),
        opt("Order", Ty::StrIn(&["JobId", "Status"])),
        opt("MigrateOption", Ty::Obj(INNER)),
        opt("Ids", Ty::StrList),
    ];

    fn code(v: Value, enc: ParamEncoding) -> String {
        let m = v.as_object().cloned().unwrap_or_default();
        match check(SCHEMA, &m, enc) {
            Ok(_) => "ok".into(),
            Err(e) => format!("{}|{}", e.code, e.message),
        }
    }

    #[test]
    fn codes() {
        let j = ParamEncoding::Json;
        assert_eq!(code(json!({"JobId": "x"}), j), "ok");
        assert!(code(json!({}), j).starts_with("MissingParameter|") && code(json!({}), j).contains("JobId"));
        assert!(code(json!({"JobId": "x", "Foo": 1}), j).starts_with("UnknownParameter|"));
        assert!(
            code(json!({"JobId": "x", "MigrateOption": {"RunMode": 1, "X": 1}}), j)
                .contains("MigrateOption.X")
        );
        assert!(code(json!({"JobId": 5}), j).starts_with("InvalidParameter|"));
        assert!(code(json!({"JobId": "x", "Limit": "5"}), j).starts_with("InvalidParameter|"));
        assert!(code(json!({"JobId": "x", "Limit": 0}), j).starts_with("InvalidParameterValue|"));
        assert!(code(json!({"JobId": "x", "Limit": 101}), j).starts_with("InvalidParameterValue|"));
        assert!(code(json!({"JobId": "x", "Order": "Nope"}), j).starts_with("InvalidParameterValue|"));
        assert!(
            code(json!({"JobId": "x", "MigrateOption": {"RunMode": 3}}), j)
                .starts_with("InvalidParameterValue|MigrateOption.RunMode")
                || code(json!({"JobId": "x", "MigrateOption": {"RunMode": 3}}), j)
                    .contains("MigrateOption.RunMode")
        );
        assert!(code(json!({"JobId": "x", "MigrateOption": {}}), j).starts_with("MissingParameter|"));
        assert_eq!(code(json!({"JobId": "x", "Limit": null}), j), "ok");
    }

    #[test]
    fn choices_take_their_canonical_spelling() {
        let m = json!({"JobId": "x", "Order": "STATUS"});
        let out = check(SCHEMA, m.as_object().unwrap(), ParamEncoding::Json).unwrap();
        assert_eq!(out["Order"], json!("Status"));
    }

    #[test]
    fn flat_leaves_are_converted() {
        let m = json!({"JobId": "x", "Limit": "20", "MigrateOption": {"RunMode": "2", "Flag": "true"}, "Ids": ["a", "b"]});
        let out = check(SCHEMA, m.as_object().unwrap(), ParamEncoding::Flat).unwrap();
        assert_eq!(out["Limit"], json!(20));
        assert_eq!(out["MigrateOption"], json!({"RunMode": 2, "Flag": true}));
        assert!(
            code(json!({"JobId": "x", "Limit": "twenty"}), ParamEncoding::Flat)
                .starts_with("InvalidParameter|")
        );
    }
}
