//! The login session: its cookie, what it holds (the username and the `sid`
//! every token of the login carries), and the middleware that keeps it in the
//! backplane's store.

use actix_session::config::{BrowserSession, CookieContentSecurity};
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::{Key, SameSite};
use base64::Engine as _;
use secrecy::ExposeSecret as _;
use settings::{ConfigError, Settings};

use crate::backplane::Sessions;
use crate::error::WebError;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "authbridge_session";

/// The session key holding the logged-in username.
const USERNAME_KEY: &str = "username";
/// The session key holding the login session's id (`sid` in its tokens).
const SESSION_ID_KEY: &str = "sid";

/// actix-session's middleware on `store`: an http-only, `SameSite=Lax`
/// cookie, encrypted with `key`, that ends with the browser session.
pub(crate) fn middleware(store: Sessions, key: Key, secure: bool) -> SessionMiddleware<Sessions> {
    SessionMiddleware::builder(store, key)
        .cookie_name(SESSION_COOKIE.to_owned())
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_secure(secure)
        .cookie_content_security(CookieContentSecurity::Private)
        .session_lifecycle(BrowserSession::default())
        .build()
}

/// The key session cookies are sealed with. The cookie only carries a random
/// session key; it is also encrypted, with a key derived (HKDF, its own
/// purpose string) from `web.session_secret`, else from the shared secret, so
/// that every web-frontend node reads every node's cookies.
pub(crate) fn cookie_key(settings: &Settings) -> Result<Key, ConfigError> {
    if let Some(secret) = &settings.web.session_secret {
        return Ok(Key::derive_from(secret.expose_secret().as_bytes()));
    }
    if let Some(secret) = &settings.jwt.secret {
        return Ok(Key::derive_from(secret.expose_secret().as_bytes()));
    }
    if settings.redis.url.is_some() {
        // Several nodes, sessions that outlive a restart: one key for all.
        return Err(ConfigError::MissingSessionSecret(settings.jwt.algorithm));
    }
    // One process holds the sessions (in memory): a key of its own will do.
    Ok(Key::generate())
}

/// Who is logged in on this session, if anyone.
pub(crate) fn logged_in_user(session: &Session) -> Result<Option<String>, WebError> {
    Ok(session.get::<String>(USERNAME_KEY)?)
}

/// The id every token of this login carries as `sid` (made now if the
/// session has none yet).
pub(crate) fn login_session_id(session: &Session) -> Result<String, WebError> {
    if let Some(id) = session.get::<String>(SESSION_ID_KEY)? {
        return Ok(id);
    }
    let id = new_session_id();
    session.insert(SESSION_ID_KEY, &id)?;
    Ok(id)
}

/// The login's `sid`, if it has one: what a logout revokes.
pub(crate) fn existing_session_id(session: &Session) -> Option<String> {
    session.get::<String>(SESSION_ID_KEY).ok().flatten()
}

/// A fresh session on login (no session fixation), holding the username and a
/// new `sid`.
pub(crate) fn start(session: &Session, username: &str) -> Result<(), WebError> {
    session.renew();
    session.insert(USERNAME_KEY, username)?;
    session.insert(SESSION_ID_KEY, new_session_id())?;
    Ok(())
}

/// 128 random bits, unrelated to the cookie (a token never reveals the
/// session cookie).
fn new_session_id() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
