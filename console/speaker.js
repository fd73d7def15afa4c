// speaker.js: the speaker page.
//
// 1. A token: pasted, or (local stack only) from the console server's POST /local-token.
// 2. POST /sessions with the token as a bearer token (docs/openapi.yaml) creates the session.
// 3. The speaker connects with ?sessionId=…&token=… (browsers cannot set headers on a
//    WebSocket, so the token goes in the query, as PROTOCOL.md says), asks for the session's
//    status, and then follows `listenerCountChanged` for the audience.
// 4. Controls: pauseBroadcast/resumeBroadcast, muteBroadcast/unmuteBroadcast, setVolume. The
//    service does not echo them to the speaker; the page shows what it sent and, on any
//    `error`, asks for `sessionStatus` to show the state the service holds.
// 5. The microphone: getUserMedia, an AudioWorklet (a ScriptProcessor where there is none),
//    resampled here to 16 kHz mono 16-bit PCM and sent as `sendAudio` every 200 ms (pcm.js).
//    Nothing is sent while paused (the service refuses audio then) or muted.
// 6. endSession ends it for everyone (DELETE /sessions/{id} when the connection is down).
// When told `connectionRefreshRequired`, it opens a new connection and sends `refreshConnection`.

import {
  MAX_RECONNECTS, ServiceSocket, brief, clearNotice, closeMeaning, clock, completeRefresh, describeError,
  explainRefusedHandshake, fillLanguages, languageLabel, loadConfig, log, notify, openRefresh, reconnectDelayMs,
  websocketUrl,
} from "./common.js";
import { CHUNK_MS, Chunker, Resampler, SERVICE_RATE, base64, levelDbfs, littleEndianBytes } from "./pcm.js";

const $ = (id) => document.getElementById(id);

const state = {
  config: null,
  token: "",
  tokenIsLocal: false,
  session: null,
  socket: null,
  refreshing: null,
  reconnects: 0,
  ended: false,
  broadcast: { isPaused: false, isMuted: false, volume: 1 },
  audience: { listenerCount: 0, languageDistribution: {} },
  microphone: null,
  meterDb: -Infinity,
  audio: { nextChunkId: 0, sent: 0, held: 0, refused: 0 },
};

/** The phase of the page, for styles and tests: setup, connecting, live, reconnecting, refused, ended. */
function setPhase(phase, status) {
  document.body.dataset.state = phase;
  $("connection-dot").dataset.state = phase;
  if (status) $("connection-status").textContent = status;
}

// --- Token ---------------------------------------------------------------------------------

async function getLocalToken() {
  const response = await fetch("local-token", { method: "POST" });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message ?? `the console answered ${response.status}`);
  return body;
}

async function onGetToken() {
  try {
    const local = await getLocalToken();
    $("token").value = local.token;
    state.tokenIsLocal = true;
    clearNotice();
    log(`local token for "${local.sub}", valid ${Math.round(local.expiresIn / 3600)} h (local stack only)`);
  } catch (error) {
    notify(`No local token: ${error.message}`);
  }
}

// --- Session -------------------------------------------------------------------------------

async function onCreateSession() {
  const token = $("token").value.trim();
  if (!token) {
    notify("Paste a speaker token first (or get a local one).");
    return;
  }
  state.token = token;
  $("create-session").disabled = true;
  try {
    const session = await createSession(token, $("source-language").value, $("quality-tier").value);
    clearNotice();
    showSession(session);
    connect();
  } catch (error) {
    notify(error.message);
  } finally {
    $("create-session").disabled = false;
  }
}

/** POST /sessions; the SessionView, or an Error whose message says what went wrong. */
async function createSession(token, sourceLanguage, qualityTier) {
  const url = `${state.config.httpUrl}/sessions`;
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ sourceLanguage, qualityTier }),
    });
  } catch {
    throw new Error(
      `Could not reach the HTTP API at ${state.config.httpUrl}: it is down, or it does not allow this page's ` +
        `origin (${location.origin}; CORS).`,
    );
  }
  const body = await response.json().catch(() => ({}));
  if (response.status === 201) return body;
  if (response.status === 401) {
    throw new Error(
      `The HTTP API refused the token (401): it is missing, expired, or not issued for stage ${state.config.stage}. ` +
        "Get a new token.",
    );
  }
  const retryAfter = body.retryAfter ?? (Number(response.headers.get("Retry-After")) || undefined);
  throw new Error(`Creating the session failed (${response.status}). ${describeError({ ...body, retryAfter })}`);
}

function showSession(session) {
  Object.assign(state, {
    session,
    ended: false,
    reconnects: 0,
    audience: { listenerCount: 0, languageDistribution: {} },
    audio: { nextChunkId: 0, sent: 0, held: 0, refused: 0 },
  });
  state.broadcast = { ...session.broadcastState };
  const link = new URL("listener.html", location.href);
  link.searchParams.set("session", session.sessionId);
  $("session-id").textContent = session.sessionId;
  $("join-link").href = link.toString();
  $("setup").hidden = true;
  for (const id of ["session", "audience", "controls", "microphone", "finish", "share", "share-hint"]) {
    $(id).hidden = false;
  }
  renderBroadcast();
  renderAudience();
  log(`session ${session.sessionId} created (${languageLabel(session.sourceLanguage)}, ${session.qualityTier})`);
}

// --- Connection ----------------------------------------------------------------------------

function speakerUrl() {
  return websocketUrl(state.config, { sessionId: state.session.sessionId, token: state.token });
}

function connect() {
  setPhase("connecting", "Connecting as speaker…");
  state.socket = new ServiceSocket(speakerUrl(), {
    open: (socket) => {
      state.reconnects = 0;
      setPhase("live", `Connected as speaker · ${clock()}`);
      socket.send({ action: "getSessionStatus" });
    },
    message: onMessage,
    close: onClose,
  });
}

async function onClose(event, socket) {
  if (socket !== state.socket || state.ended) return;
  if (!socket.opened) {
    setPhase("refused", "Refused");
    const why = await explainRefusedHandshake(state.config, state.session.sessionId, "speaker", state.token);
    if (why.code === "SESSION_INACTIVE") endedUi("The session has ended.");
    notify(why.text);
    return;
  }
  if (state.reconnects >= MAX_RECONNECTS) {
    setPhase("refused", "Disconnected");
    notify(`The connection ${closeMeaning(event.code)}. Gave up after ${MAX_RECONNECTS} attempts; reload the page to try again.`);
    return;
  }
  state.reconnects += 1;
  const delay = reconnectDelayMs(state.reconnects);
  setPhase("reconnecting", `Reconnecting in ${delay / 1000} s…`);
  notify(`The connection ${closeMeaning(event.code)}. Reconnecting (attempt ${state.reconnects} of ${MAX_RECONNECTS}).`, "warning");
  if (state.tokenIsLocal) await renewLocalToken();
  setTimeout(() => !state.ended && connect(), delay);
}

async function renewLocalToken() {
  try {
    state.token = (await getLocalToken()).token;
  } catch (error) {
    log(`could not renew the local token: ${error.message}`);
  }
}

/** Opens a new connection and moves to it (PROTOCOL.md, "Connection lifetime"). */
async function refresh() {
  if (state.refreshing || state.ended) return;
  log("refreshing the connection");
  if (state.tokenIsLocal) await renewLocalToken();
  state.refreshing = openRefresh(
    state,
    speakerUrl(),
    { action: "refreshConnection", sessionId: state.session.sessionId, role: "speaker" },
    onMessage,
    onClose,
  );
}

function onMessage(frame, socket) {
  if (frame.type !== "heartbeatAck") log(`← ${brief(frame)}`);
  switch (frame.type) {
    case "sessionStatus":
      state.broadcast = { ...frame.broadcastState };
      state.audience = { listenerCount: frame.listenerCount, languageDistribution: frame.languageDistribution };
      renderBroadcast();
      renderAudience();
      break;
    case "listenerCountChanged":
      state.audience = { listenerCount: frame.listenerCount, languageDistribution: frame.languageDistribution };
      renderAudience();
      break;
    case "heartbeatAck":
      $("connection-status").textContent = `Connected as speaker · heartbeat answered ${clock(frame.timestamp)}`;
      break;
    case "connectionRefreshRequired":
    case "connectionWarning":
      refresh();
      break;
    case "connectionRefreshComplete":
      completeRefresh(state, socket);
      break;
    case "broadcastPaused":
    case "broadcastResumed":
    case "broadcastMuted":
    case "broadcastUnmuted":
    case "volumeChanged":
    case "speakerStateChanged":
      applyBroadcast(frame);
      break;
    case "sessionEnded":
      endedUi(frame.reason === "speakerDisconnected" ? "Session ended: the speaker was gone too long." : "Session ended.");
      break;
    case "error":
      if (frame.code === "SESSION_INACTIVE" && state.microphone) state.audio.refused += 1;
      notify(describeError(frame), "warning");
      socket.send({ action: "getSessionStatus" });
      break;
    default:
      break;
  }
}

function applyBroadcast(frame) {
  const broadcast = state.broadcast;
  if (frame.type === "broadcastPaused") broadcast.isPaused = true;
  if (frame.type === "broadcastResumed") broadcast.isPaused = false;
  if (frame.type === "broadcastMuted") broadcast.isMuted = true;
  if (frame.type === "broadcastUnmuted") broadcast.isMuted = false;
  if (frame.type === "volumeChanged") broadcast.volume = frame.volumeLevel;
  if (frame.type === "speakerStateChanged") Object.assign(broadcast, frame.state);
  renderBroadcast();
}

/** The session is over: its controls go, and the setup card offers the next session. */
function endedUi(text) {
  state.ended = true;
  stopMicrophone();
  state.socket?.close(1000, "ended");
  setPhase("ended", text);
  for (const id of ["audience", "controls", "microphone", "finish", "share", "share-hint"]) $(id).hidden = true;
  $("setup").hidden = false;
  $("create-session").textContent = "Create another session";
}

// --- Controls ------------------------------------------------------------------------------

/** Sends a control; answers whether it went out. */
function sendControl(frame) {
  if (!state.socket?.send(frame)) {
    notify("Not connected: the control was not sent.", "warning");
    return false;
  }
  log(`→ ${brief(frame)}`);
  return true;
}

function onPause() {
  const resume = state.broadcast.isPaused;
  if (sendControl({ action: resume ? "resumeBroadcast" : "pauseBroadcast" })) {
    state.broadcast.isPaused = !resume;
    renderBroadcast();
  }
}

function onMute() {
  const unmute = state.broadcast.isMuted;
  if (sendControl({ action: unmute ? "unmuteBroadcast" : "muteBroadcast" })) {
    state.broadcast.isMuted = !unmute;
    renderBroadcast();
  }
}

function onVolume() {
  const volumeLevel = Number($("volume").value) / 100;
  if (sendControl({ action: "setVolume", volumeLevel })) state.broadcast.volume = volumeLevel;
  renderBroadcast();
}

async function onEndSession() {
  // No reason: the service then tells everyone `endedBySpeaker`.
  if (sendControl({ action: "endSession" })) return;
  // Not connected: end it over the HTTP API instead.
  try {
    const response = await fetch(`${state.config.httpUrl}/sessions/${state.session.sessionId}`, {
      method: "DELETE",
      headers: { Authorization: `Bearer ${state.token}` },
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(describeError(body));
    endedUi("Session ended.");
  } catch (error) {
    notify(`Ending the session failed: ${error.message}`);
  }
}

// --- Rendering -----------------------------------------------------------------------------

function renderBroadcast() {
  const { isPaused, isMuted, volume } = state.broadcast;
  $("pause").textContent = isPaused ? "Resume" : "Pause";
  $("pause").setAttribute("aria-pressed", String(isPaused));
  $("mute").textContent = isMuted ? "Unmute" : "Mute";
  $("mute").setAttribute("aria-pressed", String(isMuted));
  const percent = Math.round(volume * 100);
  $("volume").value = String(percent);
  $("volume-value").textContent = `${percent} %`;
  const badge = $("broadcast-state");
  badge.textContent = isPaused ? "Paused" : isMuted ? "Muted" : "Live";
  badge.dataset.state = isPaused ? "paused" : isMuted ? "muted" : "live";
}

function renderAudience() {
  const { listenerCount, languageDistribution } = state.audience;
  $("listener-count").textContent = String(listenerCount);
  const entries = Object.entries(languageDistribution)
    .filter(([, count]) => count > 0)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b));
  const most = Math.max(1, ...entries.map(([, count]) => count));
  $("language-distribution").replaceChildren(
    ...entries.map(([code, count]) => {
      const item = document.createElement("li");
      item.dataset.language = code;
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = languageLabel(code);
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.setProperty("--share", String(count / most));
      const number = document.createElement("span");
      number.className = "number";
      number.textContent = String(count);
      item.append(name, bar, number);
      return item;
    }),
  );
  $("no-listeners").hidden = entries.length > 0;
}

// --- Microphone ----------------------------------------------------------------------------

async function startMicrophone() {
  if (!navigator.mediaDevices?.getUserMedia) {
    notify(
      "This page cannot use a microphone: browsers allow it only on https:// pages and on http://localhost " +
        "or http://127.0.0.1 (secure contexts). Open the console on this machine, or behind HTTPS.",
    );
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: true, autoGainControl: true },
    });
  } catch (error) {
    notify(`No microphone: ${error.name === "NotAllowedError" ? "permission was refused" : error.message}.`);
    return;
  }
  const context = new AudioContext();
  await context.resume();
  const source = context.createMediaStreamSource(stream);
  const resampler = new Resampler(context.sampleRate, SERVICE_RATE);
  const chunker = new Chunker();
  const onBlock = (block) => {
    renderLevel(levelDbfs(block));
    for (const chunk of chunker.push(resampler.push(block))) sendChunk(chunk);
  };
  let capture;
  if (context.audioWorklet) {
    await context.audioWorklet.addModule("capture-worklet.js");
    capture = new AudioWorkletNode(context, "pcm-capture");
    capture.port.onmessage = (event) => onBlock(event.data);
  } else {
    capture = context.createScriptProcessor(2048, 1, 1);
    capture.onaudioprocess = (event) => onBlock(new Float32Array(event.inputBuffer.getChannelData(0)));
  }
  // The capture node must reach the destination to be run; a gain of 0 keeps it silent.
  const silence = context.createGain();
  silence.gain.value = 0;
  source.connect(capture).connect(silence).connect(context.destination);
  state.microphone = { stream, context };
  $("mic-toggle").textContent = "Stop microphone";
  $("microphone").dataset.state = "on";
  $("audio-format").textContent =
    `Captured at ${context.sampleRate} Hz (${context.audioWorklet ? "AudioWorklet" : "ScriptProcessor"}), sent as ` +
    `16 kHz mono 16-bit PCM, ${CHUNK_MS} ms per message; nothing is sent while paused or muted.`;
  log(`microphone on (${context.sampleRate} Hz)`);
}

function stopMicrophone() {
  if (!state.microphone) return;
  state.microphone.stream.getTracks().forEach((track) => track.stop());
  state.microphone.context.close();
  state.microphone = null;
  $("mic-toggle").textContent = "Start microphone";
  $("microphone").dataset.state = "off";
  renderLevel(-Infinity);
  log("microphone off");
}

function sendChunk(samples) {
  const { isPaused, isMuted } = state.broadcast;
  if (state.ended || isPaused || isMuted || !state.socket?.isOpen) {
    state.audio.held += 1;
  } else {
    state.socket.send({
      action: "sendAudio",
      audioData: base64(littleEndianBytes(samples)),
      chunkId: state.audio.nextChunkId++,
      timestamp: Math.max(0, Math.round(Date.now() - CHUNK_MS)),
    });
    state.audio.sent += 1;
  }
  const seconds = ((state.audio.sent * CHUNK_MS) / 1000).toFixed(1);
  const refused = state.audio.refused ? ` · ${state.audio.refused} refused` : "";
  const held = state.audio.held ? ` · ${state.audio.held} not sent (paused, muted or offline)` : "";
  $("audio-stats").textContent = `${state.audio.sent} chunks (${seconds} s) sent${refused}${held}`;
  $("audio-stats").dataset.sent = String(state.audio.sent);
}

/** dB the meter falls per block (about 43 ms): a peak stays readable for a second or two. */
const METER_FALL_DB = 0.75;

/** Shows a block's level, or the last peak falling slowly when that is higher. */
function renderLevel(blockDb) {
  const db = Number.isFinite(blockDb) ? Math.max(blockDb, (state.meterDb ?? -Infinity) - METER_FALL_DB) : blockDb;
  state.meterDb = db;
  const share = Number.isFinite(db) ? Math.max(0, Math.min(1, (db + 60) / 60)) : 0;
  $("level-bar").style.setProperty("--share", String(share));
  $("level-db").textContent = Number.isFinite(db) ? `${Math.round(db)} dBFS` : "—";
}

// --- Start ---------------------------------------------------------------------------------

async function start() {
  try {
    state.config = await loadConfig();
  } catch (error) {
    notify(error.message);
    return;
  }
  $("stage-name").textContent = state.config.stage;
  fillLanguages($("source-language"), "en");
  $("get-token").hidden = !state.config.localTokens;
  $("token-hint").hidden = !state.config.localTokens;
  $("get-token").addEventListener("click", onGetToken);
  $("token").addEventListener("input", () => (state.tokenIsLocal = false));
  $("create-session").addEventListener("click", onCreateSession);
  $("copy-link").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText($("join-link").href);
      $("copy-link").textContent = "Copied";
    } catch {
      notify(`Copy this link: ${$("join-link").href}`, "info");
    }
  });
  $("pause").addEventListener("click", onPause);
  $("mute").addEventListener("click", onMute);
  $("volume").addEventListener("input", () => ($("volume-value").textContent = `${$("volume").value} %`));
  $("volume").addEventListener("change", onVolume);
  $("mic-toggle").addEventListener("click", () => (state.microphone ? stopMicrophone() : startMicrophone()));
  $("end-session").addEventListener("click", onEndSession);
  setPhase("setup", "Not connected");
}

start();
