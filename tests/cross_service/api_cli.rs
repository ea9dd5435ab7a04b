//! `socket-server publish`, the operator's client of the server API: the
//! answer on stdout, the event delivered; a refusal's message and a non-zero
//! exit; without a key, a word that the API is off.

use std::process::ExitStatus;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::Command;

use crate::api::{ApiNodes, Mode};
use crate::api_process::socket_server_binary;
use crate::helpers::{API_KEY, token_of_session};
use crate::socketio::SioClient;

/// Runs `socket-server publish ARGS` with exactly `env`; its exit status,
/// stdout and stderr.
async fn publish_command(args: &[&str], env: &[(&str, String)]) -> (ExitStatus, String, String) {
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        Command::new(socket_server_binary())
            .arg("publish")
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(name, value)| (*name, value)))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("socket-server publish finishes")
    .expect("socket-server publish runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert!(
        !stdout.contains(API_KEY) && !stderr.contains(API_KEY),
        "the key printed: {stdout}{stderr}"
    );
    (output.status, stdout, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publish_command_pushes_an_event_through_a_running_node_or_says_why_not() {
    for mode in [Mode::Embedded, Mode::Scaled] {
        // The socket on node A, the command aimed at node B.
        let nodes = ApiNodes::start(mode).await;
        let socket = SioClient::connect_with_auth(
            &nodes.urls[0],
            &token_of_session("gonzalo", "sid-cli-0123456789abcdef"),
        )
        .await
        .expect("a socket");
        let addr = nodes.urls[1].trim_start_matches("http://").to_owned();
        let env = [
            ("APP_API__KEY", API_KEY.to_owned()),
            ("APP_SOCKET__ADDR", addr.clone()),
        ];
        let notice = [
            "--to",
            "user:gonzalo",
            "--event",
            "notice",
            "--data",
            r#"{"text":"hi"}"#,
        ];

        // socket.addr from the environment.
        let (status, stdout, stderr) = publish_command(&notice, &env).await;
        assert!(status.success(), "{mode:?}: {stderr}");
        let answer: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
        assert_eq!(answer["sockets"], 1, "{mode:?}: {stdout}");
        assert!(
            answer["id"].as_str().is_some_and(|id| !id.is_empty()),
            "{stdout}"
        );
        assert_eq!(
            socket
                .next_event("notice", Duration::from_secs(5))
                .await
                .expect("the notice"),
            json!({"text": "hi"})
        );

        // --url; two targets; an idempotent repeat delivers nothing and says so.
        let url = nodes.urls[1].clone();
        let repeated = [
            "--url",
            &url,
            "--to",
            "user:gonzalo",
            "--to",
            "session:sid-cli-0123456789abcdef",
            "--event",
            "order.paid",
            "--data",
            "[1, null]",
            "--idempotency-key",
            "cli-1",
        ];
        let just_key = [("APP_API__KEY", API_KEY.to_owned())];
        let (first, first_out, first_err) = publish_command(&repeated, &just_key).await;
        let (again, again_out, again_err) = publish_command(&repeated, &just_key).await;
        assert!(first.success() && again.success(), "{first_err}{again_err}");
        assert_eq!(first_out, again_out, "the first answer again");
        assert!(
            !first_err.contains("repeat") && again_err.contains("a repeat"),
            "{again_err}"
        );
        assert_eq!(
            serde_json::from_str::<Value>(first_out.trim()).expect("JSON")["sockets"],
            1
        );
        let (_, fence, _) =
            publish_command(&["--to", "user:gonzalo", "--event", "fence"], &env).await;
        assert_eq!(
            serde_json::from_str::<Value>(fence.trim()).expect("JSON")["sockets"],
            1
        );
        socket
            .next_event("fence", Duration::from_secs(5))
            .await
            .expect("the fence");
        assert_eq!(
            socket
                .next_event("order.paid", Duration::ZERO)
                .await
                .expect("once"),
            json!([1, null])
        );
        socket
            .expect_no_event("order.paid", Duration::ZERO)
            .await
            .expect("delivered once");

        // Refused: the 400's message, a non-zero exit, nothing on stdout.
        for (event, message) in [
            ("message", r#"event: \"message\" is reserved"#),
            ("1bad", r#"event: \"1bad\" is not an event name"#),
        ] {
            let (status, stdout, stderr) =
                publish_command(&["--to", "user:gonzalo", "--event", event], &env).await;
            assert!(!status.success(), "{mode:?}: --event {event}");
            assert!(stdout.is_empty(), "{stdout}");
            assert!(
                stderr.contains("400") && stderr.contains(message),
                "{mode:?}: {stderr}"
            );
        }
        let wrong_key = [
            (
                "APP_API__KEY",
                "another-api-key-of-enough-bytes-0123456789".to_owned(),
            ),
            ("APP_SOCKET__ADDR", addr.clone()),
        ];
        let (status, _, stderr) = publish_command(&notice, &wrong_key).await;
        assert!(
            !status.success() && stderr.contains("401") && stderr.contains("unauthorized"),
            "{stderr}"
        );
        let (status, stdout, stderr) =
            publish_command(&notice, &[("APP_SOCKET__ADDR", addr.clone())]).await;
        assert!(!status.success() && stdout.is_empty(), "{stdout}");
        assert!(
            stderr.contains("api.key (APP_API__KEY) is not set: the server API is off"),
            "{stderr}"
        );
        socket
            .expect_no_event("notice", Duration::ZERO)
            .await
            .expect("nothing more delivered");
    }
}
