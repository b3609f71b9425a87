//! Request parameters of `POST /api/v1/imports`, gathered from wherever the client put them (query string,
//! form fields, JSON body) and read with the reference's defaults. Parameters we do not know are ignored, as
//! the reference ignores them.

use std::collections::HashMap;

use serde_json::Value;

use crate::http::error::ApiError;
use crate::queue::{CollisionStrategy, ImportOptions};

/// `value` with every member named `password` (in any case, at any depth) removed.
fn without_passwords(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.trim().eq_ignore_ascii_case("password"))
                .map(|(k, v)| (k.clone(), without_passwords(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_passwords).collect()),
        other => other.clone(),
    }
}

/// All parameters of one request; later sources (the body) override earlier ones (the query).
#[derive(Debug, Default, Clone)]
pub struct ParamBag(HashMap<String, Value>);

impl ParamBag {
    pub fn from_query(query: Option<&str>) -> ParamBag {
        let mut bag = ParamBag::default();
        if let Some(q) = query {
            bag.merge_form(q.as_bytes());
        }
        bag
    }

    pub fn merge_form(&mut self, body: &[u8]) {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        for (k, v) in pairs {
            self.0.insert(k, Value::String(v));
        }
    }

    /// Merges a JSON object body; anything else is a 400.
    pub fn merge_json(&mut self, body: &[u8]) -> Result<(), ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => {
                self.0.extend(map);
                Ok(())
            }
            Ok(_) => Err(ApiError::bad_import("the JSON body must be an object")),
            Err(e) => Err(ApiError::bad_import(format!("the JSON body is not valid JSON: {e}"))),
        }
    }

    /// The parameters in a stable order, without credentials (the API key, a connector's password): what
    /// an Idempotency-Key fingerprint covers. The fingerprint is stored in clear, so no secret may reach it.
    pub fn fingerprint_text(&self) -> String {
        let mut keys: Vec<&String> = self.0.keys().filter(|k| k.as_str() != "api_key").collect();
        keys.sort();
        keys.iter().map(|k| format!("{k}={}\n", without_passwords(&self.0[*k]))).collect()
    }

    pub fn insert_text(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), Value::String(value));
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// A parameter as text (numbers and booleans too).
    pub fn text(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// True unless the parameter is exactly `false` (or "false").
    fn default_true(&self, key: &str) -> bool {
        !matches!(self.text(key).as_deref(), Some("false"))
    }

    /// False unless the parameter is exactly `true` (or "true").
    fn default_false(&self, key: &str) -> bool {
        matches!(self.text(key).as_deref(), Some("true"))
    }

    /// The import options, with the reference's defaults and its 400s for bad values.
    pub fn import_options(&self) -> Result<ImportOptions, ApiError> {
        let privacy = match self.text("privacy").filter(|p| !p.is_empty()) {
            None => None,
            Some(p) => match p.to_ascii_lowercase().as_str() {
                v @ ("public" | "private" | "link") => Some(v.to_string()),
                _ => {
                    return Err(ApiError::bad_import(format!(
                        "'{p}' is not a privacy setting; use private, public or link"
                    )));
                }
            },
        };
        let collision_strategy = match self.text("collision_strategy").filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => match CollisionStrategy::parse(&s) {
                Some(strategy) => Some(strategy),
                None => {
                    return Err(ApiError::bad_import(format!(
                        "'{s}' is not a collision strategy; leave it out to rename, or use skip or overwrite"
                    )));
                }
            },
        };
        Ok(ImportOptions {
            type_guessing: self.default_true("type_guessing"),
            quoted_fields_guessing: self.default_true("quoted_fields_guessing"),
            content_guessing: self.default_false("content_guessing"),
            create_visualization: self.default_false("create_vis"),
            privacy,
            collision_strategy,
            user_defined_limits: self.user_defined_limits()?,
            callback_url: self.callback_url()?,
        })
    }

    /// `callback_url`: an http or https URL (whether its address may be reached is the caller's to check
    /// against the address policy).
    fn callback_url(&self) -> Result<Option<String>, ApiError> {
        let Some(raw) = self.text("callback_url").map(|u| u.trim().to_string()).filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        match url::Url::parse(&raw) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(Some(url.to_string())),
            _ => Err(ApiError::bad_import(format!("callback_url '{raw}' is not an http or https URL"))),
        }
    }

    /// Stored as a JSON string, as the reference does, with `twitter_credits_limit` always an integer.
    fn user_defined_limits(&self) -> Result<String, ApiError> {
        let mut limits = match self.get("user_defined_limits") {
            None => serde_json::Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(Value::String(s)) if s.trim().is_empty() => serde_json::Map::new(),
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(m)) => m,
                _ => {
                    return Err(ApiError::bad_import("user_defined_limits must be a JSON object"));
                }
            },
            Some(_) => {
                return Err(ApiError::bad_import("user_defined_limits must be a JSON object"));
            }
        };
        let credits = limits.get("twitter_credits_limit").and_then(|v| match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        });
        limits.insert("twitter_credits_limit".into(), Value::from(credits.unwrap_or(0)));
        Ok(Value::Object(limits).to_string())
    }
}

/// A `callback_url` that names an address the policy refuses (a private network, the server itself) is a
/// 400 now; a name that resolves to one is refused again at each delivery.
pub fn check_callback(
    policy: &crate::source::address_policy::AddressPolicy,
    options: &ImportOptions,
) -> Result<(), ApiError> {
    let Some(raw) = &options.callback_url else { return Ok(()) };
    let url = url::Url::parse(raw).map_err(|e| ApiError::bad_import(format!("callback_url: {e}")))?;
    policy.check_url(&url).map_err(|e| ApiError::bad_import(format!("callback_url may not be reached: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_reference() {
        let o = ParamBag::default().import_options().unwrap();
        assert!(o.type_guessing && o.quoted_fields_guessing);
        assert!(!o.content_guessing && !o.create_visualization);
        assert_eq!(o.privacy, None);
        assert_eq!(o.collision_strategy, None);
        assert_eq!(o.user_defined_limits, r#"{"twitter_credits_limit":0}"#);
    }

    #[test]
    fn booleans_flip_only_on_the_exact_word() {
        let bag = ParamBag::from_query(Some("type_guessing=false&content_guessing=true&create_vis=yes"));
        let o = bag.import_options().unwrap();
        assert!(!o.type_guessing && o.content_guessing && !o.create_visualization);
        let mut bag = ParamBag::default();
        bag.merge_json(br#"{"quoted_fields_guessing": false, "privacy": "PUBLIC", "collision_strategy": "skip"}"#)
            .unwrap();
        let o = bag.import_options().unwrap();
        assert!(!o.quoted_fields_guessing);
        assert_eq!(o.privacy.as_deref(), Some("public"));
        assert_eq!(o.collision_strategy, Some(CollisionStrategy::Skip));
    }

    #[test]
    fn bad_values_are_400() {
        for q in ["privacy=secret", "collision_strategy=replace", "user_defined_limits=5"] {
            let err = ParamBag::from_query(Some(q)).import_options().unwrap_err();
            assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST, "{q}");
        }
        assert!(ParamBag::default().merge_json(b"[1]").is_err());
    }

    #[test]
    fn unknown_parameters_are_ignored() {
        let bag = ParamBag::from_query(Some("foo=bar&table_name=wadus&append=true"));
        let with_unknown = bag.import_options().unwrap();
        let without = ParamBag::default().import_options().unwrap();
        assert_eq!(format!("{with_unknown:?}"), format!("{without:?}"), "an unknown parameter changed an option");
    }
}
