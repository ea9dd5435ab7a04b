//! Where connection tokens come from: minted here with the shared key, or
//! fetched from a web-frontend after a login, as a browser would.

use std::time::Duration;

use claims::{KeyError, SharedKey, SigningKey, TokenIssuer, TokenSettings};
use secrecy::{ExposeSecret as _, SecretString};

use crate::error::LoadError;

/// The key forged tokens are signed with: long enough, and not the shared one.
const FORGED_KEY: &str = "loadgen-forged-key-not-the-shared-one-0123456789";

/// How a run gets its tokens.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// Minted locally with the shared key, as the web-frontend would.
    Mint(MintSettings),
    /// Fetched from a web-frontend (`POST /login`, then `GET /getIoConnectionToken`).
    Web(WebLogin),
}

/// The claims of minted tokens: the contract's defaults unless told otherwise.
#[derive(Debug, Clone)]
pub struct MintSettings {
    pub secret: SecretString,
    pub issuer: String,
    pub audience: String,
    pub ttl_secs: u64,
    /// How many distinct users the tokens name (`user0`, `user1`, …), round
    /// robin; `None`: one per token (no per-user connection limit is hit).
    pub users: Option<usize>,
    /// The Unix second this source was made in; see [`TokenSource::tokens`].
    made_at: i64,
}

impl MintSettings {
    /// The contract's defaults (`iss` `web-frontend`, `aud` `socket-server`, 300 s).
    pub fn new(secret: SecretString) -> Self {
        let defaults = contract_settings();
        Self {
            secret,
            issuer: defaults.issuer,
            audience: defaults.audience,
            ttl_secs: defaults.ttl_secs,
            users: None,
            made_at: claims::unix_now(),
        }
    }
}

/// A web-frontend and the credentials to log in there.
#[derive(Debug, Clone)]
pub struct WebLogin {
    /// `http://host:port`, without a trailing slash.
    pub url: String,
    pub username: String,
    pub password: SecretString,
}

/// One token to present, and whether the server must refuse it.
#[derive(Debug, Clone)]
pub struct Token {
    pub token: String,
    pub forged: bool,
}

/// Whether token `index` of a run is forged so that exactly
/// `round(count × share)` of them are, spread evenly over the run.
pub fn is_forged(index: usize, share: f64) -> bool {
    let share = share.clamp(0.0, 1.0);
    let before = (index as f64 * share).round();
    let after = ((index + 1) as f64 * share).round();
    after > before
}

impl TokenSource {
    /// `count` tokens, `bad_share` of them forged (signed with another key).
    ///
    /// Minted tokens carry an `iat` later than the second this source was
    /// made in (it waits for the clock when needed): a socket-server makes
    /// tokens older than itself wait for its revocation list, and the server
    /// under test was started before this source was made.
    pub async fn tokens(
        &self,
        count: usize,
        bad_share: f64,
        timeout: Duration,
    ) -> Result<Vec<Token>, LoadError> {
        let forger = hs256_issuer(FORGED_KEY.as_bytes(), &contract_settings())
            .map_err(|error| LoadError::Tokens(error.to_string()))?;
        let wanted = (0..count).filter(|&i| !is_forged(i, bad_share)).count();
        let genuine: Vec<String> = match self {
            TokenSource::Mint(mint) => {
                let issuer = mint.issuer()?;
                wait_for_second_after(mint.made_at).await;
                let now = claims::unix_now();
                (0..count)
                    .filter(|&index| !is_forged(index, bad_share))
                    .map(|index| {
                        let session = uuid::Uuid::new_v4().simple().to_string();
                        issuer
                            .issue(&mint.username(index), &session, now)
                            .map_err(|error| LoadError::Tokens(error.to_string()))
                    })
                    .collect::<Result<_, _>>()?
            }
            TokenSource::Web(web) => {
                let client = web.log_in(timeout).await?;
                fetch_tokens(&client, &web.url, wanted, timeout).await?
            }
        };
        let mut genuine = genuine.into_iter();
        let mut tokens = Vec::with_capacity(count);
        for index in 0..count {
            let forged = is_forged(index, bad_share);
            let token = if forged {
                forger
                    .issue(
                        &format!("user{index}"),
                        "forged-session-0000",
                        claims::unix_now(),
                    )
                    .map_err(|error| LoadError::Tokens(error.to_string()))?
            } else {
                genuine
                    .next()
                    .ok_or_else(|| LoadError::Tokens(format!("no token for connection {index}")))?
            };
            tokens.push(Token { token, forged });
        }
        Ok(tokens)
    }
}

impl MintSettings {
    fn issuer(&self) -> Result<TokenIssuer, LoadError> {
        let settings = TokenSettings {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            ttl_secs: self.ttl_secs,
            ..contract_settings()
        };
        hs256_issuer(self.secret.expose_secret().as_bytes(), &settings)
            .map_err(|error| LoadError::Tokens(format!("--secret: {error}")))
    }

    fn username(&self, index: usize) -> String {
        match self.users {
            Some(users) if users > 0 => format!("user{}", index % users),
            _ => format!("user{index}"),
        }
    }
}

/// The contract's `iss`, `aud` and lifetime: what forged tokens carry, and
/// minted ones unless told otherwise. (The leeway is a verifier's; an issuer
/// does not read it.)
fn contract_settings() -> TokenSettings {
    TokenSettings {
        issuer: "web-frontend".into(),
        audience: "socket-server".into(),
        ttl_secs: 300,
        leeway_secs: 5,
    }
}

/// Signs as the web-frontend does in the contract's default mode: HS256 with
/// the shared key, and no `kid` (the contract's exact header).
fn hs256_issuer(secret: &[u8], settings: &TokenSettings) -> Result<TokenIssuer, KeyError> {
    let key = SigningKey::Shared {
        key: SharedKey::new(secret)?,
        announce_kid: false,
    };
    Ok(TokenIssuer::with_key(settings, &key))
}

async fn wait_for_second_after(second: i64) {
    while claims::unix_now() <= second {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl WebLogin {
    /// A cookie-keeping client logged in with the form (`POST /login` → 303).
    pub async fn log_in(&self, timeout: Duration) -> Result<reqwest::Client, LoadError> {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .map_err(|error| LoadError::Web(error.to_string()))?;
        let response = client
            .post(format!("{}/login", self.url))
            .form(&[
                ("username", self.username.as_str()),
                ("password", self.password.expose_secret()),
            ])
            .send()
            .await
            .map_err(|error| LoadError::Web(format!("POST /login: {error}")))?;
        if response.status() != reqwest::StatusCode::SEE_OTHER {
            return Err(LoadError::Web(format!(
                "POST /login as {:?}: {} (expected 303)",
                self.username,
                response.status()
            )));
        }
        Ok(client)
    }
}

/// One `GET /getIoConnectionToken` of a logged-in client: the token.
pub async fn fetch_token(client: &reqwest::Client, web_url: &str) -> Result<String, LoadError> {
    let response = client
        .get(format!("{web_url}/getIoConnectionToken"))
        .send()
        .await
        .map_err(|error| LoadError::Web(format!("GET /getIoConnectionToken: {error}")))?;
    if !response.status().is_success() {
        return Err(LoadError::Web(format!(
            "GET /getIoConnectionToken: {}",
            response.status()
        )));
    }
    response
        .json()
        .await
        .map_err(|error| LoadError::Web(format!("GET /getIoConnectionToken: {error}")))
}

/// `count` tokens of one session, a few requests at a time.
async fn fetch_tokens(
    client: &reqwest::Client,
    web_url: &str,
    count: usize,
    timeout: Duration,
) -> Result<Vec<String>, LoadError> {
    use futures_util::StreamExt as _;
    let fetches = futures_util::stream::iter(0..count)
        .map(|_| fetch_token(client, web_url))
        .buffered(8)
        .collect::<Vec<_>>();
    // The client's own timeout bounds each request; this bounds them all.
    let deadline = timeout.saturating_mul(u32::try_from(count.div_ceil(8)).unwrap_or(u32::MAX));
    tokio::time::timeout(deadline, fetches)
        .await
        .map_err(|_| LoadError::Web(format!("fetching {count} tokens took over {deadline:?}")))?
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forged_share_is_exact_and_spread() {
        let forged: Vec<usize> = (0..50).filter(|&i| is_forged(i, 0.1)).collect();
        assert_eq!(forged.len(), 5);
        assert!(forged.windows(2).all(|pair| pair[1] - pair[0] == 10));
        assert_eq!((0..1000).filter(|&i| is_forged(i, 0.25)).count(), 250);
        assert_eq!((0..10).filter(|&i| is_forged(i, 0.0)).count(), 0);
        assert_eq!((0..10).filter(|&i| is_forged(i, 1.0)).count(), 10);
    }

    #[tokio::test]
    async fn minted_tokens_pass_the_verifier_and_forged_ones_do_not() {
        let secret = SecretString::from("loadgen-unit-test-shared-key-0123456789");
        let source = TokenSource::Mint(MintSettings::new(secret.clone()));
        let tokens = source
            .tokens(10, 0.2, Duration::from_secs(5))
            .await
            .expect("tokens");
        let verifier = testkit::Hs256Fixture::new(secret.expose_secret())
            .verifier()
            .expect("verifier");
        for token in &tokens {
            let verified = verifier.verify(&token.token, claims::unix_now());
            assert_eq!(verified.is_err(), token.forged);
        }
        assert_eq!(tokens.iter().filter(|token| token.forged).count(), 2);
    }
}
