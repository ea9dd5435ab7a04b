//! Sign-in notices: when a user logs in, the sockets they already hold
//! elsewhere get a `notice` event, published through the socket-server's
//! server API (`POST /api/publish`). The same in both modes, so not a
//! backplane operation; off while `api.key` is unset.
//!
//! The login never waits for it: a handler only queues the sign-in; one task
//! started with the application takes it from the queue and sends it in a
//! task of its own, bounded by a 2 s timeout. A notice that cannot be sent is
//! logged (status or cause, never the key) and counted, never retried: it is
//! news of the moment, not a record.

mod browser;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use service::metrics::{family, sample};
use settings::Settings;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{Semaphore, mpsc};

use crate::backplane::SocketServerHttp;
use crate::error::{BuildError, chain};
use crate::metrics::bump;

use browser::browser_family;

/// The socket-server's endpoint for publications.
const PUBLISH_PATH: &str = "/api/publish";
/// One notice may take this long; then it has failed.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);
/// Sign-ins waiting to be sent; past this, a sign-in goes unannounced (and is
/// counted as failed) rather than holding up a login.
const QUEUE: usize = 256;
/// Notices in flight at once.
const IN_FLIGHT: usize = 32;

/// The event the page listens for, and what a sign-in notice says.
const EVENT: &str = "notice";
const KIND: &str = "sign-in";
const TEXT: &str = "New sign-in to your account";

/// The handle the login handlers use: announces sign-ins when the server API
/// is configured, does nothing when it is not.
#[derive(Clone, Debug)]
pub(crate) struct SignInNotices {
    on: Option<Announcer>,
}

#[derive(Clone, Debug)]
struct Announcer {
    queue: mpsc::Sender<SignIn>,
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
}

/// One login to announce, as it was when it happened.
#[derive(Debug)]
struct SignIn {
    username: String,
    browser: &'static str,
    time: OffsetDateTime,
}

/// Why a notice was not delivered. `Display` is for the log: it never holds
/// the key.
#[derive(Debug, thiserror::Error)]
enum NoticeError {
    #[error("the time of the sign-in could not be written")]
    Time(#[from] time::error::Format),
    #[error("the socket-server could not be reached")]
    Transport(#[source] reqwest::Error),
    #[error("the socket-server answered {0}")]
    Refused(reqwest::StatusCode),
}

impl SignInNotices {
    /// Off without `api.key`; otherwise the sending task is started on the
    /// current runtime, publishing to `web.socket_internal_url` (else
    /// `web.socket_url`), where the revocation channel goes too.
    pub(crate) fn start(settings: &Settings) -> Result<Self, BuildError> {
        let Some(key) = &settings.api.key else {
            tracing::info!("sign-in notices are off (api.key is unset)");
            return Ok(Self { on: None });
        };
        let http = SocketServerHttp::new(settings.web.revocation_base_url(), SEND_TIMEOUT)?;
        let counters = Arc::new(Counters::default());
        let (queue, sign_ins) = mpsc::channel(QUEUE);
        let sender = Sender {
            http,
            key: Arc::new(key.clone()),
            counters: Arc::clone(&counters),
        };
        tokio::spawn(sender.run(sign_ins));
        tracing::info!("sign-in notices are on (through the socket-server's server API)");
        Ok(Self {
            on: Some(Announcer { queue, counters }),
        })
    }

    /// Announces that `username` has just logged in from `user_agent` (the
    /// login request's `User-Agent`), to the sockets the user holds already.
    /// Returns at once: the notice is sent in the background.
    pub(crate) fn announce(&self, username: &str, user_agent: Option<&str>) {
        let Some(on) = &self.on else { return };
        let sign_in = SignIn {
            username: username.to_owned(),
            browser: browser_family(user_agent),
            time: OffsetDateTime::now_utc(),
        };
        if on.queue.try_send(sign_in).is_err() {
            bump(&on.counters.failed);
            tracing::warn!(%username, "a sign-in notice was dropped: too many are waiting to be sent");
        }
    }

    /// `authbridge_sign_in_notices_total{result="sent"|"failed"}`, while
    /// notices are on (nothing when they are off).
    pub(crate) fn render_metrics(&self, out: &mut String) {
        let Some(on) = &self.on else { return };
        let name = "authbridge_sign_in_notices_total";
        family(
            out,
            name,
            "counter",
            "Sign-in notices published through the socket-server's server API, by result.",
        );
        for (result, counter) in [("sent", &on.counters.sent), ("failed", &on.counters.failed)] {
            sample(
                out,
                name,
                &[("result", result)],
                counter.load(Ordering::Relaxed),
            );
        }
    }
}

/// The task that sends what the handlers queue.
struct Sender {
    http: SocketServerHttp,
    key: Arc<SecretString>,
    counters: Arc<Counters>,
}

impl Sender {
    async fn run(self, mut sign_ins: mpsc::Receiver<SignIn>) {
        let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
        let this = Arc::new(self);
        while let Some(sign_in) = sign_ins.recv().await {
            let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
                return; // never closed
            };
            let this = Arc::clone(&this);
            tokio::spawn(async move {
                this.send(sign_in).await;
                drop(permit);
            });
        }
    }

    async fn send(&self, sign_in: SignIn) {
        match self.deliver(&sign_in).await {
            Ok(()) => bump(&self.counters.sent),
            Err(error) => {
                bump(&self.counters.failed);
                let (status, timed_out) = match &error {
                    NoticeError::Refused(status) => (Some(status.as_u16()), false),
                    NoticeError::Transport(error) => (None, error.is_timeout()),
                    NoticeError::Time(_) => (None, false),
                };
                tracing::warn!(
                    username = %sign_in.username,
                    status,
                    timed_out,
                    error = %chain(&error),
                    "a sign-in notice was not delivered"
                );
            }
        }
    }

    async fn deliver(&self, sign_in: &SignIn) -> Result<(), NoticeError> {
        let body = publication(sign_in)?;
        let response = self
            .http
            .post(PUBLISH_PATH)
            .bearer_auth(self.key.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(NoticeError::Transport)?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(NoticeError::Refused(status))
        }
    }
}

/// The body of `POST /api/publish`: `notice` to every socket of the user.
#[derive(Debug, Serialize)]
struct Publication<'a> {
    to: String,
    event: &'static str,
    data: SignInNotice<'a>,
}

/// What the user's pages receive: never the address the login came from.
#[derive(Debug, Serialize)]
struct SignInNotice<'a> {
    kind: &'static str,
    text: &'static str,
    /// RFC 3339, UTC, whole seconds.
    time: String,
    browser: &'a str,
}

fn publication(sign_in: &SignIn) -> Result<Publication<'_>, NoticeError> {
    let time = sign_in.time.to_offset(time::UtcOffset::UTC);
    let time = time.replace_nanosecond(0).unwrap_or(time);
    Ok(Publication {
        to: format!("user:{}", sign_in.username),
        event: EVENT,
        data: SignInNotice {
            kind: KIND,
            text: TEXT,
            time: time.format(&Rfc3339)?,
            browser: sign_in.browser,
        },
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// 2026-03-01T17:03:09Z.
    const MARCH_FIRST_17_03_09: i64 = 1_772_384_589;

    fn at(unix: i64, nanos: i128) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix) * 1_000_000_000 + nanos)
            .expect("a valid time")
    }

    #[test]
    fn the_publication_has_exactly_the_documented_shape() {
        let sign_in = SignIn {
            username: "gonzalo".into(),
            browser: "Firefox",
            time: at(MARCH_FIRST_17_03_09, 123_456_789),
        };

        let body = serde_json::to_value(publication(&sign_in).expect("a body")).expect("json");

        assert_eq!(
            body,
            json!({
                "to": "user:gonzalo",
                "event": "notice",
                "data": {
                    "kind": "sign-in",
                    "text": "New sign-in to your account",
                    "time": "2026-03-01T17:03:09Z",
                    "browser": "Firefox",
                },
            })
        );
    }

    #[test]
    fn the_time_is_utc_rfc3339_whatever_the_offset_it_was_taken_in() {
        let sign_in = SignIn {
            username: "alice".into(),
            browser: browser::ANOTHER_BROWSER,
            time: at(MARCH_FIRST_17_03_09, 0)
                .to_offset(time::UtcOffset::from_hms(1, 0, 0).expect("an offset")),
        };
        let body = publication(&sign_in).expect("a body");
        assert_eq!(body.data.time, "2026-03-01T17:03:09Z");
        assert_eq!(body.data.browser, "another browser");
    }

    #[test]
    fn the_body_names_no_address() {
        let sign_in = SignIn {
            username: "alice".into(),
            browser: "curl",
            time: OffsetDateTime::now_utc(),
        };
        let body = serde_json::to_value(publication(&sign_in).expect("a body")).expect("json");
        let data = body["data"].as_object().expect("an object");
        let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["browser", "kind", "text", "time"]);
    }

    #[tokio::test]
    async fn without_a_key_nothing_is_announced_and_nothing_is_rendered() {
        let notices = SignInNotices::start(&Settings::default()).expect("starts");

        notices.announce("alice", Some("curl/8.5.0"));
        let mut out = String::new();
        notices.render_metrics(&mut out);

        assert!(notices.on.is_none());
        assert_eq!(out, "");
    }
}
