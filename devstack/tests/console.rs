//! The console in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`)
//! driven over WebDriver (thirtyfour) against a local stack and its console, every page at a
//! phone's 390×844 viewport.
//!
//! One speaker page and two listener pages (German and French) in three windows of one browser.
//! The speaker page checks `console/pcm.js` (resampling, chunks, encoding), gets a local token,
//! creates a session and broadcasts from Chromium's fake microphone (a beep): the audio reaches
//! the session's Kinesis stream, captured by an AudioWorklet and then by the ScriptProcessor
//! fallback. Both listeners join by the join link, and the speaker page shows two listeners and
//! their languages. A listener told to refresh its connection (a `connectionRefreshRequired`
//! posted through `@connections`) moves to a new connection and keeps its place. The speaker
//! pauses, mutes and sets the volume, and both listener pages show each; the speaker ends the
//! session and both say it ended.
//!
//! Every refusal of a join shows its sentence: a third listener finds the session full (the
//! stack's cap is two listeners); it then asks for a session that does not exist (404), which
//! uses up the address's handshakes for the minute (the stack allows one such miss), so its
//! join of the live session, which has room again once the French listener left, is refused
//! (429) and counts down to trying again; the test forgets the count, as the next minute would,
//! and the page's button joins at once. After the end, a listener following the join link is
//! told the session ended (403).
//!
//! `cargo xtask test` installs Chromium and chromedriver when they are missing; a plain
//! `cargo test` without them fails saying what to install. With `CONSOLE_SCREENSHOTS=1` the
//! test writes `docs/images/console-speaker.png` and `docs/images/console-listener.png`
//! (never in CI: nothing else writes into the tree).

mod support;

use base64::Engine;
use devstack::console::{Console, ConsoleConfig, ConsoleListener, allow_origins};
use devstack::{DevConfig, DevStack, LocalIdentity, LogSink};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use thirtyfour::prelude::*;

/// The phone the pages are tested at (CSS pixels).
const VIEWPORT: (u32, u32) = (390, 844);
/// How long a page may take to show what the test waits for.
const PAGE_WAIT: Duration = Duration::from_secs(30);
/// Set to write the screenshots in docs/images.
const SCREENSHOTS_ENV: &str = "CONSOLE_SCREENSHOTS";

/// A program from `PATH`, or a failure saying what to install.
fn installed(program: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|directory| directory.join(program))
        .find(|candidate| candidate.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "{program} is not installed: the console's browser test needs Debian's chromium and chromium-driver \
             (`apt-get install -y chromium chromium-driver`; `cargo xtask test` installs them when run as root)"
        )
    })
}

/// chromedriver on a free port of this machine, stopped when dropped.
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    async fn start(program: &Path, log: &Path) -> Chromedriver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Chromedriver { child, url: format!("http://127.0.0.1:{port}") };
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + PAGE_WAIT;
        loop {
            let status = client.get(format!("{}/status", driver.url)).send().await;
            if let Ok(response) = status {
                let body: Value = response.json().await.unwrap_or_default();
                if body["value"]["ready"] == true {
                    return driver;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "chromedriver is not ready after {PAGE_WAIT:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Headless Chromium with the flags that work on this machine, a fresh profile, a phone-sized
/// window and the fake microphone (a beep) granted without asking.
async fn browser(chromium: &Path, chromedriver: &Chromedriver, profile: &Path) -> WebDriver {
    let mut capabilities = DesiredCapabilities::chrome();
    capabilities.set_binary(&chromium.to_string_lossy()).expect("binary set");
    let (width, height) = VIEWPORT;
    for argument in [
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-quic".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        format!("--user-data-dir={}", profile.display()),
        format!("--window-size={width},{height}"),
        "--force-device-scale-factor=2".to_owned(),
        "--hide-scrollbars".to_owned(),
        "--use-fake-device-for-media-stream".to_owned(),
        "--use-fake-ui-for-media-stream".to_owned(),
        "--autoplay-policy=no-user-gesture-required".to_owned(),
    ] {
        capabilities.add_arg(&argument).expect("argument added");
    }
    WebDriver::new(chromedriver.url.clone(), capabilities).await.expect("a browser session")
}

/// One page of the console in its own window of the browser.
struct Page {
    driver: WebDriver,
    window: WindowHandle,
    name: &'static str,
}

impl Page {
    /// Opens `url` in a new window (the first page takes the window the browser opened with).
    async fn open(driver: &WebDriver, name: &'static str, url: &str, first: bool) -> Page {
        let window = if first { driver.window().await } else { driver.new_window().await }.expect("a window");
        let page = Page { driver: driver.clone(), window, name };
        page.focus().await;
        driver.goto(url).await.expect("the page loads");
        // The window is made as much larger than the viewport as its frame takes.
        let frame = page.run("return [outerWidth - innerWidth, outerHeight - innerHeight]").await;
        let extra = |index: usize| frame[index].as_u64().and_then(|pixels| u32::try_from(pixels).ok()).unwrap_or(0);
        let (width, height) = VIEWPORT;
        driver.set_window_rect(0, 0, width + extra(0), height + extra(1)).await.expect("a phone-sized window");
        page
    }

    async fn focus(&self) {
        self.driver.switch_to_window(self.window.clone()).await.expect("the window is there");
    }

    /// Runs `script` (a function body with `return`) in the page.
    async fn run(&self, script: &str) -> Value {
        self.focus().await;
        self.driver.execute(script, Vec::new()).await.expect("the script runs").json().clone()
    }

    async fn text(&self, id: &str) -> String {
        let value = self.run(&format!("return document.getElementById({id:?})?.textContent ?? null")).await;
        value.as_str().map(|text| text.trim().to_owned()).unwrap_or_default()
    }

    async fn click(&self, id: &str) {
        self.focus().await;
        self.driver.find(By::Id(id)).await.expect("the element is there").click().await.expect("clicked");
    }

    /// Waits until `check` holds for the page's answer to `script`; fails with what it waited
    /// for, the last answer, the page's notice and its log.
    async fn wait_for(&self, what: &str, script: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + PAGE_WAIT;
        loop {
            let value = self.run(script).await;
            if check(&value) {
                return value;
            }
            if tokio::time::Instant::now() >= deadline {
                let notice = self.text("notice").await;
                let log = self.text("log").await;
                panic!("{}: {what} after {PAGE_WAIT:?}; last {value}; notice: {notice:?}; log: {log}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_for_text(&self, id: &str, wanted: &str) {
        let script = format!("return document.getElementById({id:?})?.textContent?.trim() ?? null");
        self.wait_for(&format!("#{id} reads {wanted:?}"), &script, |value| value == wanted).await;
    }

    async fn wait_for_state(&self, wanted: &str) {
        self.wait_for(&format!("the page is {wanted}"), "return document.body.dataset.state", |value| value == wanted)
            .await;
    }

    /// The page fits a phone: the viewport is 390 CSS pixels wide and nothing scrolls sideways.
    async fn assert_fits_a_phone(&self) {
        let size = self.run("return [innerWidth, innerHeight, document.documentElement.scrollWidth]").await;
        assert_eq!((&size[0], &size[1]), (&json!(VIEWPORT.0), &json!(VIEWPORT.1)), "{}: the viewport", self.name);
        assert!(size[2].as_u64() <= size[0].as_u64(), "{}: the page scrolls sideways ({size})", self.name);
    }

    /// Saves a screenshot to `docs/images/{file}` when screenshots are asked for.
    async fn screenshot(&self, file: &str) {
        if std::env::var_os(SCREENSHOTS_ENV).is_none() {
            return;
        }
        self.focus().await;
        self.run("window.scrollTo(0, 0); return null").await;
        let png = self.driver.screenshot_as_png().await.expect("a screenshot");
        let path = testkit::workspace_root().join("docs/images").join(file);
        std::fs::create_dir_all(path.parent().expect("docs/images")).expect("docs/images exists");
        std::fs::write(&path, png).expect("the screenshot is written");
    }
}

/// The stack's listener cap: the two listeners fill a session.
const MAX_LISTENERS: u32 = 2;

/// A local stack whose key is in `key` (so the console can load it too), and its console on a
/// free port, whose origins the stack's HTTP API allows. A session takes [`MAX_LISTENERS`]
/// listeners, and an address that named one session that does not exist (or has ended) is
/// refused every handshake (429) for the rest of that minute.
async fn start(key: &Path) -> (DevStack, Console) {
    let console_listener = ConsoleListener::bind(0).await.expect("a free port for the console");
    let binaries = tokio::task::spawn_blocking(support::binaries).await.expect("the build finished");
    let endpoint = tokio::task::spawn_blocking(testkit::local_endpoint).await.expect("moto is up");
    let target = devstack::binaries::target_directory(&testkit::workspace_root());
    let logs = LogSink::file(&target.join("devstack-tests/console.log")).expect("a log file");
    let mut stage = allow_origins(stacks::stages::dev(), &console_listener.origins());
    stage.limits.max_listeners_per_session = MAX_LISTENERS;
    stage.limits.unknown_session_connects_per_minute_per_ip = 1;
    let config = DevConfig {
        aws_endpoint: Some(endpoint),
        max_concurrency: 8,
        identity: LocalIdentity::load_or_create(key).expect("a local key"),
        ..DevConfig::local(stage, binaries, logs).expect("a local key")
    };
    let stack = DevStack::start(config).await.expect("the local stack starts");
    let identity = LocalIdentity::load_or_create(key).expect("the same key");
    let console_config = ConsoleConfig::for_stack(&stack, testkit::workspace_root().join("console"), identity);
    let console = console_listener.serve(console_config).expect("the console starts");
    (stack, console)
}

/// What `console/pcm.js` makes of known input, run in the page: one second at 48 kHz, 44.1 kHz
/// and 8 kHz resampled to 16 kHz (in blocks of 128, as an AudioWorklet delivers them), 6,401
/// samples cut into 3,200-sample chunks (two, one sample left over), and the base64 of the
/// little-endian samples 0, -1, 32767, -32768 from floats.
const PCM_CHECKS: &str = "return import('./pcm.js').then((pcm) => {
    const resampled = (rate) => {
        const resampler = new pcm.Resampler(rate);
        let count = 0;
        for (let fed = 0; fed < rate; fed += 128) {
            count += resampler.push(new Float32Array(Math.min(128, rate - fed))).length;
        }
        return count;
    };
    const chunker = new pcm.Chunker(3200);
    const chunks = [chunker.push(new Float32Array(3200)).length + chunker.push(new Float32Array(3201)).length, chunker.filled];
    const samples = new pcm.Chunker(4).push(Float32Array.from([0, -1 / 32768, 1, -1]))[0];
    return [resampled(48000), resampled(44100), resampled(8000), chunks, pcm.base64(pcm.littleEndianBytes(samples))];
})";

/// The local name of the template's audio stream: the stack names streams as it names tables,
/// `{prefix}-{logical id}`.
fn audio_stream(stack: &DevStack) -> String {
    let (table_id, table_name) = stack.table_names().iter().next().expect("the stack has tables");
    let prefix = table_name.strip_suffix(&format!("-{table_id}")).expect("tables are named {prefix}-{id}");
    let resources = stack.template()["Resources"].as_object().expect("the template has resources");
    let (stream_id, _) = resources
        .iter()
        .find(|(_, resource)| resource["Type"] == "AWS::Kinesis::Stream")
        .expect("the template has an audio stream");
    format!("{prefix}-{stream_id}")
}

/// Waits, if the minute (the rate limit's window) ends in less than `needed`, for the next one.
async fn minute_with(needed: Duration) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    let left = Duration::from_secs(60) - Duration::from_millis(u64::try_from(now.as_millis() % 60_000).unwrap_or(0));
    if left < needed {
        tokio::time::sleep(left + Duration::from_millis(200)).await;
    }
}

/// Forgets the handshakes counted against every address, as the next minute would.
async fn forget_connection_attempts(stack: &DevStack) {
    let client = stack.dynamodb_client();
    let table = &stack.table_names()[contract::tables::RATE_LIMITS.logical_id];
    let rows = client.scan().table_name(table).send().await.expect("the rate limits are read");
    for row in rows.items() {
        let key = &row[contract::tables::rate_limits::IDENTIFIER];
        if key.as_s().is_ok_and(|key| key.starts_with("connect:")) {
            let deleted = client
                .delete_item()
                .table_name(table)
                .key(contract::tables::rate_limits::IDENTIFIER, key.clone())
                .send()
                .await;
            deleted.expect("a rate limit is forgotten");
        }
    }
}

/// The loudest sample a beep of the fake microphone has, at least (a tone near full scale).
const BEEP: u16 = 1000;

/// The audio the speaker page sent to `session`: every record's PCM samples, once at least
/// `chunks` records are there and one of the records after the first `skipped` holds a beep.
async fn audio_of(stack: &DevStack, session: &str, skipped: usize, chunks: usize) -> Vec<Vec<i16>> {
    let client = testkit::kinesis_client(None);
    let stream = audio_stream(stack);
    let deadline = tokio::time::Instant::now() + PAGE_WAIT;
    loop {
        let records: Vec<Vec<i16>> = testkit::read_all_records(&client, &stream)
            .await
            .into_iter()
            .filter(|(partition, _)| partition == session)
            .map(|(_, data)| {
                let record: Value = serde_json::from_slice(&data).expect("audio records are JSON");
                let pcm = base64::engine::general_purpose::STANDARD
                    .decode(record["audioData"].as_str().expect("audioData"))
                    .expect("base64 PCM");
                pcm.chunks_exact(2).map(|sample| i16::from_le_bytes([sample[0], sample[1]])).collect()
            })
            .collect();
        let loudest = records.iter().skip(skipped).flatten().map(|sample| sample.unsigned_abs()).max().unwrap_or(0);
        if records.len() >= chunks && loudest > BEEP {
            return records;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} audio records after {PAGE_WAIT:?}, the loudest sample after the first {skipped} {loudest}: \
             the fake microphone's beep is over {BEEP}",
            records.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_speaker_and_two_listeners_in_a_browser() {
    let (chromium, chromedriver) = (installed("chromium"), installed("chromedriver"));
    let scratch = std::env::temp_dir().join(format!("devstack-console-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&scratch).expect("a scratch directory");
    let (stack, console) = start(&scratch.join("local-signing-key.der")).await;
    let target = devstack::binaries::target_directory(&testkit::workspace_root());
    let chromedriver =
        Chromedriver::start(&chromedriver, &target.join("devstack-tests/console-chromedriver.log")).await;
    let driver = browser(&chromium, &chromedriver, &scratch.join("profile")).await;

    // The speaker: a local token, a session, the connection, the microphone.
    let speaker = Page::open(&driver, "speaker", &format!("{}/speaker.html", console.url()), true).await;
    speaker.wait_for_text("stage-name", "dev").await;
    let pcm = speaker.run(PCM_CHECKS).await;
    for rate in 0..3 {
        assert!(pcm[rate].as_u64().is_some_and(|samples| (15_999..=16_000).contains(&samples)), "pcm.js: {pcm}");
    }
    assert_eq!((&pcm[3], &pcm[4]), (&json!([2, 1]), &json!("AAD///9/AIA=")), "pcm.js: {pcm}");
    speaker.click("get-token").await;
    speaker
        .wait_for("a local token", "return document.getElementById('token').value", |token| {
            token.as_str().is_some_and(|token| token.split('.').count() == 3)
        })
        .await;
    speaker.click("create-session").await;
    speaker.wait_for_state("live").await;
    let session = speaker.text("session-id").await;
    assert!(session.split('-').count() == 3, "a session id: {session:?}");
    // What the page would say if its handshake were refused now (close 1006, session live): an
    // expired token is named as the cause; a valid one leaves 401, 403 and 429 open.
    let explain = |token: &str| {
        format!(
            "return import('./common.js').then(async (common) => (await common.explainRefusedHandshake(\
             await common.loadConfig(), {session:?}, 'speaker', {token})).text)"
        )
    };
    let expired = speaker.run(&explain("'eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjEwMDAwMDAwMDB9.c2ln'")).await;
    let expired = expired.as_str().unwrap_or_default();
    assert!(expired.contains("The token expired at") && expired.ends_with("(401). Get a new token."), "{expired}");
    let valid = speaker.run(&explain("document.getElementById('token').value")).await;
    let valid = valid.as_str().unwrap_or_default();
    assert!(valid.contains(&format!("Session {session} is live")), "{valid}");
    assert!(
        valid.contains("(401)") && valid.contains("(403)") && valid.contains("(429: try again in a minute)"),
        "{valid}"
    );
    speaker.click("mic-toggle").await;
    speaker
        .wait_for("audio sent", "return Number(document.getElementById('audio-stats').dataset.sent ?? 0)", |sent| {
            sent.as_u64() >= Some(3)
        })
        .await;
    let audio = audio_of(&stack, &session, 0, 3).await;
    assert!(audio.iter().all(|chunk| chunk.len() == 3200), "every chunk is 200 ms at 16 kHz");

    // Without AudioWorklet the page captures with a ScriptProcessor, and audio still flows.
    speaker.click("mic-toggle").await;
    let sent = speaker.run("return Number(document.getElementById('audio-stats').dataset.sent)").await;
    let sent = sent.as_u64().expect("a count of chunks");
    speaker
        .run("Object.defineProperty(BaseAudioContext.prototype, 'audioWorklet', {get: () => undefined}); return null")
        .await;
    speaker.click("mic-toggle").await;
    speaker
        .wait_for(
            "audio sent by a ScriptProcessor",
            "return Number(document.getElementById('audio-stats').dataset.sent)",
            |now| now.as_u64() >= Some(sent + 3),
        )
        .await;
    assert!(speaker.text("audio-format").await.contains("(ScriptProcessor)"), "the fallback captured");
    let sent = usize::try_from(sent).expect("a small count");
    audio_of(&stack, &session, sent, sent + 3).await;

    // Two listeners, by the join link.
    let join_link = speaker.run("return document.getElementById('join-link').href").await;
    let join_link = join_link.as_str().expect("a join link").to_owned();
    assert!(join_link.ends_with(&format!("listener.html?session={session}")), "{join_link}");
    let mut listeners = Vec::new();
    for (name, language) in [("German listener", "de"), ("French listener", "fr")] {
        let listener = Page::open(&driver, name, &join_link, false).await;
        listener.wait_for_text("stage-name", "dev").await;
        listener.run(&format!("document.getElementById('language-select').value = {language:?}; return null")).await;
        listener.click("join").await;
        listener.wait_for_text("status-title", "Listening").await;
        listeners.push(listener);
    }
    speaker.wait_for_text("listener-count", "2").await;
    let distribution = "return Object.fromEntries([...document.querySelectorAll('#language-distribution li')]\
                        .map((item) => [item.dataset.language, Number(item.querySelector('.number').textContent)]))";
    speaker.wait_for("German and French", distribution, |shown| *shown == json!({"de": 1, "fr": 1})).await;
    speaker.screenshot("console-speaker.png").await;

    // A third listener: the session is full.
    let third = Page::open(&driver, "Spanish listener", &join_link, false).await;
    third.wait_for_text("stage-name", "dev").await;
    third.run("document.getElementById('language-select').value = 'es'; return null").await;
    third.click("join").await;
    third.wait_for_state("refused").await;
    third.wait_for_text("status-title", "The session is full").await;
    assert_eq!(
        third.text("status-detail").await,
        format!("Session {session} is full (403): 2 of {MAX_LISTENERS} listeners. Try again when someone leaves.")
    );
    assert_eq!(third.run("return document.getElementById('retry-row').hidden").await, false, "a retry button");

    // The service tells the German listener to refresh its connection: it moves to a new one.
    let connection_id = "return document.getElementById('listening').dataset.connectionId ?? null";
    let old = listeners[0].run(connection_id).await.as_str().expect("the listener's connection id").to_owned();
    let refresh = json!({"type": "connectionRefreshRequired", "timestamp": 0, "sessionId": session,
                         "role": "listener", "connectionId": old, "targetLanguage": "de"});
    let management = stack.ready_json()["management_endpoint"].as_str().expect("management endpoint").to_owned();
    let posted = reqwest::Client::new()
        .post(format!("{management}/@connections/{old}"))
        .body(refresh.to_string())
        .send()
        .await
        .expect("@connections answered");
    assert_eq!(posted.status(), 200);
    listeners[0].wait_for("a new connection", connection_id, |id| id.as_str().is_some_and(|id| id != old)).await;
    listeners[0].wait_for_text("status-title", "Listening").await;
    let public: Value = reqwest::get(format!("{}/sessions/{session}", stack.http_url()))
        .await
        .expect("GET /sessions/{id} answered")
        .json()
        .await
        .expect("a session");
    assert_eq!(public["listenerCount"], 2, "the refreshed listener kept its place");

    // Pause, mute and a volume: both listener pages show each as it arrives.
    speaker.click("pause").await;
    for listener in &listeners {
        listener.wait_for_text("status-title", "Paused by the speaker").await;
        listener.wait_for_text("paused-badge", "Paused").await;
    }
    speaker.click("mute").await;
    speaker.run("const volume = document.getElementById('volume'); volume.value = '50'; volume.dispatchEvent(new Event('change')); return null").await;
    for listener in &listeners {
        listener.wait_for_text("muted-badge", "Muted").await;
        listener.wait_for_text("volume-value", "50 %").await;
    }
    listeners[0].screenshot("console-listener.png").await;
    for page in [&speaker, &listeners[0], &listeners[1]] {
        page.assert_fits_a_phone().await;
    }

    // A session that does not exist: the 404 sentence. The miss uses up this address's
    // handshakes until the minute ends, so both joins happen in one minute.
    minute_with(Duration::from_secs(15)).await;
    third.run("document.getElementById('session-input').value = 'unknown-session-404'; return null").await;
    third.click("join").await;
    third.wait_for_state("refused").await;
    third.wait_for_text("status-title", "Session not found").await;
    assert_eq!(
        third.text("status-detail").await,
        "There is no session \"unknown-session-404\" (404). Check the id with the speaker (ids look like \
         quiet-harbor-417); sessions also expire."
    );

    // The French listener leaves, so the session has room, but this address is refused (429):
    // the page counts down to trying again, and its button tries at once.
    listeners[1].click("leave").await;
    listeners[1].wait_for_state("left").await;
    speaker.wait_for_text("listener-count", "1").await;
    third.run(&format!("document.getElementById('session-input').value = {session:?}; return null")).await;
    third.click("join").await;
    third.wait_for_state("refused").await;
    third.wait_for_text("status-title", "Too many attempts").await;
    assert_eq!(
        third.text("status-detail").await,
        format!(
            "The service refused the connection (the browser saw close code 1006). Session {session} is live and \
             has room, so the service most likely refused this network (429): too many connection attempts this \
             minute, or too many for sessions that do not exist or have ended. It may also have failed for a \
             moment. Trying again in 60 s."
        )
    );
    third
        .wait_for("a count-down", "return document.getElementById('retry').textContent", |text| {
            text.as_str().is_some_and(|text| text.starts_with("Try again (") && text.ends_with(" s)"))
        })
        .await;
    forget_connection_attempts(&stack).await;
    third.click("retry").await;
    third.wait_for_text("status-title", "Paused by the speaker").await;
    assert_eq!(third.text("retry").await, "Try again", "the count-down stopped");
    speaker.wait_for_text("listener-count", "2").await;

    // The end: both listener pages say the session ended.
    speaker.click("end-session").await;
    speaker.wait_for_state("ended").await;
    for listener in [&listeners[0], &third] {
        listener.wait_for_state("ended").await;
        listener.wait_for_text("status-title", "The session has ended").await;
    }

    // A listener who follows the join link after the end: the 403 sentence.
    let late = Page::open(&driver, "late listener", &join_link, false).await;
    late.wait_for_text("stage-name", "dev").await;
    late.click("join").await;
    late.wait_for_state("ended").await;
    late.wait_for_text("status-title", "The session has ended").await;
    assert_eq!(
        late.text("status-detail").await,
        format!("Session {session} has ended (403). Ask the speaker for the id of a new session.")
    );

    driver.quit().await.expect("the browser quits");
    drop(chromedriver);
    console.stop().await;
    stack.stop().await;
    let _ = std::fs::remove_dir_all(scratch);
}
