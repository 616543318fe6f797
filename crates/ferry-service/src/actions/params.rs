//! Typed parameter schemas: each action lists its parameters (path, type, required, range), and
//! [`check`] validates a call against it before anything is deserialized or changed.
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
use serde_json::{Map, Value};

/// The type of a parameter.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    Str,
    /// One of these strings (compared ignoring ASCII case; the value is kept as given).
    StrIn(&'static [&'static str]),
    /// An integer in `min..=max`.
    Int(i64, i64),
    /// One of these integers.
    IntIn(&'static [i64]),
    Bool,
    Obj(&'static [Field]),
    /// A list of strings.
    StrList,
    /// A list of objects.
    ObjList(&'static [Field]),
    /// Any JSON value, checked later (e.g. `DatabaseInfo`: a string or a list).
    Any,
}

/// One parameter.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
}

/// A required parameter.
pub const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
    }
}

/// An optional parameter.
pub const fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
    }
}

fn path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn type_name(ty: &Ty) -> &'static str {
    match ty {
        Ty::Str | Ty::StrIn(_) => "a String",
        Ty::Int(..) | Ty::IntIn(_) => "an Integer",
        Ty::Bool => "a Boolean",
        Ty::Obj(_) => "an object",
        Ty::StrList => "an array of String",
        Ty::ObjList(_) => "an array of objects",
        Ty::Any => "a value",
    }
}

fn wrong_type(p: &str, ty: &Ty, v: &Value) -> ApiError {
    let got = match v {
        Value::Null => "null".to_string(),
        Value::Bool(_) => "a Boolean".into(),
        Value::Number(_) => format!("the number {v}"),
        Value::String(s) => format!("the string {:?}", truncate(s)),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    };
    ApiError::invalid_parameter(format!("the parameter {p} must be {}, not {got}", type_name(ty)))
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 64 {
        format!("{}…", s.chars().take(64).collect::<String>())
    } else {
        s.to_string()
    }
}

fn as_int(p: &str, ty: &Ty, v: &Value, enc: ParamEncoding) -> Result<i64, ApiError> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| wrong_type(p, ty, v)),
        Value::String(s) if enc == ParamEncoding::Flat => {
            s.trim().parse::<i64>().map_err(|_| wrong_type(p, ty, v))
        }
        _ => Err(wrong_type(p, ty, v)),
    }
}

fn check_value(p: &str, ty: &Ty, v: &Value, enc: ParamEncoding) -> Result<Value, ApiError> {
    match ty {
        Ty::Any => Ok(v.clone()),
        Ty::Str => match v {
            Value::String(_) => Ok(v.clone()),
            _ => Err(wrong_type(p, ty, v)),
        },
        Ty::StrIn(choices) => match v {
            // Matched in any letter case, passed on in the spelling of the choice, so the
            // code after the check compares exactly.
            Value::String(s) if choices.iter().any(|c| c.eq_ignore_ascii_case(s)) => Ok(choices
                .iter()
                .find(|c| c.eq_ignore_ascii_case(s))
                .map_or_else(|| v.clone(), |c| Value::from(*c))),
            Value::String(s) => Err(ApiError::invalid_parameter_value(format!(
                "the parameter {p} is {:?}; it must be one of {}",
                truncate(s),
                choices.join(", ")
            ))),
            _ => Err(wrong_type(p, ty, v)),
        },
        Ty::Int(min, max) => {
            let n = as_int(p, ty, v, enc)?;
            if n < *min || n > *max {
                return Err(ApiError::invalid_parameter_value(format!(
                    "the parameter {p} is {n}; it must be between {min} and {max}"
                )));
            }
            Ok(Value::from(n))
        }
        Ty::IntIn(choices) => {
            let n = as_int(p, ty, v, enc)?;
            if !choices.contains(&n) {
                let list: Vec<String> = choices.iter().map(|c| c.to_string()).collect();
                return Err(ApiError::invalid_parameter_value(format!(
                    "the parameter {p} is {n}; it must be one of {}",
                    list.join(", ")
                )));
            }
            Ok(Value::from(n))
        }
        Ty::Bool => match v {
            Value::Bool(_) => Ok(v.clone()),
            Value::String(s) if enc == ParamEncoding::Flat => match s.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(Value::Bool(true)),
                "false" | "0" => Ok(Value::Bool(false)),
                _ => Err(wrong_type(p, ty, v)),
            },
            _ => Err(wrong_type(p, ty, v)),
        },
        Ty::Obj(fields) => match v {
            Value::Object(m) => Ok(Value::Object(check_fields(fields, m, enc, p)?)),
            _ => Err(wrong_type(p, ty, v)),
        },
        Ty::StrList => match v {
            Value::Array(items) => {
                for (i, it) in items.iter().enumerate() {
                    check_value(&format!("{p}.{i}"), &Ty::Str, it, enc)?;
                }
                Ok(v.clone())
            }
            _ => Err(wrong_type(p, ty, v)),
        },
        Ty::ObjList(fields) => match v {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, it) in items.iter().enumerate() {
                    out.push(check_value(&format!("{p}.{i}"), &Ty::Obj(fields), it, enc)?);
                }
                Ok(Value::Array(out))
            }
            _ => Err(wrong_type(p, ty, v)),
        },
    }
}

fn check_fields(
    fields: &[Field],
    m: &Map<String, Value>,
    enc: ParamEncoding,
    prefix: &str,
) -> Result<Map<String, Value>, ApiError> {
    for k in m.keys() {
        if !fields.iter().any(|f| f.name == k) {
            return Err(ApiError::unknown_parameter(&path(prefix, k)));
        }
    }
    let mut out = Map::new();
    for f in fields {
        let p = path(prefix, f.name);
        match m.get(f.name) {
            None | Some(Value::Null) => {
                if f.required {
                    return Err(ApiError::missing_parameter(&p));
                }
            }
            Some(v) => {
                out.insert(f.name.to_string(), check_value(&p, &f.ty, v, enc)?);
            }
        }
    }
    Ok(out)
}

/// Validates an action's parameters against its schema: the parameters with integers and
/// booleans converted, absent and `null` optional ones left out.
pub fn check(
    schema: &[Field],
    params: &Map<String, Value>,
    enc: ParamEncoding,
) -> Result<Map<String, Value>, ApiError> {
    check_fields(schema, params, enc, "")
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
