// listener.js: the listener page.
//
// Joins with ?sessionId=…&targetLanguage=… and no token, then sends `joinSession`; shows the
// broadcast's state (paused, muted, volume) as the fan-out messages arrive, starting from the
// session's public view (GET /sessions/{id}, since `sessionJoined` does not carry it). Sends
// `heartbeat` every 30 s (common.js). When told `connectionRefreshRequired` (or
// `connectionWarning`), it opens a new connection naming the old one in `previousConnectionId`
// and sends `refreshConnection` on it, then closes the old one. A connection lost after it
// opened (close 1006, or 1001 from the gateway's limits) is reopened the same way, up to five
// times. A refused join gets a sentence for its code; since a browser sees only close 1006 for
// a refused handshake, the page asks the HTTP API about the session to tell which refusal it
// was (common.js, explainRefusedHandshake).

import {
  LANGUAGE_PATTERN, MAX_RECONNECTS, SESSION_ID_PATTERN, ServiceSocket, brief, clearNotice, closeMeaning, clock,
  completeRefresh, describeError, explainRefusedHandshake, fillLanguages, languageLabel, loadConfig, log, notify,
  openRefresh, reconnectDelayMs, websocketUrl,
} from "./common.js";

const $ = (id) => document.getElementById(id);

const state = {
  config: null,
  sessionId: "",
  language: "",
  socket: null,
  refreshing: null,
  connectionId: null,
  reconnects: 0,
  ended: false,
  left: false,
  retryTimer: null,
  broadcast: { isPaused: false, isMuted: false, volume: 1 },
  /** Counts broadcast messages, so an older HTTP answer never overwrites a newer message. */
  broadcastVersion: 0,
};

/** Titles of refusals, by the protocol's error code. */
const REFUSAL_TITLES = {
  SESSION_NOT_FOUND: "Session not found",
  SESSION_INACTIVE: "The session has ended",
  SESSION_FULL: "The session is full",
  RATE_LIMIT_EXCEEDED: "Too many attempts",
  INVALID_PARAMETER: "Check the session id and language",
  MISSING_PARAMETER: "Check the session id and language",
};

/** The page's phase, for styles and tests: form, connecting, listening, reconnecting, refused, ended, left. */
function show(phase, title, detail = "") {
  document.body.dataset.state = phase;
  $("connection-dot").dataset.state = phase;
  $("status-title").textContent = title;
  $("status-detail").textContent = detail;
  const connected = phase === "listening";
  $("connection-status").textContent = connected ? "Connected" : { connecting: "Connecting…", reconnecting: "Reconnecting…" }[phase] ?? "Not connected";
  $("broadcast").hidden = !connected;
  $("change-row").hidden = !connected;
  $("leave").hidden = !["listening", "connecting", "reconnecting"].includes(phase);
  $("join-form").hidden = !["form", "refused", "ended", "left"].includes(phase);
  $("listening").hidden = phase === "form";
}

// --- Joining -------------------------------------------------------------------------------

function onSubmit(event) {
  event.preventDefault();
  const sessionId = $("session-input").value.trim().toLowerCase();
  const language = $("language-select").value;
  if (!SESSION_ID_PATTERN.test(sessionId)) {
    notify(`"${sessionId}" is not a session id: ids are two words and a number, like quiet-harbor-417.`);
    return;
  }
  if (!LANGUAGE_PATTERN.test(language)) {
    notify("Pick a language.");
    return;
  }
  join(sessionId, language);
}

function join(sessionId, language) {
  clearTimeout(state.retryTimer);
  clearNotice();
  Object.assign(state, { sessionId, language, ended: false, left: false, reconnects: 0, connectionId: null });
  const page = new URL(location.href);
  page.searchParams.set("session", sessionId);
  page.searchParams.set("lang", language);
  history.replaceState(null, "", page);
  $("session-label").textContent = sessionId;
  $("language-label").textContent = languageLabel(language);
  $("source-label").textContent = "—";
  $("retry-row").hidden = true;
  $("retry").textContent = "Try again";
  show("connecting", "Connecting…");
  open();
}

/** Opens a connection; a reconnect names the connection whose place it takes. */
function open() {
  state.socket = new ServiceSocket(
    websocketUrl(state.config, {
      sessionId: state.sessionId,
      targetLanguage: state.language,
      previousConnectionId: state.reconnects > 0 ? state.connectionId : null,
    }),
    {
      open: (socket) => socket.send({ action: "joinSession", sessionId: state.sessionId, targetLanguage: state.language }),
      message: onMessage,
      close: onClose,
    },
  );
}

async function onClose(event, socket) {
  if (socket !== state.socket || state.ended || state.left) return;
  $("heartbeat-status").textContent = "";
  if (socket.opened) {
    reconnect(`The connection ${closeMeaning(event.code)}.`);
    return;
  }
  const why = await explainRefusedHandshake(state.config, state.sessionId, "listener");
  if (why.code === "SESSION_INACTIVE") {
    ended(why.text);
  } else if (state.reconnects > 0 && state.reconnects < MAX_RECONNECTS && (why.code === null || why.code === "RATE_LIMIT_EXCEEDED")) {
    reconnect(why.text);
  } else {
    refused(why);
  }
}

function reconnect(reason) {
  if (state.reconnects >= MAX_RECONNECTS) {
    refused({ code: null, text: `${reason} Gave up after ${MAX_RECONNECTS} attempts.` });
    return;
  }
  state.reconnects += 1;
  const delay = reconnectDelayMs(state.reconnects);
  show("reconnecting", "Connection lost", `${reason} Reconnecting in ${delay / 1000} s (attempt ${state.reconnects} of ${MAX_RECONNECTS}).`);
  log(`reconnecting in ${delay / 1000} s`);
  state.retryTimer = setTimeout(open, delay);
}

function refused(why) {
  clearNotice();
  log(why.text);
  show("refused", REFUSAL_TITLES[why.code] ?? "Could not join", why.text);
  // Trying the same id again helps only when the refusal may pass: a full session, a rate
  // limit, a service that could not be asked.
  $("retry-row").hidden = !["SESSION_FULL", "RATE_LIMIT_EXCEEDED", null].includes(why.code ?? null);
  if (why.retryAfter) countDown(why.retryAfter);
}

/** Counts down on the retry button, then joins again. */
function countDown(seconds) {
  const button = $("retry");
  const tick = (left) => {
    if (left <= 0) {
      button.textContent = "Try again";
      join(state.sessionId, state.language);
      return;
    }
    button.textContent = `Try again (${left} s)`;
    state.retryTimer = setTimeout(() => tick(left - 1), 1000);
  };
  tick(seconds);
}

function ended(text) {
  state.ended = true;
  state.socket?.close(1000, "ended");
  show("ended", "The session has ended", text);
  clearNotice();
}

/** Opens a new connection that takes this one's place (PROTOCOL.md, "Connection lifetime"). */
function refresh(frame) {
  if (state.refreshing || state.ended || state.left) return;
  log("refreshing the connection");
  state.refreshing = openRefresh(
    state,
    websocketUrl(state.config, {
      sessionId: state.sessionId,
      targetLanguage: frame.targetLanguage ?? state.language,
      previousConnectionId: frame.connectionId ?? state.connectionId,
    }),
    { action: "refreshConnection", sessionId: state.sessionId, role: "listener" },
    onMessage,
    onClose,
  );
}

// --- Messages ------------------------------------------------------------------------------

function onMessage(frame, socket) {
  if (frame.type !== "heartbeatAck") log(`← ${brief(frame)}`);
  switch (frame.type) {
    case "sessionJoined":
      state.connectionId = frame.connectionId;
      $("listening").dataset.connectionId = frame.connectionId;
      state.reconnects = 0;
      clearNotice();
      $("source-label").textContent = languageLabel(frame.sourceLanguage);
      $("language-label").textContent = languageLabel(frame.targetLanguage);
      $("change-language").value = frame.targetLanguage;
      $("retry-row").hidden = true;
      renderListening(frame.listenerCount);
      readBroadcastState();
      break;
    case "broadcastPaused":
    case "broadcastResumed":
    case "broadcastMuted":
    case "broadcastUnmuted":
    case "volumeChanged":
    case "speakerStateChanged":
      applyBroadcast(frame);
      break;
    case "languageChanged":
      state.language = frame.targetLanguage;
      $("language-label").textContent = languageLabel(frame.targetLanguage);
      $("change-language").value = frame.targetLanguage;
      renderListening();
      break;
    case "heartbeatAck":
      $("heartbeat-status").textContent = `Connection checked ${clock(frame.timestamp)} (a heartbeat every 30 s).`;
      break;
    case "connectionRefreshRequired":
    case "connectionWarning":
      refresh(frame);
      break;
    case "connectionRefreshComplete":
      if (completeRefresh(state, socket)) {
        // Learns the new connection's id (joining again is answered alike).
        socket.send({ action: "joinSession", sessionId: state.sessionId, targetLanguage: state.language });
      }
      break;
    case "sessionEnded":
      ended(endedSentence(frame.reason));
      break;
    case "error":
      onError(frame, socket);
      break;
    default:
      break;
  }
}

function onError(frame, socket) {
  if (frame.code === "SESSION_INACTIVE") {
    ended(describeError(frame));
  } else if (frame.code === "SESSION_NOT_FOUND") {
    refused({ code: frame.code, text: describeError(frame) });
  } else if (frame.code === "RATE_LIMIT_EXCEEDED" && frame.retryAfter != null) {
    notify(describeError(frame), "warning");
    state.retryTimer = setTimeout(
      () => socket.send({ action: "joinSession", sessionId: state.sessionId, targetLanguage: state.language }),
      frame.retryAfter * 1000,
    );
  } else {
    notify(describeError(frame), "warning");
  }
}

function endedSentence(reason) {
  if (reason === "endedBySpeaker") return "The speaker ended it. Thanks for listening.";
  if (reason === "speakerDisconnected") return "The speaker left and did not come back in time.";
  return `Reason: ${reason}.`;
}

/** The broadcast's state when joining: the session's public view (docs/openapi.yaml). */
async function readBroadcastState() {
  const version = state.broadcastVersion;
  try {
    const response = await fetch(`${state.config.httpUrl}/sessions/${encodeURIComponent(state.sessionId)}`, { cache: "no-store" });
    if (!response.ok) return;
    const session = await response.json();
    if (version === state.broadcastVersion && !state.ended) {
      state.broadcast = { ...session.broadcastState };
      renderListening();
    }
  } catch {
    log("could not read the session's broadcast state (HTTP API unreachable, or CORS)");
  }
}

function applyBroadcast(frame) {
  state.broadcastVersion += 1;
  const broadcast = state.broadcast;
  if (frame.type === "broadcastPaused") broadcast.isPaused = true;
  if (frame.type === "broadcastResumed") broadcast.isPaused = false;
  if (frame.type === "broadcastMuted") broadcast.isMuted = true;
  if (frame.type === "broadcastUnmuted") broadcast.isMuted = false;
  if (frame.type === "volumeChanged") broadcast.volume = frame.volumeLevel;
  if (frame.type === "speakerStateChanged") Object.assign(broadcast, frame.state);
  renderListening();
}

function renderListening(listenerCount) {
  if (state.ended || state.left) return;
  const { isPaused, isMuted, volume } = state.broadcast;
  const language = languageLabel(state.language);
  document.body.dataset.broadcast = isPaused ? "paused" : isMuted ? "muted" : "live";
  const count = listenerCount != null ? ` · ${listenerCount} listening when you joined` : "";
  if (listenerCount != null) $("status-detail").dataset.count = String(listenerCount);
  if (isPaused) {
    show("listening", "Paused by the speaker", "You stay connected; the broadcast goes on when the speaker resumes.");
  } else if (isMuted) {
    show("listening", "Muted by the speaker", "The speaker's microphone is off for now.");
  } else {
    show("listening", "Listening", `In ${language}${count}`);
  }
  $("paused-badge").textContent = isPaused ? "Paused" : "Live";
  $("paused-badge").dataset.state = isPaused ? "paused" : "live";
  $("muted-badge").textContent = isMuted ? "Muted" : "Sound on";
  $("muted-badge").dataset.state = isMuted ? "muted" : "live";
  const percent = Math.round(volume * 100);
  $("volume-value").textContent = `${percent} %`;
  $("volume-bar").style.setProperty("--share", String(volume));
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
  const query = new URLSearchParams(location.search);
  const language = LANGUAGE_PATTERN.test(query.get("lang") ?? "") ? query.get("lang") : (navigator.language ?? "en").slice(0, 2);
  fillLanguages($("language-select"), language);
  fillLanguages($("change-language"), language);
  $("session-input").value = query.get("session") ?? "";
  $("join-form").addEventListener("submit", onSubmit);
  $("retry").addEventListener("click", () => join(state.sessionId, state.language));
  $("change").addEventListener("click", () => {
    const targetLanguage = $("change-language").value;
    state.socket?.send({ action: "changeLanguage", targetLanguage });
  });
  $("leave").addEventListener("click", () => {
    state.left = true;
    clearTimeout(state.retryTimer);
    state.socket?.close(1000, "left");
    show("left", "You left the session", "Join again whenever you like.");
  });
  show("form", "");
}

start();
