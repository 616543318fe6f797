//! The `Response` envelope of Tencent Cloud API 3.0: `{"Response":{...fields, "RequestId"}}` on
//! success and `{"Response":{"Error":{"Code","Message"},"RequestId"}}` on failure, both with HTTP
//! status 200.

use serde_json::{json, Map, Value};

use crate::handler::ApiError;

/// A new RequestId (UUID v4).
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `{"Response": {fields…, "RequestId": request_id}}`.
pub fn success(mut fields: Map<String, Value>, request_id: &str) -> Value {
    fields.insert("RequestId".to_string(), Value::String(request_id.to_string()));
    json!({ "Response": fields })
}

/// `{"Response": {"Error": {"Code", "Message"}, "RequestId": request_id}}`.
pub fn error(err: &ApiError, request_id: &str) -> Value {
    json!({
        "Response": {
            "Error": { "Code": err.code, "Message": err.message },
            "RequestId": request_id,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let mut fields = Map::new();
        fields.insert("TotalCount".into(), json!(0));
        assert_eq!(
            success(fields, "r1"),
            json!({"Response": {"TotalCount": 0, "RequestId": "r1"}})
        );
        assert_eq!(
            error(&ApiError::new("InvalidAction", "no"), "r2"),
            json!({"Response": {"Error": {"Code": "InvalidAction", "Message": "no"}, "RequestId": "r2"}})
        );
        let id = new_request_id();
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
    }
}
