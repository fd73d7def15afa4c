// common.js: what the speaker and listener pages share.
//
// - loadConfig(): where the stage's APIs are (config.json, served by `cargo xtask dev`);
// - ServiceSocket: one WebSocket connection to the service, with a heartbeat every 30 s
//   (PROTOCOL.md, "Connection lifetime") and a record of whether it ever opened;
// - describeError(), explainRefusedHandshake(), closeMeaning(): a sentence for every refusal.
//   Browsers never see the HTTP status of a refused WebSocket handshake (the connection just
//   closes with code 1006), so a refusal is explained by asking the HTTP API about the session
//   (GET /sessions/{id}, which anyone may read; docs/openapi.yaml);
// - languages, time formatting, the page's notice and log.
//
// Everything the pages send and read is what docs/asyncapi.yaml and docs/openapi.yaml describe.

/** How often a connection sends `heartbeat` (PROTOCOL.md: every 30 s). */
export const HEARTBEAT_MS = 30_000;

/** How many times a page reconnects a lost connection before it gives up. */
export const MAX_RECONNECTS = 5;

/** The wait before reconnect attempt `attempt` (1, 2, …): 1 s, doubling each time. */
export function reconnectDelayMs(attempt) {
  return 1000 * 2 ** (attempt - 1);
}

/** A session id: two lowercase words and a number 100–999 (docs/asyncapi.yaml, SessionId). */
export const SESSION_ID_PATTERN = /^[a-z]+-[a-z]+-[1-9][0-9]{2}$/;

/** A language: an ISO 639-1 code. */
export const LANGUAGE_PATTERN = /^[a-z]{2}$/;

/** Languages offered in the pages' lists (any ISO 639-1 code works in the protocol). */
export const LANGUAGES = [
  "en", "de", "fr", "es", "it", "pt", "nl", "pl", "sv", "da", "nb", "fi", "cs", "el", "hu", "ro",
  "tr", "ru", "uk", "ar", "he", "hi", "bn", "ja", "ko", "zh", "vi", "th", "id", "ms", "sw",
];

const languageNames = new Intl.DisplayNames(["en"], { type: "language" });

/** "German (de)". */
export function languageLabel(code) {
  let name = code;
  try {
    name = languageNames.of(code) ?? code;
  } catch {
    // Not a code Intl knows: show the code alone.
  }
  return name === code ? code : `${name} (${code})`;
}

/** Fills a <select> with the languages, `selected` chosen. */
export function fillLanguages(select, selected) {
  select.replaceChildren(
    ...LANGUAGES.map((code) => {
      const option = document.createElement("option");
      option.value = code;
      option.textContent = languageLabel(code);
      option.selected = code === selected;
      return option;
    }),
  );
}

/** The console's config.json: {stage, websocketUrl, httpUrl, maxListenersPerSession, localTokens}. */
export async function loadConfig() {
  const response = await fetch("config.json", { cache: "no-store" });
  if (!response.ok) {
    throw new Error(`config.json answered ${response.status}: is \`cargo xtask dev\` still running?`);
  }
  return response.json();
}

/** The WebSocket API's URL with a handshake query (null and undefined values left out). */
export function websocketUrl(config, query) {
  const url = new URL(config.websocketUrl);
  for (const [name, value] of Object.entries(query)) {
    if (value !== null && value !== undefined) url.searchParams.set(name, value);
  }
  return url.toString();
}

/** "14:03:07". */
export function clock(millis = Date.now()) {
  return new Date(millis).toLocaleTimeString([], { hour12: false });
}

/**
 * One connection to the WebSocket API. `handlers.message(frame, socket)` gets every JSON frame,
 * `handlers.open(socket)` the open, `handlers.close(event, socket)` the close (then
 * `socket.opened` says whether the handshake was ever accepted). Sends `heartbeat` every 30 s
 * while open.
 */
export class ServiceSocket {
  constructor(url, handlers) {
    this.opened = false;
    this.closed = false;
    this.handlers = handlers;
    this.socket = new WebSocket(url);
    this.socket.addEventListener("open", () => {
      this.opened = true;
      this.heartbeat = setInterval(() => this.send({ action: "heartbeat", timestamp: Date.now() }), HEARTBEAT_MS);
      handlers.open?.(this);
    });
    this.socket.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        log(`not JSON from the service: ${String(event.data).slice(0, 120)}`);
        return;
      }
      handlers.message?.(frame, this);
    });
    this.socket.addEventListener("close", (event) => {
      this.closed = true;
      clearInterval(this.heartbeat);
      handlers.close?.(event, this);
    });
  }

  get isOpen() {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** Sends a client frame; answers whether it went out. */
  send(frame) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  close(code = 1000, reason = "") {
    clearInterval(this.heartbeat);
    if (this.socket.readyState <= WebSocket.OPEN) this.socket.close(code, reason);
  }
}

/** What each error code of the protocol means to the person at the page. */
const ERROR_SENTENCES = {
  MISSING_PARAMETER: "Something the service needs is missing.",
  INVALID_PARAMETER: "Something sent to the service is not valid.",
  INVALID_MESSAGE: "The service could not read a message from this page.",
  UNKNOWN_ACTION: "The service does not know an action this page sent.",
  UNAUTHORIZED: "The speaker token was refused: it is missing, expired, or not issued for this stage. Get a new token.",
  FORBIDDEN: "This is not allowed: the session belongs to another speaker, or the action is for the other role.",
  SESSION_NOT_FOUND: "There is no session with this id. Check it with the speaker (ids look like quiet-harbor-417); sessions also expire.",
  SESSION_INACTIVE: "This session has ended (or is paused, for audio). Ask the speaker for the id of a new session.",
  SESSION_FULL: "This session is full: it has as many listeners as it admits. Try again when someone leaves.",
  RATE_LIMIT_EXCEEDED: "Too many attempts from this network in a short time.",
  MESSAGE_TOO_LARGE: "A message from this page was too large for the service.",
  INTERNAL_ERROR: "The service failed. Try again in a moment.",
  SERVICE_UNAVAILABLE: "The service is busy or one of its dependencies is slow.",
};

/**
 * Lets `socket`, when it is the refresh connection `openRefresh` opened, take the current one's
 * place (on `connectionRefreshComplete`): the old connection is closed. Whether it took over.
 */
export function completeRefresh(state, socket) {
  if (socket !== state.refreshing) return false;
  const old = state.socket;
  state.socket = socket;
  state.refreshing = null;
  old?.close(1000, "refreshed");
  log("connection refreshed");
  return true;
}

/**
 * Opens the connection that takes the current one's place (PROTOCOL.md, "Connection
 * lifetime"): it sends `refreshFrame` once open and then serves like any other. While it is
 * `state.refreshing` (it has not taken over yet), its close is only logged; after, `onClose`
 * judges it as the page's connection.
 */
export function openRefresh(state, url, refreshFrame, onMessage, onClose) {
  return new ServiceSocket(url, {
    open: (socket) => socket.send(refreshFrame),
    message: onMessage,
    close: (event, socket) => {
      if (socket === state.refreshing) {
        state.refreshing = null;
        log(`the refresh connection ${closeMeaning(event.code)}`);
      } else {
        onClose(event, socket);
      }
    },
  });
}

/** A sentence for an `error` frame or an HTTP refusal body ({code, message, retryAfter?}). */
export function describeError(error) {
  const sentence = ERROR_SENTENCES[error.code] ?? "The service refused the request.";
  const retry = error.retryAfter != null ? ` Try again in ${error.retryAfter} s.` : "";
  const detail = error.message ? ` (${error.code}: ${error.message})` : ` (${error.code})`;
  return `${sentence}${retry}${detail}`;
}

/** What a WebSocket close code means here (RFC 6455 and API Gateway's use of them). */
export function closeMeaning(code) {
  switch (code) {
    case 1000:
      return "closed normally (1000)";
    case 1001:
      return "closed by the gateway (1001): 10 minutes without traffic, or the 2-hour connection limit";
    case 1006:
      return (
        "closed without a close frame (1006): the network dropped, the service went away, or it refused the " +
        "connection (browsers are never shown the HTTP status of a refused handshake)"
      );
    case 1009:
      return "closed because a message was too large (1009: over 32 KB per frame or 128 KB per message)";
    case 1011:
      return "closed because the service failed (1011)";
    default:
      return `closed with code ${code}`;
  }
}

/**
 * Why the service refused a handshake, which the browser saw only as close code 1006: asks the
 * HTTP API about the session. Answers {code, text, retryAfter?}; `code` is the protocol's error
 * code the refusal most likely had, or null when it cannot be told. A speaker's refusal of a
 * live session is its token's when the token (`token`) has expired; otherwise the sentence
 * names every cause left (401, 403, 429), since none can be told apart from here.
 */
export async function explainRefusedHandshake(config, sessionId, role, token) {
  const preface = "The service refused the connection (the browser saw close code 1006). ";
  let response;
  try {
    response = await fetch(`${config.httpUrl}/sessions/${encodeURIComponent(sessionId)}`, { cache: "no-store" });
  } catch {
    return {
      code: null,
      text:
        preface +
        `The HTTP API at ${config.httpUrl} could not be reached to ask why: the service may be down, or it may ` +
        `not allow this page's origin (${location.origin}; CORS).`,
    };
  }
  if (response.status === 404) {
    return {
      code: "SESSION_NOT_FOUND",
      text: `There is no session "${sessionId}" (404). Check the id with the speaker (ids look like quiet-harbor-417); sessions also expire.`,
    };
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    const retryAfter = body.retryAfter ?? (Number(response.headers.get("Retry-After")) || undefined);
    return { code: body.code ?? null, retryAfter, text: preface + describeError({ code: body.code, message: body.message, retryAfter }) };
  }
  const session = await response.json();
  if (session.status === "ended") {
    return { code: "SESSION_INACTIVE", text: `Session ${sessionId} has ended (403). Ask the speaker for the id of a new session.` };
  }
  if (role === "speaker") {
    const expiresAt = tokenExpiry(token);
    if (expiresAt !== null && expiresAt <= Date.now()) {
      return {
        code: "UNAUTHORIZED",
        text: preface + `The token expired at ${clock(expiresAt)} (401). Get a new token.`,
      };
    }
    return {
      code: null,
      text:
        preface +
        `Session ${sessionId} is live, so the service refused this speaker: a token not issued for stage ` +
        `${config.stage} (401), a session of another speaker (403), or too many connection attempts from ` +
        `this network this minute (429: try again in a minute).`,
    };
  }
  if (session.listenerCount >= config.maxListenersPerSession) {
    return {
      code: "SESSION_FULL",
      text: `Session ${sessionId} is full (403): ${session.listenerCount} of ${config.maxListenersPerSession} listeners. Try again when someone leaves.`,
    };
  }
  return {
    code: "RATE_LIMIT_EXCEEDED",
    retryAfter: 60,
    text:
      preface +
      `Session ${sessionId} is live and has room, so the service most likely refused this network (429): too many ` +
      `connection attempts this minute, or too many for sessions that do not exist or have ended. It may also ` +
      `have failed for a moment. Trying again in 60 s.`,
  };
}

/**
 * When `token` (a JWT) expires, in milliseconds since the epoch, read from its payload's `exp`;
 * null when it is not a JWT with an `exp`. The signature is not checked: this only chooses
 * which sentence explains a refusal the service already made.
 */
export function tokenExpiry(token) {
  try {
    const payload = (token ?? "").split(".")[1];
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(payload.length / 4) * 4, "=");
    const exp = JSON.parse(atob(base64)).exp;
    return Number.isFinite(exp) ? exp * 1000 : null;
  } catch {
    return null;
  }
}

/** Shows a sentence in the page's notice area; `kind` is "error", "warning" or "info". */
export function notify(text, kind = "error") {
  const notice = document.getElementById("notice");
  notice.textContent = text;
  notice.dataset.kind = kind;
  notice.hidden = !text;
  if (text) log(text);
}

/** Clears the notice area. */
export function clearNotice() {
  notify("", "info");
}

/** Appends a line to the page's log (the newest first, the last 60 kept). */
export function log(text) {
  const list = document.getElementById("log");
  if (!list) return;
  const item = document.createElement("li");
  item.textContent = `${clock()}  ${text}`;
  list.prepend(item);
  while (list.children.length > 60) list.lastElementChild.remove();
}

/** A frame for the log: long fields (audio, tokens) shortened. */
export function brief(frame) {
  return JSON.stringify(frame, (name, value) =>
    typeof value === "string" && value.length > 48 ? `${value.slice(0, 24)}…(${value.length})` : value,
  );
}
