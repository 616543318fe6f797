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
    use ferry_job::job_fields::MIGRATE_OPTION;
    use serde_json::json;

    /// The API code and message of checking `v` against `MigrateOption`'s rules.
    fn code(v: Value, enc: ParamEncoding) -> String {
        let m = v.as_object().cloned().unwrap_or_default();
        match check(MIGRATE_OPTION, &m, enc) {
            Ok(_) => "ok".into(),
            Err(e) => format!("{}|{}", e.code, e.message),
        }
    }

    #[test]
    fn broken_rules_get_their_api_codes() {
        let j = ParamEncoding::Json;
        assert_eq!(code(json!({"RunMode": 1, "MigrateType": 2}), j), "ok");
        assert_eq!(
            code(json!({"MigrateType": 2}), j),
            "MissingParameter|the required parameter RunMode is missing"
        );
        assert!(code(json!({"RunMode": 1, "MigrateType": 2, "Foo": 1}), j).starts_with("UnknownParameter|"));
        assert_eq!(
            code(json!({"RunMode": "1", "MigrateType": 2}), j),
            "InvalidParameter|the parameter RunMode must be an Integer, not the string \"1\""
        );
        assert_eq!(
            code(json!({"RunMode": 3, "MigrateType": 2}), j),
            "InvalidParameterValue|the parameter RunMode is 3; it must be one of 1, 2"
        );
        assert!(code(
            json!({"RunMode": 1, "MigrateType": 2, "ConsistencyParams": {"SelectRowsPerTable": 101, "TablesSelectAll": 1, "TablesSelectCount": 1}}),
            j
        )
        .starts_with("InvalidParameterValue|the parameter ConsistencyParams.SelectRowsPerTable is 101"));
        // Flat parameters: string leaves are converted by the rules.
        assert_eq!(
            code(json!({"RunMode": "1", "MigrateType": "2"}), ParamEncoding::Flat),
            "ok"
        );
    }
}
