//! The Standard Webhooks signature: `webhook-signature: v1,BASE64(HMAC-SHA256(
//! secret, "ID.TIMESTAMP.BODY"))`, with `webhook-id` and `webhook-timestamp`
//! beside it, so that a receiver can check the sender and refuse replays.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

/// The `webhook-signature` value for one try of one event.
pub(crate) fn signature(secret: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    #[allow(clippy::expect_used, reason = "HMAC takes a key of any length")]
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_id_timestamp_and_body() {
        // Computed independently: printf 'evt_1.1700000000.{"a":1}' |
        //   openssl dgst -sha256 -hmac 'a-webhook-signing-key-of-32-bytes-at-least' -binary | base64
        let signature = signature(
            b"a-webhook-signing-key-of-32-bytes-at-least",
            "evt_1",
            1_700_000_000,
            r#"{"a":1}"#,
        );
        assert_eq!(signature, "v1,BFlDtJWKCB9dvM12JFWqfR5FcuCDAD7cFx90v8bfs6o=");
        // Each part changes it.
        let other = super::signature(
            b"a-webhook-signing-key-of-32-bytes-at-least",
            "evt_2",
            1_700_000_000,
            r#"{"a":1}"#,
        );
        assert_ne!(signature, other);
    }
}
