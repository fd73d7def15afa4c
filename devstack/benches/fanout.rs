//! The local stack under load, with release binaries (`cargo xtask bench` builds them first):
//!
//! 1. connects per second: listeners connecting at once (`$connect` authorizer, `connection`
//!    function, the rows it writes);
//! 2. fan-out: one speaker control (`pauseBroadcast` / `resumeBroadcast`) until the last of the
//!    listeners has it, p50/p99 over rounds;
//! 3. the gateway's own share of a message: an `@connections` POST until the client has the
//!    frame (no function involved), and a heartbeat's round trip through everything.
//!
//! Timings are printed, never asserted. Environment: `FANOUT_LISTENERS` (default 1000),
//! `FANOUT_ROUNDS` (default 20).

use devstack::{DevConfig, DevStack, LogSink, TokenRequest};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

fn percentile(samples: &mut [Duration], percent: usize) -> f64 {
    samples.sort_unstable();
    let index = (samples.len() * percent / 100).min(samples.len().saturating_sub(1));
    samples.get(index).map_or(0.0, |sample| sample.as_secs_f64() * 1e3)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let listeners = setting("FANOUT_LISTENERS", 1000);
    let rounds = setting("FANOUT_ROUNDS", 20);
    let _ = rlimit::increase_nofile_limit(65_536);
    let root = testkit::workspace_root();
    let binaries = tokio::task::spawn_blocking(move || devstack::binaries::build(&root, true)).await??;
    let mut stage = stacks::stages::dev();
    stage.limits.max_listeners_per_session = u32::try_from(listeners * 2).unwrap_or(u32::MAX);
    stage.limits.connects_per_minute_per_ip = 1_000_000;
    let log = devstack::binaries::target_directory(&testkit::workspace_root()).join("devstack-bench.log");
    let stack = DevStack::start(DevConfig::local(stage, binaries, LogSink::file(&log)?)?).await?;
    let token = stack.token(&TokenRequest::id("bench", 3600))?;
    let created: Value = reqwest::Client::new()
        .post(format!("{}/sessions", stack.http_url()))
        .bearer_auth(&token)
        .json(&json!({"sourceLanguage": "en"}))
        .send()
        .await?
        .json()
        .await?;
    let session = created["sessionId"].as_str().unwrap_or_default().to_owned();
    let (mut speaker, _) =
        connect_async(format!("{}?sessionId={session}&token={token}", stack.websocket_url())).await?;

    // 1. Connects per second (32 handshakes in flight, as a crowd arriving would).
    let languages = ["de", "fr", "es", "it", "ja"];
    let started = Instant::now();
    let urls: Vec<String> = (0..listeners)
        .map(|index| {
            let language = languages[index % languages.len()];
            format!("{}?sessionId={session}&targetLanguage={language}", stack.websocket_url())
        })
        .collect();
    let sockets: Vec<_> = futures::stream::iter(urls)
        .map(|url| async move { connect_async(url).await.map(|(socket, _)| socket) })
        .buffer_unordered(32)
        .collect()
        .await;
    let connect_time = started.elapsed();
    let sockets: Vec<_> = sockets.into_iter().collect::<Result<_, _>>()?;
    println!(
        "local stack: {listeners} listeners connected in {:.2} s = {:.0} connects/s (authorizer + $connect + moto)",
        connect_time.as_secs_f64(),
        listeners as f64 / connect_time.as_secs_f64()
    );

    // 2. Fan-out: until the last listener has the control.
    let (_writers, mut readers): (Vec<_>, Vec<_>) = sockets.into_iter().map(StreamExt::split).unzip();
    let mut last = Vec::new();
    let mut each = Vec::new();
    for round in 0..rounds {
        let (action, expected) = if round % 2 == 0 {
            ("pauseBroadcast", "broadcastPaused")
        } else {
            ("resumeBroadcast", "broadcastResumed")
        };
        let sent = Instant::now();
        speaker.send(Message::text(json!({"action": action}).to_string())).await?;
        let arrivals = futures::future::join_all(readers.iter_mut().map(|reader| async move {
            while let Some(Ok(message)) = reader.next().await {
                if let Message::Text(text) = message
                    && text.contains(expected)
                {
                    return Some(sent.elapsed());
                }
            }
            None
        }))
        .await;
        let arrivals: Vec<Duration> = arrivals.into_iter().flatten().collect();
        if arrivals.len() != listeners {
            anyhow::bail!("round {round}: {} of {listeners} listeners got {expected}", arrivals.len());
        }
        last.push(arrivals.iter().copied().max().unwrap_or_default());
        each.extend(arrivals);
    }
    println!(
        "local stack: one control to {listeners} listeners, until the last has it: p50 {:.1} ms, p99 {:.1} ms ({rounds} rounds); per listener p50 {:.1} ms",
        percentile(&mut last, 50),
        percentile(&mut last, 99),
        percentile(&mut each, 50)
    );

    // 3. The gateway's own share: @connections POST → frame at the client, no function.
    let (mut probe, _) =
        connect_async(format!("{}?sessionId={session}&targetLanguage=de", stack.websocket_url())).await?;
    send_and_read(&mut probe, json!({"action": "heartbeat"})).await?;
    let connection_id = {
        probe
            .send(Message::text(
                json!({"action": "joinSession", "sessionId": session, "targetLanguage": "de"}).to_string(),
            ))
            .await?;
        let joined = read_type(&mut probe, "sessionJoined").await?;
        joined["connectionId"].as_str().unwrap_or_default().to_owned()
    };
    let management = format!(
        "{}/@connections/{}",
        stack.ready_json()["management_endpoint"].as_str().unwrap_or_default(),
        connection_id
    );
    let client = reqwest::Client::new();
    let mut posts = Vec::new();
    for _ in 0..500 {
        let sent = Instant::now();
        client.post(&management).body(r#"{"type":"probe"}"#).send().await?.error_for_status()?;
        read_type(&mut probe, "probe").await?;
        posts.push(sent.elapsed());
    }
    let mut heartbeats = Vec::new();
    for _ in 0..200 {
        let sent = Instant::now();
        send_and_read(&mut probe, json!({"action": "heartbeat"})).await?;
        heartbeats.push(sent.elapsed());
    }
    println!(
        "local stack: gateway alone (@connections POST to frame at the client) p50 {:.2} ms, p99 {:.2} ms; heartbeat round trip (gateway + Runtime API + function + @connections) p50 {:.2} ms, p99 {:.2} ms",
        percentile(&mut posts, 50),
        percentile(&mut posts, 99),
        percentile(&mut heartbeats, 50),
        percentile(&mut heartbeats, 99)
    );
    drop(readers);
    stack.stop().await;
    Ok(())
}

async fn read_type<S>(socket: &mut S, kind: &str) -> anyhow::Result<Value>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    while let Some(message) = tokio::time::timeout(Duration::from_secs(30), socket.next()).await? {
        if let Message::Text(text) = message? {
            let value: Value = serde_json::from_str(&text)?;
            if value["type"] == kind {
                return Ok(value);
            }
        }
    }
    anyhow::bail!("the connection closed before {kind}")
}

async fn send_and_read<S>(socket: &mut S, message: Value) -> anyhow::Result<()>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + futures::Sink<Message, Error = tokio_tungstenite::tungstenite::Error>
        + Unpin,
{
    socket.send(Message::text(message.to_string())).await?;
    read_type(socket, "heartbeatAck").await.map(|_| ())
}
