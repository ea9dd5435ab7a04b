//! The server API's request bodies, read strictly: every field checked, each
//! refusal naming the field, nothing carried out unless all of it is valid.

use std::collections::HashMap;

use serde_json::value::RawValue;

use super::error::ApiError;
use crate::targets::{Shown, Target};

/// At most this many targets in one request.
pub(crate) const MAX_TARGETS: usize = 100;
/// `data`, serialized, at most.
pub(crate) const MAX_DATA_BYTES: usize = 64 * 1024;
/// An event name's characters after the first, at most.
const MAX_EVENT_TAIL: usize = 63;
/// A session id, at most.
const MAX_SID_BYTES: usize = 256;

/// Event names the server itself uses, or that Socket.IO clients reserve.
const RESERVED_EVENTS: &[&str] = &[
    "welcome",
    "message",
    "token_expired",
    "session_ended",
    "reauth",
    "join",
    "leave",
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "error",
    "newListener",
    "removeListener",
];

/// `POST /api/publish`.
#[derive(Debug)]
pub(crate) struct Publish {
    pub(crate) to: Vec<Target>,
    pub(crate) event: String,
    pub(crate) data: Box<RawValue>,
}

/// `POST /api/disconnect`.
#[derive(Debug)]
pub(crate) struct Disconnect {
    pub(crate) to: Vec<Target>,
}

/// `POST /api/sessions/revoke`.
#[derive(Debug)]
pub(crate) struct Revoke {
    pub(crate) sid: String,
    pub(crate) until: i64,
}

/// A body's fields, their values still raw.
struct Fields(HashMap<String, Box<RawValue>>);

impl Fields {
    fn read(body: &[u8], known: &[&str]) -> Result<Self, ApiError> {
        let fields: HashMap<String, Box<RawValue>> = serde_json::from_slice(body)
            .map_err(|_| ApiError::bad_request("body: must be a JSON object"))?;
        let mut unknown: Vec<&String> = fields
            .keys()
            .filter(|name| !known.contains(&name.as_str()))
            .collect();
        unknown.sort();
        if let Some(name) = unknown.first() {
            return Err(ApiError::bad_request(format!(
                "{:?}: unknown field (expected {})",
                Shown::new(name),
                known.join(", ")
            )));
        }
        Ok(Self(fields))
    }

    /// A required field (`null` is a value).
    fn take(&mut self, name: &'static str) -> Result<Box<RawValue>, ApiError> {
        self.0
            .remove(name)
            .ok_or_else(|| ApiError::bad_request(format!("{name}: required")))
    }
}

impl Publish {
    pub(crate) fn read(body: &[u8]) -> Result<Self, ApiError> {
        let mut fields = Fields::read(body, &["to", "event", "data"])?;
        let to = targets(&fields.take("to")?)?;
        let event = event(&fields.take("event")?)?;
        let data = fields.take("data")?;
        if data.get().len() > MAX_DATA_BYTES {
            return Err(ApiError::bad_request(format!(
                "data: at most {MAX_DATA_BYTES} bytes serialized"
            )));
        }
        Ok(Self { to, event, data })
    }
}

impl Disconnect {
    pub(crate) fn read(body: &[u8]) -> Result<Self, ApiError> {
        let mut fields = Fields::read(body, &["to"])?;
        Ok(Self {
            to: targets(&fields.take("to")?)?,
        })
    }
}

impl Revoke {
    pub(crate) fn read(body: &[u8]) -> Result<Self, ApiError> {
        let mut fields = Fields::read(body, &["sid", "until"])?;
        let sid: String = serde_json::from_str(fields.take("sid")?.get())
            .map_err(|_| ApiError::bad_request("sid: must be a string"))?;
        if sid.is_empty() || sid.len() > MAX_SID_BYTES || sid.chars().any(char::is_control) {
            return Err(ApiError::bad_request(format!(
                "sid: 1 to {MAX_SID_BYTES} bytes, no control characters"
            )));
        }
        let until: i64 = serde_json::from_str(fields.take("until")?.get()).map_err(|_| {
            ApiError::bad_request("until: must be an integer (seconds since the Unix epoch)")
        })?;
        Ok(Self { sid, until })
    }
}

/// `to`: one target, or an array of 1 to [`MAX_TARGETS`].
fn targets(raw: &RawValue) -> Result<Vec<Target>, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let shape = || {
        ApiError::bad_request(format!(
            "to: a target or an array of 1 to {MAX_TARGETS} targets (user:NAME, session:SID, room:NAME, everyone)"
        ))
    };
    let texts = match serde_json::from_str::<OneOrMany>(raw.get()).map_err(|_| shape())? {
        OneOrMany::One(text) => vec![text],
        OneOrMany::Many(texts) if (1..=MAX_TARGETS).contains(&texts.len()) => texts,
        OneOrMany::Many(_) => return Err(shape()),
    };
    texts
        .iter()
        .map(|text| Target::parse(text).map_err(|bad| ApiError::bad_request(format!("to: {bad}"))))
        .collect()
}

/// `event`: `^[A-Za-z][A-Za-z0-9_.:-]{0,63}$`, not a reserved name.
fn event(raw: &RawValue) -> Result<String, ApiError> {
    let name: String = serde_json::from_str(raw.get())
        .map_err(|_| ApiError::bad_request("event: must be a string"))?;
    let mut chars = name.chars();
    let well_formed = chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && name.len() <= 1 + MAX_EVENT_TAIL
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
    if !well_formed {
        return Err(ApiError::bad_request(format!(
            "event: {:?} is not an event name (a letter, then up to {MAX_EVENT_TAIL} letters, digits, _ . : -)",
            Shown::new(&name)
        )));
    }
    if RESERVED_EVENTS.contains(&name.as_str()) {
        return Err(ApiError::bad_request(format!(
            "event: {name:?} is reserved"
        )));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(result: Result<impl std::fmt::Debug, ApiError>) -> String {
        result.expect_err("refused").message().to_owned()
    }

    #[test]
    fn a_publication_names_its_targets_event_and_data() {
        let publish = Publish::read(
            br#"{"to": ["user:gonzalo", "everyone"], "event": "notice", "data": {"text": "hi"}}"#,
        )
        .expect("valid");
        assert_eq!(publish.to.len(), 2);
        assert_eq!(publish.event, "notice");
        assert_eq!(publish.data.get(), r#"{"text": "hi"}"#);
        let single = Publish::read(br#"{"to": "session:abc", "event": "a", "data": null}"#)
            .expect("null is a value");
        assert_eq!(single.data.get(), "null");
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases: &[(&[u8], &str)] = &[
            (b"[]", "body: must be a JSON object"),
            (b"{", "body: must be a JSON object"),
            (br#"{"event": "a", "data": 1}"#, "to: required"),
            (br#"{"to": "everyone", "data": 1}"#, "event: required"),
            (br#"{"to": "everyone", "event": "a"}"#, "data: required"),
            (
                br#"{"to": [], "event": "a", "data": 1}"#,
                "to: a target or an array",
            ),
            (
                br#"{"to": 5, "event": "a", "data": 1}"#,
                "to: a target or an array",
            ),
            (
                br#"{"to": "nobody", "event": "a", "data": 1}"#,
                "to: \"nobody\" is not a target",
            ),
            (
                br#"{"to": "everyone", "event": 5, "data": 1}"#,
                "event: must be a string",
            ),
            (
                br#"{"to": "everyone", "event": "1a", "data": 1}"#,
                "event: \"1a\" is not an event name",
            ),
            (
                br#"{"to": "everyone", "event": "a b", "data": 1}"#,
                "event: \"a b\" is not",
            ),
            (
                br#"{"to": "everyone", "event": "message", "data": 1}"#,
                "event: \"message\" is reserved",
            ),
            (
                br#"{"to": "everyone", "event": "a", "data": 1, "extra": 2}"#,
                "\"extra\": unknown field",
            ),
        ];
        for (body, expected) in cases {
            let message = refusal(Publish::read(body));
            assert!(
                message.starts_with(expected),
                "{}: {message}",
                String::from_utf8_lossy(body)
            );
        }
        let many = format!(
            r#"{{"to": [{}], "event": "a", "data": 1}}"#,
            vec![r#""everyone""#; 101].join(",")
        );
        assert!(refusal(Publish::read(many.as_bytes())).starts_with("to: a target or an array"));
        let long_name = format!(
            r#"{{"to": "everyone", "event": "a{}", "data": 1}}"#,
            "b".repeat(64)
        );
        assert!(refusal(Publish::read(long_name.as_bytes())).starts_with("event: "));
        let ok_name = format!(
            r#"{{"to": "everyone", "event": "a{}", "data": 1}}"#,
            "b".repeat(63)
        );
        assert!(Publish::read(ok_name.as_bytes()).is_ok());
        let big = format!(
            r#"{{"to": "everyone", "event": "a", "data": "{}"}}"#,
            "x".repeat(MAX_DATA_BYTES)
        );
        assert!(refusal(Publish::read(big.as_bytes())).starts_with("data: at most 65536 bytes"));
    }

    #[test]
    fn a_revocation_names_a_session_and_an_end() {
        let revoke = Revoke::read(br#"{"sid": "abc", "until": 1800000000}"#).expect("valid");
        assert_eq!((revoke.sid.as_str(), revoke.until), ("abc", 1_800_000_000));
        assert_eq!(refusal(Revoke::read(br#"{"until": 1}"#)), "sid: required");
        assert!(refusal(Revoke::read(br#"{"sid": "", "until": 1}"#)).starts_with("sid: 1 to"));
        assert!(refusal(Revoke::read(br#"{"sid": 5, "until": 1}"#)).starts_with("sid: must be"));
        assert!(
            refusal(Revoke::read(br#"{"sid": "a", "until": 1.5}"#)).starts_with("until: must be")
        );
        assert!(
            refusal(Revoke::read(br#"{"sid": "a", "until": "1"}"#)).starts_with("until: must be")
        );
        assert!(Disconnect::read(br#"{"to": ["user:a", "room:b"]}"#).is_ok());
        assert_eq!(refusal(Disconnect::read(b"{}")), "to: required");
    }
}
