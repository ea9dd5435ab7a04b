//! The contract's failed-login throttle, against a real server: every request
//! comes from 127.0.0.1, so they all share one client address.

use settings::UserEntry;

use crate::helpers::*;

const GONZALO: &str = "gonzalo";
const GONZALOS_PASSWORD: &str = "password";

/// The helpers' app, with the article's `gonzalo` besides `alice`.
async fn spawn_app_with_gonzalo() -> TestApp {
    let mut settings = settings();
    settings.users.push(UserEntry {
        username: GONZALO.into(),
        password_hash: web_frontend::users::hash_password(GONZALOS_PASSWORD).expect("hash"),
        rooms: Vec::new(),
    });
    spawn_app_with(settings).await
}

/// A 429 with `Retry-After` between 1 and 60 seconds.
fn assert_throttled(response: &reqwest::Response) {
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
}

/// Fails attempts 11 to 21 until the first 429 (the contract: from the 11th at
/// the earliest, the 21st at the latest); that answer.
async fn first_throttled<F, Fut>(attempt: F) -> reqwest::Response
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    for n in 11..=21 {
        let response = attempt().await;
        match response.status().as_u16() {
            401 => continue,
            429 => return response,
            other => panic!("attempt {n}: {other}"),
        }
    }
    panic!("the 21st failure was not throttled");
}

#[tokio::test]
async fn the_login_form_is_throttled_per_username_even_with_the_right_password() {
    let app = spawn_app_with_gonzalo().await;
    for n in 1..=10 {
        let response = app.post_login(GONZALO, "wrong").await;
        assert_eq!(response.status(), 401, "failure {n} is never throttled");
    }

    let throttled = first_throttled(|| app.post_login(GONZALO, "wrong")).await;
    assert_throttled(&throttled);
    assert!(
        throttled.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let body = throttled.text().await.expect("body");
    assert!(body.contains("Too many failed logins."), "{body}");
    assert!(
        body.contains(r#"value="gonzalo""#),
        "the form, username kept"
    );

    let right = app.post_login(GONZALO, GONZALOS_PASSWORD).await;
    assert_throttled(&right);
    assert_eq!(app.get("/private").await.status(), 303, "not logged in");
    // The same username over Basic auth is throttled too.
    assert_throttled(&app.basic_login(GONZALO, GONZALOS_PASSWORD).await);

    // Another username from the same address is still let in.
    let alice = app.post_login(USERNAME, PASSWORD).await;
    assert_eq!(alice.status(), 303);
    assert_eq!(location(&alice), "/private");

    let metrics = app.get("/metrics").await.text().await.expect("body");
    assert!(
        metrics.contains("authbridge_logins_total{result=\"throttled\"} 3\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn basic_auth_is_throttled_per_username_with_a_plain_429_and_no_challenge() {
    let app = spawn_app_with_gonzalo().await;
    for n in 1..=10 {
        let response = app.basic_login(GONZALO, "wrong").await;
        assert_eq!(response.status(), 401, "failure {n} is never throttled");
    }

    let throttled = first_throttled(|| app.basic_login(GONZALO, "wrong")).await;
    assert_throttled(&throttled);
    assert!(!throttled.headers().contains_key("www-authenticate"));
    assert!(
        throttled.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );

    let right = app.basic_login(GONZALO, GONZALOS_PASSWORD).await;
    assert_throttled(&right);
    assert!(!right.headers().contains_key("www-authenticate"));
    assert_eq!(app.get("/private").await.status(), 303, "not logged in");
    assert_throttled(&app.post_login(GONZALO, GONZALOS_PASSWORD).await);

    let alice = app.basic_login(USERNAME, PASSWORD).await;
    assert_eq!(alice.status(), 303);
}

#[tokio::test]
async fn one_address_is_throttled_across_usernames() {
    let app = spawn_app_with_gonzalo().await;
    // Usernames longer than any valid one fail without an argon2 run: each is
    // another username, so only the address bound can apply.
    let stranger = |n: usize| format!("{n}{}", "x".repeat(2000));
    for n in 1..=30 {
        let response = app.post_login(&stranger(n), "wrong").await;
        assert_eq!(response.status(), 401, "failure {n} is never throttled");
    }
    assert_eq!(
        app.post_login(USERNAME, PASSWORD).await.status(),
        303,
        "a success below the bound"
    );

    let mut first = None;
    for n in 31..=51 {
        let response = app.post_login(&stranger(n), "wrong").await;
        if response.status() == 429 {
            first = Some(response);
            break;
        }
        assert_eq!(response.status(), 401, "attempt {n}");
    }
    assert_throttled(&first.expect("the 51st failure from one address is throttled"));

    // Every username from this address now, the right password included.
    assert_throttled(&app.post_login(USERNAME, PASSWORD).await);
    assert_throttled(&app.basic_login(GONZALO, GONZALOS_PASSWORD).await);
}

#[tokio::test]
async fn a_user_below_the_bound_logs_in_and_a_success_lets_them_mistype_again() {
    let app = spawn_app_with_gonzalo().await;
    for _ in 0..8 {
        assert_eq!(app.post_login(GONZALO, "wrong").await.status(), 401);
    }
    let response = app.post_login(GONZALO, GONZALOS_PASSWORD).await;
    assert_eq!(response.status(), 303);
    assert_eq!(app.get("/private").await.status(), 200);

    for _ in 0..8 {
        assert_eq!(app.basic_login(GONZALO, "wrong").await.status(), 401);
    }
    assert_eq!(
        app.basic_login(GONZALO, GONZALOS_PASSWORD).await.status(),
        303
    );
}
