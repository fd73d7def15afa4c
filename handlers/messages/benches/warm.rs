//! The CPU cost of a warm `messages` invocation, without network I/O: the event JSON is
//! deserialized, the frame parsed and validated, and the reply serialized, exactly as the
//! function does around its store and `@connections` calls.
//!
//! Run with `cargo xtask bench` (or `cargo bench -p messages --bench warm`). Prints one line per
//! frame kind: median and 99th percentile per invocation, in microseconds.

use session_core::events::WebSocketEvent;
use session_core::protocol::{ClientMessage, ServerMessage, parse_client_frame};
use session_core::validation::MAX_MESSAGE_BYTES;
use std::hint::black_box;
use std::time::{Duration, Instant};

const ITERATIONS: usize = 20_000;

fn event_with(body: &str) -> String {
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("../tests/data/message.json")).expect("the fixture is JSON");
    event["body"] = serde_json::Value::from(body);
    event.to_string()
}

fn reply_to(message: &ClientMessage) -> ServerMessage {
    match message {
        ClientMessage::SetVolume { volume_level } => ServerMessage::VolumeChanged { volume_level: *volume_level },
        _ => ServerMessage::HeartbeatAck,
    }
}

/// One warm invocation's own work.
fn invocation(raw_event: &str) -> String {
    let event: WebSocketEvent = serde_json::from_str(raw_event).expect("a valid event");
    let frame = event.body.as_deref().unwrap_or_default();
    let reply = match parse_client_frame(frame, MAX_MESSAGE_BYTES) {
        Ok(message) => reply_to(&message),
        Err(refusal) => refusal.to_message(),
    };
    reply.at(1_795_633_281_000).to_json_string()
}

fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

fn main() {
    let audio = "A".repeat(8 * 1024);
    let cases = [
        ("heartbeat", event_with(r#"{"action":"heartbeat","timestamp":1795633281000}"#)),
        ("setVolume", event_with(r#"{"action":"setVolume","volumeLevel":0.5}"#)),
        ("joinSession", event_with(r#"{"action":"joinSession","sessionId":"quiet-harbor-417","targetLanguage":"de"}"#)),
        (
            "sendAudio 6 KB",
            event_with(&format!(r#"{{"action":"sendAudio","audioData":"{audio}","chunkId":1,"timestamp":1}}"#)),
        ),
        ("bad frame", event_with(r#"{"action":"setVolume","volumeLevel":7}"#)),
    ];
    println!("warm messages invocation, no network I/O ({ITERATIONS} runs each)");
    for (name, raw) in &cases {
        let mut samples = Vec::with_capacity(ITERATIONS);
        for _ in 0..ITERATIONS {
            let start = Instant::now();
            black_box(invocation(black_box(raw)));
            samples.push(start.elapsed());
        }
        samples.sort_unstable();
        println!("  {name:<16} p50 {:>7.2} µs   p99 {:>7.2} µs", percentile(&samples, 0.5), percentile(&samples, 0.99));
    }
}
