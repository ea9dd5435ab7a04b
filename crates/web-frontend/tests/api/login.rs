use crate::helpers::*;

#[tokio::test]
async fn basic_auth_with_valid_credentials_logs_in_and_redirects_to_private() {
    let app = spawn_app().await;

    let response = app.basic_login(USERNAME, PASSWORD).await;

    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/private");
    let page = app.get("/private").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("body").contains("Welcome alice!"));
}

#[tokio::test]
async fn basic_auth_with_a_wrong_password_is_401_with_the_realm() {
    let app = spawn_app().await;

    let response = app.basic_login(USERNAME, "wrong").await;

    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Basic realm="site_login""#
    );
    assert_eq!(
        app.get("/private").await.status(),
        303,
        "no session was set"
    );
}

#[tokio::test]
async fn basic_auth_for_an_unknown_user_is_401() {
    let app = spawn_app().await;
    let response = app.basic_login("mallory", PASSWORD).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Basic realm="site_login""#
    );
}

#[tokio::test]
async fn malformed_basic_credentials_are_401_with_the_realm() {
    let app = spawn_app().await;
    for header in [
        "Basic !!!not-base64",
        "Basic bm8tY29sb24=",
        "Basic",
        "Basic //79",
    ] {
        let response = app
            .client
            .get(app.url("/login"))
            .header("authorization", header)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401, "{header}");
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Basic realm="site_login""#
        );
    }
}

#[tokio::test]
async fn get_login_without_credentials_shows_the_form() {
    let app = spawn_app().await;

    let response = app.get("/login").await;

    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let body = response.text().await.expect("body");
    assert!(body.contains(r#"<form method="post" action="/login">"#));
    assert!(body.contains(r#"name="username""#) && body.contains(r#"name="password""#));
}

#[tokio::test]
async fn the_login_form_with_valid_credentials_logs_in() {
    let app = spawn_app().await;

    let response = app.post_login(USERNAME, PASSWORD).await;

    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/private");
    assert_eq!(app.get("/private").await.status(), 200);
}

#[tokio::test]
async fn the_login_form_with_a_wrong_password_is_401_html_with_the_error_and_the_username_kept() {
    let app = spawn_app().await;

    let response = app.post_login(USERNAME, "wrong").await;

    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let body = response.text().await.expect("body");
    assert!(body.contains("Wrong username or password."));
    assert!(body.contains(r#"value="alice""#));
    assert_eq!(app.get("/private").await.status(), 303);
}

#[tokio::test]
async fn a_login_form_with_missing_fields_is_401() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/login"))
        .form(&[("username", USERNAME)])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn the_username_is_escaped_in_the_form() {
    let app = spawn_app().await;
    let body = app
        .post_login("<script>alert(1)</script>", "x")
        .await
        .text()
        .await
        .expect("body");
    assert!(!body.contains("<script>alert(1)</script>"));
    assert!(body.contains("&lt;script&gt;"));
}

#[tokio::test]
async fn logging_in_gives_a_new_session_id() {
    let app = spawn_app().await;
    let first = session_cookie(&app.post_login(USERNAME, PASSWORD).await);
    let second = session_cookie(&app.post_login(USERNAME, PASSWORD).await);
    assert_ne!(first, second, "no session fixation");
}

#[tokio::test]
async fn the_session_cookie_is_httponly_and_samesite_lax_and_not_secure_over_http() {
    let app = spawn_app().await;
    let response = app.post_login(USERNAME, PASSWORD).await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn the_session_cookie_is_secure_when_the_deployment_is_https() {
    let mut settings = settings();
    settings.web.socket_url = "https://socket.example".into();
    let app = spawn_app_with(settings).await;
    let response = app.post_login(USERNAME, PASSWORD).await;
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn logout_ends_the_session_and_redirects_home() {
    let app = spawn_app().await;
    app.post_login(USERNAME, PASSWORD).await;

    let response = app.post_logout().await;

    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/");
    assert_eq!(app.get("/private").await.status(), 303);
    assert_eq!(app.get("/getIoConnectionToken").await.status(), 403);
}

#[tokio::test]
async fn a_replayed_cookie_from_before_logout_no_longer_logs_in() {
    let app = spawn_app().await;
    let old_cookie = session_cookie(&app.post_login(USERNAME, PASSWORD).await);
    app.post_logout().await;

    let replay = client();
    let private = replay
        .get(app.url("/private"))
        .header("cookie", &old_cookie)
        .send()
        .await
        .expect("request");
    let token = replay
        .get(app.url("/getIoConnectionToken"))
        .header("cookie", &old_cookie)
        .send()
        .await
        .expect("request");

    assert_eq!(private.status(), 303);
    assert_eq!(location(&private), "/login");
    assert_eq!(token.status(), 403);
}

#[tokio::test]
async fn cross_site_login_and_logout_posts_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let cross_site = app
        .client
        .post(app.url("/login"))
        .header("origin", "http://evil.example")
        .form(&[("username", USERNAME), ("password", PASSWORD)])
        .send()
        .await
        .expect("request");
    assert_eq!(cross_site.status(), 403);
    assert_eq!(app.get("/private").await.status(), 303, "not logged in");

    app.post_login(USERNAME, PASSWORD).await;
    let cross_site = app
        .client
        .post(app.url("/logout"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .expect("request");
    assert_eq!(cross_site.status(), 403);
    assert_eq!(app.get("/private").await.status(), 200, "still logged in");
}

#[tokio::test]
async fn same_origin_posts_from_the_browser_are_accepted() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/login"))
        .header("origin", &app.address)
        .form(&[("username", USERNAME), ("password", PASSWORD)])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 303);
}
