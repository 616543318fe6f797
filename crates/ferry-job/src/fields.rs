//! Field rules: a schema lists each field of a request (name, type, required, range or choices)
//! and [`check`] judges a JSON object against it before anything is deserialized. One set of
//! rules serves the CLI's job files ([`crate::spec::MigrateJobRequest`]) and the HTTP API
//! (`ferry-service`'s actions map a [`FieldError`] to the API's error codes by its
//! [`FieldErrorKind`]); the CreateMigrateJob rules themselves are [`crate::job_fields`].
//!
//! Who sends the object matters ([`Source`]): with [`Source::ApiFlat`] (the API's GET and form
//! bodies) every leaf arrives as a string, and integers and booleans are converted by the schema;
//! otherwise the types must already be right. The API accepts cloud-only fields ([`cloud`]) and
//! ignores them; a job file refuses them, and leaves the required fields to the job's validation
//! (a job file may omit what Tencent's API requires, e.g. `SrcAccessType`). `null` for an
//! optional field means "not given".

use serde_json::{Map, Value};

/// The type of a field.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    Str,
    /// One of these strings (compared ignoring ASCII case; passed on in the spelling listed).
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
    /// Any JSON value, judged later (e.g. `DatabaseInfo`: a string or a list).
    Any,
}

/// One field.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    /// Accepted from the API and ignored (cloud networking, billing tags); not in job files.
    pub cloud_only: bool,
}

/// A required field.
pub const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
        cloud_only: false,
    }
}

/// An optional field.
pub const fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
        cloud_only: false,
    }
}

/// An optional cloud-only field: the API accepts it and Ferry ignores it.
pub const fn cloud(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
        cloud_only: true,
    }
}

/// Who sends the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// An API call with a JSON body.
    Api,
    /// An API call with flat parameters: every leaf a string.
    ApiFlat,
    /// A job file (JSON or TOML).
    JobFile,
}

/// What is wrong with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// The schema has no such field.
    Unknown,
    /// A required field is absent or `null`.
    Missing,
    /// A value of the wrong type.
    WrongType,
    /// A value out of its range or not one of its choices.
    BadValue,
}

/// A field that breaks its rule: which (its full path, `MigrateOption.RunMode`), and what is
/// wrong (without the path: "is 3; it must be one of 1, 2").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} {message}")]
pub struct FieldError {
    pub kind: FieldErrorKind,
    pub path: String,
    pub message: String,
}

fn fail(kind: FieldErrorKind, path: &str, message: String) -> FieldError {
    FieldError {
        kind,
        path: path.to_string(),
        message,
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

fn wrong_type(p: &str, ty: &Ty, v: &Value) -> FieldError {
    let got = match v {
        Value::Null => "null".to_string(),
        Value::Bool(_) => "a Boolean".into(),
        Value::Number(_) => format!("the number {v}"),
        Value::String(s) => format!("the string {:?}", truncate(s)),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    };
    fail(
        FieldErrorKind::WrongType,
        p,
        format!("must be {}, not {got}", type_name(ty)),
    )
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 64 {
        format!("{}…", s.chars().take(64).collect::<String>())
    } else {
        s.to_string()
    }
}

fn as_int(p: &str, ty: &Ty, v: &Value, source: Source) -> Result<i64, FieldError> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| wrong_type(p, ty, v)),
        Value::String(s) if source == Source::ApiFlat => {
            s.trim().parse::<i64>().map_err(|_| wrong_type(p, ty, v))
        }
        _ => Err(wrong_type(p, ty, v)),
    }
}

fn check_value(p: &str, ty: &Ty, v: &Value, source: Source) -> Result<Value, FieldError> {
    match ty {
        Ty::Any => Ok(v.clone()),
        Ty::Str => match v {
            Value::String(_) => Ok(v.clone()),
            _ => Err(wrong_type(p, ty, v)),
        },
        Ty::StrIn(choices) => match v {
            Value::String(s) => choices
                .iter()
                .find(|c| c.eq_ignore_ascii_case(s))
                .map(|c| Value::from(*c))
                .ok_or_else(|| {
                    fail(
                        FieldErrorKind::BadValue,
                        p,
                        format!("is {:?}; it must be one of {}", truncate(s), choices.join(", ")),
                    )
                }),
            _ => Err(wrong_type(p, ty, v)),
        },
        Ty::Int(min, max) => {
            let n = as_int(p, ty, v, source)?;
            if n < *min || n > *max {
                return Err(fail(
                    FieldErrorKind::BadValue,
                    p,
                    format!("is {n}; it must be between {min} and {max}"),
                ));
            }
            Ok(Value::from(n))
        }
        Ty::IntIn(choices) => {
            let n = as_int(p, ty, v, source)?;
            if !choices.contains(&n) {
                let list: Vec<String> = choices.iter().map(|c| c.to_string()).collect();
                return Err(fail(
                    FieldErrorKind::BadValue,
                    p,
                    format!("is {n}; it must be one of {}", list.join(", ")),
                ));
            }
            Ok(Value::from(n))
        }
        Ty::Bool => match v {
            Value::Bool(_) => Ok(v.clone()),
            Value::String(s) if source == Source::ApiFlat => match s.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(Value::Bool(true)),
                "false" | "0" => Ok(Value::Bool(false)),
                _ => Err(wrong_type(p, ty, v)),
            },
            _ => Err(wrong_type(p, ty, v)),
        },
        Ty::Obj(fields) => match v {
            Value::Object(m) => Ok(Value::Object(check_fields(fields, m, source, p)?)),
            _ => Err(wrong_type(p, ty, v)),
        },
        Ty::StrList => match v {
            Value::Array(items) => {
                for (i, it) in items.iter().enumerate() {
                    check_value(&format!("{p}.{i}"), &Ty::Str, it, source)?;
                }
                Ok(v.clone())
            }
            _ => Err(wrong_type(p, ty, v)),
        },
        Ty::ObjList(fields) => match v {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, it) in items.iter().enumerate() {
                    out.push(check_value(&format!("{p}.{i}"), &Ty::Obj(fields), it, source)?);
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
    source: Source,
    prefix: &str,
) -> Result<Map<String, Value>, FieldError> {
    let known = |k: &str| {
        fields
            .iter()
            .any(|f| f.name == k && !(f.cloud_only && source == Source::JobFile))
    };
    if let Some(k) = m.keys().find(|k| !known(k)) {
        return Err(fail(
            FieldErrorKind::Unknown,
            &path(prefix, k),
            "is not a known field: remove it or check its spelling".into(),
        ));
    }
    let mut out = Map::new();
    for f in fields {
        let p = path(prefix, f.name);
        match m.get(f.name).filter(|_| known(f.name)) {
            None | Some(Value::Null) => {
                if f.required && source != Source::JobFile {
                    return Err(fail(FieldErrorKind::Missing, &p, "is required".into()));
                }
            }
            Some(v) => {
                out.insert(f.name.to_string(), check_value(&p, &f.ty, v, source)?);
            }
        }
    }
    Ok(out)
}

/// Removes the cloud-only fields of `schema` from `m`, at every level.
pub fn strip_cloud_only(schema: &[Field], m: &mut Map<String, Value>) {
    for f in schema {
        if f.cloud_only {
            m.remove(f.name);
            continue;
        }
        match (&f.ty, m.get_mut(f.name)) {
            (Ty::Obj(inner), Some(Value::Object(o))) => strip_cloud_only(inner, o),
            (Ty::ObjList(inner), Some(Value::Array(items))) => {
                for it in items {
                    if let Value::Object(o) = it {
                        strip_cloud_only(inner, o);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Judges an object against its schema: the fields with integers and booleans converted and
/// choices in their listed spelling; absent and `null` optional ones left out.
pub fn check(
    schema: &[Field],
    fields: &Map<String, Value>,
    source: Source,
) -> Result<Map<String, Value>, FieldError> {
    check_fields(schema, fields, source, "")
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

    fn kind(v: Value, source: Source) -> Result<(), (FieldErrorKind, String)> {
        let m = v.as_object().cloned().unwrap_or_default();
        check(SCHEMA, &m, source)
            .map(|_| ())
            .map_err(|e| (e.kind, e.path))
    }

    #[test]
    fn kinds_and_paths() {
        use FieldErrorKind::*;
        let t = Source::Api;
        assert_eq!(kind(json!({"JobId": "x"}), t), Ok(()));
        assert_eq!(kind(json!({}), t), Err((Missing, "JobId".into())));
        assert_eq!(
            kind(json!({"JobId": "x", "Foo": 1}), t),
            Err((Unknown, "Foo".into()))
        );
        assert_eq!(
            kind(json!({"JobId": "x", "MigrateOption": {"RunMode": 1, "X": 1}}), t),
            Err((Unknown, "MigrateOption.X".into()))
        );
        assert_eq!(kind(json!({"JobId": 5}), t), Err((WrongType, "JobId".into())));
        assert_eq!(
            kind(json!({"JobId": "x", "Limit": "5"}), t),
            Err((WrongType, "Limit".into()))
        );
        assert_eq!(
            kind(json!({"JobId": "x", "Limit": 0}), t),
            Err((BadValue, "Limit".into()))
        );
        assert_eq!(
            kind(json!({"JobId": "x", "Order": "Nope"}), t),
            Err((BadValue, "Order".into()))
        );
        assert_eq!(
            kind(json!({"JobId": "x", "MigrateOption": {"RunMode": 3}}), t),
            Err((BadValue, "MigrateOption.RunMode".into()))
        );
        assert_eq!(
            kind(json!({"JobId": "x", "MigrateOption": {}}), t),
            Err((Missing, "MigrateOption.RunMode".into()))
        );
        assert_eq!(kind(json!({"JobId": "x", "Limit": null}), t), Ok(()));
    }

    #[test]
    fn job_files_refuse_cloud_only_fields_and_leave_required_ones_to_validation() {
        const S: &[Field] = &[
            req("JobName", Ty::Str),
            cloud("Tags", Ty::Any),
            opt("A", Ty::Obj(INNER)),
        ];
        let m = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert!(check(S, &m(json!({"JobName": "j", "Tags": []})), Source::Api).is_ok());
        let e = check(S, &m(json!({"JobName": "j", "Tags": []})), Source::JobFile).unwrap_err();
        assert_eq!((e.kind, e.path.as_str()), (FieldErrorKind::Unknown, "Tags"));
        assert!(check(S, &m(json!({"A": {}})), Source::JobFile).is_ok());
        let mut stripped = m(json!({"JobName": "j", "Tags": [1], "A": {"RunMode": 1}}));
        strip_cloud_only(S, &mut stripped);
        assert_eq!(
            Value::Object(stripped),
            json!({"JobName": "j", "A": {"RunMode": 1}})
        );
    }

    #[test]
    fn choices_take_their_listed_spelling_and_strings_convert() {
        let m = json!({"JobId": "x", "Order": "STATUS"});
        let out = check(SCHEMA, m.as_object().unwrap(), Source::Api).unwrap();
        assert_eq!(out["Order"], json!("Status"));
        let m = json!({"JobId": "x", "Limit": "20", "MigrateOption": {"RunMode": "2", "Flag": "true"}, "Ids": ["a", "b"]});
        let out = check(SCHEMA, m.as_object().unwrap(), Source::ApiFlat).unwrap();
        assert_eq!(out["Limit"], json!(20));
        assert_eq!(out["MigrateOption"], json!({"RunMode": 2, "Flag": true}));
        assert_eq!(
            kind(json!({"JobId": "x", "Limit": "twenty"}), Source::ApiFlat),
            Err((FieldErrorKind::WrongType, "Limit".into()))
        );
    }
}
