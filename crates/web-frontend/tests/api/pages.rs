use crate::helpers::*;

#[tokio::test]
async fn the_home_page_is_html_with_a_way_in() {
    let app = spawn_app().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains(r#"href="/login""#)
    );
}

#[tokio::test]
async fn private_without_a_session_redirects_to_login() {
    let app = spawn_app().await;
    let response = app.get("/private").await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/login");
}

#[tokio::test]
async fn healthz_is_200() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn every_page_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in ["/", "/login", "/private", "/nope"] {
        let response = app.get(path).await;
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().expect("ascii");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(headers.contains_key("referrer-policy"), "{path}");
    }
}

#[tokio::test]
async fn an_unknown_path_is_a_404_page() {
    let app = spawn_app().await;
    let response = app.get("/nope").await;
    assert_eq!(response.status(), 404);
    assert!(response.text().await.expect("body").contains("Not found"));
}

#[tokio::test]
async fn the_stylesheet_is_served() {
    let app = spawn_app().await;
    let response = app.get("/static/app.css").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/css")
    );
}

#[tokio::test]
async fn metrics_count_logins_and_tokens_in_the_prometheus_format() {
    let app = spawn_app().await;
    app.post_login(USERNAME, "wrong").await;
    app.post_login(USERNAME, PASSWORD).await;
    app.get("/getIoConnectionToken").await;

    let response = app.get("/metrics").await;

    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain; version=0.0.4")
    );
    let body = response.text().await.expect("body");
    assert!(
        body.contains("authbridge_logins_total{result=\"ok\"} 1\n"),
        "{body}"
    );
    assert!(
        body.contains("authbridge_logins_total{result=\"failed\"} 1\n"),
        "{body}"
    );
    assert!(
        body.contains("authbridge_tokens_issued_total 1\n"),
        "{body}"
    );
}

#[tokio::test]
async fn head_is_answered_wherever_get_is_without_a_body() {
    let app = spawn_app().await;
    for path in ["/", "/login", "/healthz", "/static/app.css", "/metrics"] {
        let response = app
            .client
            .head(app.url(path))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "HEAD {path}");
        assert!(
            response.bytes().await.expect("body").is_empty(),
            "HEAD {path} has no body"
        );
    }
}
