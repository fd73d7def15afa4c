//! `cargo xtask dev` as a user runs it: it writes its ready file once everything accepts
//! connections, serves what the file says (the console too, whose pages the HTTP API lets in
//! whatever port it got), and on SIGTERM stops every process it started and removes the file.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The processes whose parent is `pid` (from `/proc`).
fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|candidate| {
            let stat = std::fs::read_to_string(format!("/proc/{candidate}/stat")).unwrap_or_default();
            // `pid (comm) state ppid ...`; comm may hold spaces, so read after the last ')'.
            let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
            after.split_whitespace().nth(1).and_then(|ppid| ppid.parse::<u32>().ok()) == Some(pid)
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

fn wait_for_file(path: &Path, child: &mut Child, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return serde_json::from_str(&text).expect("the ready file is JSON");
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("cargo xtask dev exited before it was ready ({status})");
        }
        assert!(started.elapsed() < limit, "no ready file after {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_for_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        assert!(started.elapsed() < limit, "cargo xtask dev did not stop within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dev_is_ready_when_it_says_and_leaves_nothing_behind() {
    let directory = std::env::temp_dir().join(format!("xtask-dev-{}", std::process::id()));
    let ready: PathBuf = directory.join("ready.json");
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    let mut child = testkit::isolate_aws_environment(&mut command)
        .args(["dev", "--port", "0", "--ready-file"])
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cargo xtask dev starts");
    let info = wait_for_file(&ready, &mut child, Duration::from_secs(600));
    let websocket_url = info["websocket_url"].as_str().expect("websocket_url");
    let http_url = info["http_url"].as_str().expect("http_url");
    assert!(websocket_url.starts_with("ws://127.0.0.1:") && websocket_url.ends_with("/dev"), "{websocket_url}");
    assert!(info["dynamodb_endpoint"].as_str().is_some_and(|url| url.starts_with("http://127.0.0.1:")));

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let health = reqwest::get(format!("{http_url}/health")).await.expect("the HTTP API answers");
        assert_eq!(health.status(), 200);
        let plain = reqwest::get(websocket_url.replacen("ws://", "http://", 1)).await.expect("the gateway answers");
        assert_eq!(plain.status(), 426, "the WebSocket endpoint asks for an upgrade");
        let jwks = reqwest::get(info["jwks_url"].as_str().expect("jwks_url")).await.expect("the JWKS is served");
        assert_eq!(jwks.status(), 200);
        let console = info["console_url"].as_str().expect("console_url");
        let config: Value = reqwest::get(format!("{console}/config.json"))
            .await
            .expect("the console answers")
            .json()
            .await
            .expect("its config.json is JSON");
        assert_eq!(
            (config["websocketUrl"].as_str(), config["httpUrl"].as_str()),
            (Some(websocket_url), Some(http_url))
        );
        let preflight = reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, format!("{http_url}/sessions"))
            .header("Origin", console)
            .header("Access-Control-Request-Method", "POST")
            .send()
            .await
            .expect("the HTTP API answers a preflight");
        let allowed = preflight.headers().get("access-control-allow-origin").and_then(|value| value.to_str().ok());
        assert_eq!(allowed, Some(console), "the HTTP API lets the console's pages in");
    });

    let started: Vec<u32> = children(child.id());
    assert!(started.len() >= 2, "moto and the functions run as children: {started:?}");
    let signalled = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(signalled.success());
    let status = wait_for_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
    assert!(!ready.exists(), "the ready file is removed on exit");
    let deadline = Instant::now() + Duration::from_secs(10);
    while started.iter().any(|pid| alive(*pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left: Vec<u32> = started.into_iter().filter(|pid| alive(*pid)).collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
    let _ = std::fs::remove_dir_all(directory);
}
