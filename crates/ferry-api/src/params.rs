//! Parameter decoding: a JSON body into the action's parameter object, and flattened parameters
//! (GET query or form body: `MigrateOption.RunMode=1`, `JobIds.0=a`) back into nested JSON
//! (objects for dotted names, arrays for `.N` indexes, every leaf a string), with the common
//! parameters (`Action`, `Version`, `Signature`, …) separated out.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use crate::handler::ApiError;

/// Common parameters of the flat encoding: never passed to an action.
pub const COMMON_PARAMS: &[&str] = &[
    "Action",
    "Version",
    "Region",
    "Timestamp",
    "Nonce",
    "SecretId",
    "Signature",
    "SignatureMethod",
    "Token",
    "Language",
    "RequestClient",
];

/// The common parameters of a flat request that the wire layer uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommonParams {
    pub action: Option<String>,
    pub version: Option<String>,
    pub region: Option<String>,
}

/// At most this many flattened parameters in one request (a GET query or a form body).
pub const MAX_FLAT_PARAMS: usize = 10_000;
/// At most this many dot-separated parts in one flattened parameter name
/// (`MigrateOption.DatabaseTable.Databases.0.Tables.0.TableName` has 7).
pub const MAX_FLAT_DEPTH: usize = 32;

/// Decodes `application/x-www-form-urlencoded` text (a query string or a form body), in time
/// linear in its length. Repeated names and more than [`MAX_FLAT_PARAMS`] parameters are
/// `InvalidParameter`.
pub fn decode_form(text: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for (name, value) in form_urlencoded::parse(text) {
        if pairs.len() >= MAX_FLAT_PARAMS {
            return Err(ApiError::invalid_parameter(format!(
                "the request has more than {MAX_FLAT_PARAMS} parameters"
            )));
        }
        let name = name.into_owned();
        if !seen.insert(name.clone()) {
            return Err(ApiError::invalid_parameter(format!(
                "the parameter {} is given more than once",
                shown_name(&name)
            )));
        }
        pairs.push((name, value.into_owned()));
    }
    Ok(pairs)
}

/// A client-given parameter name as shown in a message: at most 200 characters.
pub fn shown_name(name: &str) -> String {
    const MAX: usize = 200;
    if name.chars().count() <= MAX {
        name.to_string()
    } else {
        let cut: String = name.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

/// Splits the common parameters off flat `pairs`; the rest are the action's.
pub fn split_common(pairs: &[(String, String)]) -> (CommonParams, Vec<(String, String)>) {
    let mut common = CommonParams::default();
    let mut rest = Vec::new();
    for (name, value) in pairs {
        match name.as_str() {
            "Action" => common.action = Some(value.clone()),
            "Version" => common.version = Some(value.clone()),
            "Region" => common.region = Some(value.clone()),
            n if COMMON_PARAMS.contains(&n) => {}
            _ => rest.push((name.clone(), value.clone())),
        }
    }
    (common, rest)
}

/// A JSON body as the action's parameter object. An empty body is `{}`.
pub fn parse_json_body(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ApiError::invalid_parameter(format!(
            "the request body must be a JSON object of the action's parameters, not {}",
            json_kind(&other)
        ))),
        Err(e) => Err(ApiError::invalid_parameter(format!(
            "the request body is not valid JSON ({e}); send the action's parameters as a JSON object"
        ))),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

enum Node {
    Leaf(String),
    Branch(BTreeMap<String, Node>),
}

/// Rebuilds nested parameters from flattened names: `A.B=1` → `{"A":{"B":"1"}}`,
/// `A.0=x&A.1=y` → `{"A":["x","y"]}`, `A.0.B=y` → `{"A":[{"B":"y"}]}`. Leaves stay strings.
/// Names of more than [`MAX_FLAT_DEPTH`] parts and more than [`MAX_FLAT_PARAMS`] pairs are
/// `InvalidParameter` (the recursion below is bounded by the depth).
pub fn unflatten(pairs: &[(String, String)]) -> Result<Map<String, Value>, ApiError> {
    if pairs.len() > MAX_FLAT_PARAMS {
        return Err(ApiError::invalid_parameter(format!(
            "the request has more than {MAX_FLAT_PARAMS} parameters"
        )));
    }
    let mut root: BTreeMap<String, Node> = BTreeMap::new();
    for (name, value) in pairs {
        if name.split('.').nth(MAX_FLAT_DEPTH).is_some() {
            return Err(ApiError::invalid_parameter(format!(
                "the parameter name {} has more than {MAX_FLAT_DEPTH} dot-separated parts",
                shown_name(name)
            )));
        }
        let segments: Vec<&str> = name.split('.').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(ApiError::invalid_parameter(format!(
                "the parameter name {:?} has an empty part",
                shown_name(name)
            )));
        }
        insert(&mut root, &segments, value, name)?;
    }
    let mut out = Map::new();
    for (key, node) in root {
        let value = into_value(node, &key)?;
        out.insert(key, value);
    }
    Ok(out)
}

fn conflict(name: &str) -> ApiError {
    ApiError::invalid_parameter(format!(
        "the parameter {} conflicts with another parameter of the same name prefix",
        shown_name(name)
    ))
}

fn insert(
    level: &mut BTreeMap<String, Node>,
    segments: &[&str],
    value: &str,
    full_name: &str,
) -> Result<(), ApiError> {
    let Some((first, rest)) = segments.split_first() else {
        return Ok(());
    };
    let key = canonical_segment(first);
    if rest.is_empty() {
        if level.contains_key(&key) {
            return Err(conflict(full_name));
        }
        level.insert(key, Node::Leaf(value.to_string()));
        return Ok(());
    }
    let child = level.entry(key).or_insert_with(|| Node::Branch(BTreeMap::new()));
    match child {
        Node::Branch(map) => insert(map, rest, value, full_name),
        Node::Leaf(_) => Err(conflict(full_name)),
    }
}

/// Index segments are normalised (`01` → `1`) so that they collide as numbers.
fn canonical_segment(segment: &str) -> String {
    if is_index(segment) {
        let trimmed = segment.trim_start_matches('0');
        if trimmed.is_empty() {
            "0".to_string()
        } else {
            trimmed.to_string()
        }
    } else {
        segment.to_string()
    }
}

fn is_index(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())
}

fn into_value(node: Node, path: &str) -> Result<Value, ApiError> {
    match node {
        Node::Leaf(s) => Ok(Value::String(s)),
        Node::Branch(map) => {
            let indexes = map.keys().filter(|k| is_index(k)).count();
            if indexes == 0 {
                let mut out = Map::new();
                for (k, child) in map {
                    let child_path = format!("{path}.{k}");
                    out.insert(k, into_value(child, &child_path)?);
                }
                return Ok(Value::Object(out));
            }
            if indexes != map.len() {
                let path = shown_name(path);
                return Err(ApiError::invalid_parameter(format!(
                    "{path} mixes list indexes ({path}.0) and field names ({path}.Name)"
                )));
            }
            let mut items: Vec<(usize, Node)> = Vec::with_capacity(map.len());
            for (k, child) in map {
                let index: usize = k.parse().map_err(|_| {
                    ApiError::invalid_parameter(format!(
                        "the list index {}.{} is too large",
                        shown_name(path),
                        shown_name(&k)
                    ))
                })?;
                items.push((index, child));
            }
            items.sort_by_key(|(i, _)| *i);
            let mut out = Vec::with_capacity(items.len());
            for (expected, (index, child)) in items.into_iter().enumerate() {
                if index != expected {
                    let path = shown_name(path);
                    return Err(ApiError::invalid_parameter(format!(
                        "the list {path} has {path}.{index} but no {path}.{expected}: list \
                         indexes start at 0 and have no gaps"
                    )));
                }
                out.push(into_value(child, &format!("{path}.{index}"))?);
            }
            Ok(Value::Array(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn nests_objects_and_arrays_with_string_leaves() {
        let out = unflatten(&pairs(&[
            ("JobName", "j"),
            ("MigrateOption.RunMode", "1"),
            ("MigrateOption.ConsistencyParams.SelectRowsPerTable", "10"),
            ("JobIds.1", "b"),
            ("JobIds.0", "a"),
            ("Tags.0.TagKey", "k0"),
            ("Tags.0.TagValue", "v0"),
            ("Tags.1.TagKey", "k1"),
        ]))
        .unwrap();
        assert_eq!(
            Value::Object(out),
            json!({
                "JobName": "j",
                "MigrateOption": {"RunMode": "1", "ConsistencyParams": {"SelectRowsPerTable": "10"}},
                "JobIds": ["a", "b"],
                "Tags": [{"TagKey": "k0", "TagValue": "v0"}, {"TagKey": "k1"}],
            })
        );
    }

    #[test]
    fn refuses_conflicts_gaps_and_empty_parts() {
        for bad in [
            vec![("A", "1"), ("A.B", "2")],
            vec![("A.B", "2"), ("A", "1")],
            vec![("A.0", "x"), ("A.2", "y")],
            vec![("A.1", "x")],
            vec![("A.0", "x"), ("A.B", "y")],
            vec![("A..B", "x")],
            vec![("A.", "x")],
            vec![("A.0", "x"), ("A.00", "y")],
        ] {
            let err = unflatten(&pairs(&bad)).unwrap_err();
            assert_eq!(err.code, "InvalidParameter", "{bad:?}");
        }
    }

    #[test]
    fn common_parameters_are_split_off() {
        let (common, rest) = split_common(&pairs(&[
            ("Action", "DescribeMigrateJobs"),
            ("Version", "2018-03-30"),
            ("Region", "ap-guangzhou"),
            ("Nonce", "1"),
            ("Timestamp", "2"),
            ("SecretId", "id"),
            ("Signature", "s"),
            ("SignatureMethod", "HmacSHA256"),
            ("Token", "t"),
            ("Language", "en-US"),
            ("RequestClient", "SDK_PYTHON"),
            ("Limit", "5"),
        ]));
        assert_eq!(common.action.as_deref(), Some("DescribeMigrateJobs"));
        assert_eq!(common.version.as_deref(), Some("2018-03-30"));
        assert_eq!(common.region.as_deref(), Some("ap-guangzhou"));
        assert_eq!(rest, pairs(&[("Limit", "5")]));
    }

    #[test]
    fn json_bodies() {
        assert_eq!(parse_json_body(b"").unwrap(), Map::new());
        assert_eq!(parse_json_body(b"{\"Limit\":1}").unwrap()["Limit"], json!(1));
        assert_eq!(parse_json_body(b"{").unwrap_err().code, "InvalidParameter");
        assert_eq!(parse_json_body(b"[1]").unwrap_err().code, "InvalidParameter");
        assert_eq!(decode_form(b"A=1&A=2").unwrap_err().code, "InvalidParameter");
        assert_eq!(
            decode_form(b"A=a%2Bb+c&B=").unwrap(),
            pairs(&[("A", "a+b c"), ("B", "")])
        );
    }
}
