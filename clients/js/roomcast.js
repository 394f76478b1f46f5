// roomcast.js: a client of a roomcast node (docs/protocol.md section 3,
// "What a client does"), one ES module with no dependencies and no build
// step, for browsers and any runtime with a WHATWG WebSocket. It follows
// rooms over one connection, hands every event to the application once, in
// order, across reconnections (it resumes each room with since and epoch),
// says when events were lost, refreshes its token, and stops only when the
// node refused what it sent and would again. Every node serves this file at
// /roomcast.js.

const defaults = {
  backoffMin: 250,    // ms: the wait before the first attempt after a failure
  backoffMax: 10000,  // ms: the longest, before the random factor
  retryMin: 1000,     // ms: a subscribe refused as UNAVAILABLE is sent again after this, doubling
  retryMax: 10000,    // ms
  pingAfter: 15000,   // ms of silence from the node before an application ping
  deadAfter: 10000,   // ms more without a message before the connection is dead
};
const atOnce = 100;        // ms: the most jitter before reconnecting after 1001 or 4012
const expiryGrace = 5000;  // ms past exp the node waits for a refresh before closing with 4001
const refreshBefore = 10000; // ms: a refresh comes at the latest this long before exp
const maxTimer = 2 ** 31 - 1; // ms: setTimeout's longest delay
const quoted = 64;         // characters of bad input quoted in a notice

// The notices, the same words in every library (clients/conformance).
export const Notice = Object.freeze({
  connected: "connected",
  disconnected: "disconnected",
  draining: "draining",
  requestError: "request_error",
  tokenRefreshed: "token_refreshed",
  tokenRefreshFailed: "token_refresh_failed",
  badInput: "bad_input",
});

// Close codes after which the client stops: the node refused what this
// client sent, and would again.
const stopCodes = new Set([1002, 1003, 1007, 1009, 4029]);

// RequestError is a request the node refused: code is its error code
// (FORBIDDEN, UNAVAILABLE, ...); message reads "CODE: the node's message".
export class RequestError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = "RequestError";
    this.code = code;
  }
}

// Client follows rooms of a node over one WebSocket at a time. urls: one
// URL or several, tried in turn. See README.md for the options and
// callbacks.
export class Client {
  #urls; #o; #WS;
  #rooms = new Map();    // name -> room (see #room)
  #pending = new Map();  // request id -> {kind, room, resumed, resolve, reject, token}
  #leaving = new Map();  // room -> unsubscribes in flight: its events until then are the old subscription's
  #unsubTimers = new Map(); // room -> timer: an unsubscribe refused RATE_LIMITED is sent again then
  #unsubTries = new Map();  // room -> RATE_LIMITED unsubscribes in a row
  #ws = null;
  #mode = "idle";        // idle (not started, or closed), running, stopped
  #authed = false;       // the open connection's token was accepted (or none is needed)
  #keyless = false;      // the node has no keys: auth requests are refused, no refresh
  #failures = 0;         // attempts failed since the last accepted connection
  #next = 0;             // index of the next URL
  #nextID = 0;
  #retryTimer = 0;
  #beatTimer = 0;
  #pingAt = 0;           // ms: when the unanswered ping was sent; 0: none
  #heardAt = 0;
  #token = ""; #tokenAt = 0; #exp = 0; #sentToken = "";
  #refreshTimer = 0; #refreshTries = 0; #refreshing = false;

  constructor(urls, options = {}) {
    this.#urls = typeof urls === "string" ? [urls] : [...urls];
    if (this.#urls.length === 0) throw new TypeError("roomcast: no URL to connect to");
    for (const u of this.#urls) {
      const p = new URL(u);
      if (p.protocol !== "ws:" && p.protocol !== "wss:") throw new TypeError(`roomcast: ${u} is not a ws: or wss: URL`);
    }
    this.#o = { ...options };
    for (const [k, v] of Object.entries(defaults)) this.#o[k] = Number.isFinite(options[k]) && options[k] > 0 ? options[k] : v;
    this.#WS = options.WebSocket ?? globalThis.WebSocket;
    this.#useToken(options.token ?? "");
  }

  // start connects, and keeps connected until close() or a stop.
  start() {
    if (this.#mode === "running") return;
    this.#mode = "running";
    this.#failures = 0;
    this.#connect();
  }

  // close closes the connection for good (onStop is not called: the
  // application asked). start() may be called again.
  close() {
    this.#mode = "idle";
    this.#drop(1000, "client closed");
  }

  // subscribe follows a room: opts.history (every retained event), or
  // opts.since and opts.epoch (a position the application stored),
  // opts.state, opts.conflate. A room already followed takes the new
  // options: with a position, it is subscribed again from there (the old
  // subscription is left first); without, it resumes from the kept one.
  subscribe(name, opts = {}) {
    if (typeof name !== "string" || name === "") throw new TypeError("roomcast: a room is a non-empty string");
    clearTimeout(this.#unsubTimers.get(name)); // subscribing starts the room over on the node
    this.#unsubTimers.delete(name);
    this.#unsubTries.delete(name);
    const given = Number.isSafeInteger(opts.since) && opts.since >= 0; // a position
    const since = given && opts.since > 0 ? opts.since : null;
    const options = { history: opts.history === true || opts.since === 0, state: opts.state === true, conflate: opts.conflate === true };
    const position = { seq: since, epoch: since !== null && typeof opts.epoch === "string" && opts.epoch ? opts.epoch : null };
    let room = this.#rooms.get(name);
    if (room) {
      Object.assign(room, options, given ? position : {});
      // The old subscription's events still on their way would be handed
      // over above the new position, and the replay asked for would then
      // be dropped as duplicates: they are dropped until it is left.
      if (given && this.#live()) this.#unsubscribe(name);
    } else {
      room = {
        name, ...options, ...position,
        sent: false, subID: "", holding: false, held: [], refused: "", tries: 0, limited: 0, timer: 0, duplicates: 0, leave: false,
      };
      this.#rooms.set(name, room);
    }
    if (this.#live()) this.#subscribe(room);
  }

  // unsubscribe stops following a room; its events still on their way
  // are dropped.
  unsubscribe(name) {
    const room = this.#rooms.get(name);
    if (!room) return;
    clearTimeout(room.timer);
    this.#pending.delete(room.subID);
    this.#rooms.delete(name);
    if (this.#live()) this.#unsubscribe(name);
  }

  #unsubscribe(name) {
    this.#leaving.set(name, (this.#leaving.get(name) ?? 0) + 1);
    const id = this.#id("u");
    this.#pending.set(id, { kind: "unsubscribe", room: name });
    this.#send({ type: "request", event: "unsubscribe", id, data: { channel: name } });
  }

  // setToken gives the client a token: sent at once in an auth request on
  // a live connection, used by the next one otherwise. A client stopped
  // for want of a token starts again.
  setToken(token) {
    this.#useToken(token);
    if (this.#mode === "stopped") {
      this.start();
    } else if (this.#live() && this.#token) {
      this.#authenticate("refresh");
    } else if (this.#mode === "running" && this.#ws === null) {
      this.#connect(); // waiting to retry: a new token is worth trying now
    }
  }

  // request sends a request (rooms, cluster) and resolves with its
  // response's data; it rejects with a RequestError, or an Error when not
  // connected or when the connection ends first. It is not retried.
  request(event, data) {
    if (!this.#live()) return Promise.reject(new Error("not connected"));
    return new Promise((resolve, reject) => {
      const id = this.#id("q");
      this.#pending.set(id, { kind: "call", resolve, reject });
      this.#send({ type: "request", event, id, data });
    });
  }

  // position is what the client keeps of a room: the last seq handed over
  // (or where live delivery started), its epoch, and how many events it
  // dropped as duplicates outside a resume (0 unless a node broke the
  // guarantee). null for a room not followed.
  position(name) {
    const r = this.#rooms.get(name);
    return r ? { seq: r.seq, epoch: r.epoch, duplicates: r.duplicates } : null;
  }

  // heardAt is when the node last sent anything (ms since the epoch, 0: never).
  get heardAt() { return this.#heardAt; }

  // connected reports whether a connection is open and its token accepted.
  get connected() { return this.#live(); }

  #live() { return this.#authed && this.#ws !== null && this.#ws.readyState === 1; }

  #id(prefix) { return prefix + (++this.#nextID); }

  #send(msg) {
    if (this.#ws !== null && this.#ws.readyState === 1) this.#ws.send(JSON.stringify(msg));
  }

  #call(name, arg) {
    const f = this.#o[name];
    if (typeof f !== "function") return;
    try {
      f(arg);
    } catch (e) {
      // The application's failure is its own: the client goes on.
      console.error(`roomcast: ${name} threw`, e);
    }
  }

  #notice(notice, fields = {}) {
    this.#call("onNotice", { notice, code: 0, error: "", room: "", text: "", ...fields });
  }

  #useToken(token) {
    this.#token = String(token ?? "").trim();
    this.#tokenAt = Date.now();
    this.#exp = expiryOf(this.#token);
  }

  #connect() {
    clearTimeout(this.#retryTimer);
    const url = this.#urls[this.#next++ % this.#urls.length];
    let ws;
    try {
      ws = new this.#WS(url);
    } catch (e) {
      this.#ws = null;
      this.#closed(1006, `cannot connect to ${url}: ${e.message ?? e}`);
      return;
    }
    ws.binaryType = "arraybuffer";
    this.#ws = ws;
    this.#authed = false;
    this.#sentToken = this.#token;
    ws.onopen = () => this.#opened();
    ws.onmessage = (m) => this.#received(m.data);
    ws.onclose = (e) => {
      if (this.#ws === ws) this.#closed(e.code, e.reason);
    };
  }

  #opened() {
    this.#heardAt = Date.now();
    this.#pingAt = 0;
    clearInterval(this.#beatTimer);
    this.#beatTimer = setInterval(() => this.#beat(), Math.min(1000, this.#o.pingAfter / 4));
    // A browser cannot set headers: the token is the first message.
    if (this.#token) this.#authenticate("auth");
    else this.#accepted({});
  }

  #authenticate(kind) {
    const id = this.#id("a");
    this.#pending.set(id, { kind, token: this.#token });
    this.#sentToken = this.#token;
    this.#send({ type: "request", event: "auth", id, data: { token: this.#token } });
  }

  // accepted makes the open connection live: rooms are subscribed (again).
  #accepted(d) {
    this.#authed = true;
    this.#failures = 0;
    this.#refreshTries = 0;
    this.#notice(Notice.connected, { text: d.user_id ? `authenticated as ${d.user_id}` : "connected", user: d.user_id ?? "", expiresAt: d.expires_at ?? "" });
    if (!this.#exp && d.expires_at) this.#exp = Date.parse(d.expires_at) || 0;
    this.#scheduleRefresh();
    for (const room of this.#rooms.values()) this.#subscribe(room);
  }

  #subscribe(room) {
    clearTimeout(room.timer);
    this.#pending.delete(room.subID); // superseded: a late answer to it is ignored
    if (room.leave) { // the old subscription may stand: left first
      room.leave = false;
      this.#unsubscribe(room.name);
    }
    const data = { channel: room.name };
    if (room.seq !== null) {
      data.since = room.seq;
      if (room.epoch) data.epoch = room.epoch;
    } else if (room.history) {
      data.since = 0;
    }
    if (room.state) data.state = true;
    if (room.conflate) data.conflate = true;
    // A resume: its events at or below the kept seq wait for the
    // response, which says whose they are.
    room.holding = room.seq !== null;
    room.held = [];
    room.subID = this.#id("s");
    this.#pending.set(room.subID, { kind: "subscribe", room: room.name, resumed: room.sent });
    room.sent = true;
    this.#send({ type: "request", event: "subscribe", id: room.subID, data });
  }

  #received(data) {
    this.#heardAt = Date.now();
    this.#pingAt = 0;
    if (typeof data !== "string") {
      this.#bad(`a binary frame of ${data.byteLength ?? data.size ?? "?"} bytes`);
      return;
    }
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      this.#bad(`not JSON: ${data.slice(0, quoted)}`);
      return;
    }
    if (msg === null || typeof msg !== "object" || Array.isArray(msg)) {
      this.#bad(`not a JSON object: ${data.slice(0, quoted)}`);
      return;
    }
    switch (msg.type) {
      case "event": return this.#event(msg);
      case "response": return this.#response(msg);
      case "error": return this.#error(msg);
      case "pong": return;
      case "ping": return this.#send({ type: "pong", id: msg.id });
      default: this.#bad(`a message of unknown type ${JSON.stringify(msg.type ?? null).slice(0, quoted)}`);
    }
  }

  #bad(text) { this.#notice(Notice.badInput, { text }); }

  #event(msg) {
    if (!msg.room) {
      if (msg.event === "server.draining") this.#notice(Notice.draining, { text: "the node is draining" });
      else this.#bad(`an event without a room: ${String(msg.event).slice(0, quoted)}`);
      return;
    }
    if (typeof msg.room !== "string" || !Number.isSafeInteger(msg.seq) || msg.seq < 1) {
      this.#bad(`an event without a valid room and seq: ${JSON.stringify(msg).slice(0, quoted)}`);
      return;
    }
    if (this.#leaving.has(msg.room)) return; // the subscription being left
    const room = this.#rooms.get(msg.room);
    if (!room || room.leave) return; // not followed, or its old subscription's (to be left)
    if (room.held.length > 0) {
      room.held.push(msg); // behind a held one: order is kept
    } else if (room.seq === null || msg.seq > room.seq) {
      this.#hand(room, msg);
    } else if (room.holding) {
      room.held.push(msg);
    } else {
      room.duplicates++;
    }
  }

  #hand(room, msg) {
    room.seq = msg.seq;
    this.#call("onEvent", msg);
  }

  #response(msg) {
    const req = this.#pending.get(msg.id);
    if (!req) return;
    // A subscribe stays pending while it is the room's: a node whose
    // catch-up fails after the response sends an error with its id.
    if (req.kind !== "subscribe") this.#pending.delete(msg.id);
    const d = msg.data && typeof msg.data === "object" ? msg.data : {};
    switch (req.kind) {
      case "call": return req.resolve(d);
      case "unsubscribe": this.#unsubTries.delete(req.room); return this.#left(req.room);
      case "auth": return this.#accepted(d);
      case "refresh": return this.#refreshed(d);
      case "subscribe": return this.#subscribed(req, msg.id, msg.data);
    }
  }

  #left(name) {
    const n = (this.#leaving.get(name) ?? 1) - 1;
    if (n > 0) this.#leaving.set(name, n);
    else this.#leaving.delete(name);
  }

  #subscribed(req, id, d) {
    const room = this.#rooms.get(req.room);
    if (!room || room.subID !== id) return; // left, or subscribed again since
    const bad = unreadable(d);
    if (bad) {
      // As an UNAVAILABLE: without a response the held events cannot be
      // decided (they are dropped) and the room is not known to be
      // subscribed, so it is subscribed again after the same wait.
      this.#pending.delete(id);
      room.subID = "";
      room.held = [];
      room.holding = false;
      const retry = Math.min(this.#o.retryMax, this.#o.retryMin * 2 ** room.tries++);
      this.#notice(Notice.badInput, { room: room.name, text: `skipped a subscribe response of ${room.name} with ${bad}; subscribing again in ${retry} ms`, retry });
      room.timer = setTimeout(() => { if (this.#rooms.get(room.name) === room && this.#live()) this.#subscribe(room); }, retry);
      return;
    }
    const held = room.held;
    room.held = [];
    room.holding = false;
    const state = Array.isArray(d.state) ? d.state : null;
    const epoch = typeof d.epoch === "string" && d.epoch ? d.epoch : null;
    // Held events are the new stream's when the response names another
    // one; without a kept epoch, when it says the position was not
    // recovered (a since from another stream is; a since lost to
    // retention has no held events: the oldest retained are above it).
    // Otherwise those at or below the kept seq repeat what was handed
    // over, and those above it (held behind them, to keep order) are new.
    const changed = room.epoch !== null ? epoch !== null && epoch !== room.epoch : room.seq !== null && d.recovered === false;
    for (const m of held) {
      if (changed ? state === null : m.seq > room.seq) this.#hand(room, m);
    }
    const seq = Number.isSafeInteger(d.seq) ? d.seq : 0;
    if (room.seq === null || changed || state !== null || seq > room.seq) room.seq = seq;
    if (epoch !== null) room.epoch = epoch;
    room.tries = 0;
    room.limited = 0;
    room.refused = "";
    this.#call("onSubscribed", {
      room: room.name, seq, epoch: room.epoch ?? "", replayed: d.replayed ?? 0,
      recovered: d.recovered !== false, resumed: req.resumed, state,
    });
  }

  #error(msg) {
    const d = msg.data && typeof msg.data === "object" ? msg.data : {};
    const code = String(d.code ?? "ERROR");
    const text = `${code}: ${d.message ?? "refused"}`;
    const req = msg.id ? this.#pending.get(msg.id) : undefined;
    if (!req) return this.#unasked(msg, code, text);
    this.#pending.delete(msg.id);
    switch (req.kind) {
      case "call": return req.reject(new RequestError(code, d.message ?? "refused"));
      case "unsubscribe": return this.#unsubscribeRefused(req.room, code, text);
      case "auth": return this.#authRefused(code, text);
      case "refresh": return this.#refreshRefused(code, text);
      case "subscribe": return this.#subscribeRefused(req, msg.id, code, text);
    }
  }

  // unasked handles an error no pending request awaits: a room a
  // refreshed token no longer allows (the node names it in the error's
  // room), or a CANCELLED subscribe already answered.
  #unasked(msg, code, text) {
    if (code === "CANCELLED") return;
    const room = typeof msg.room === "string" ? msg.room : "";
    if (code === "FORBIDDEN" && msg.event === "subscribe") {
      const r = this.#rooms.get(room);
      if (r) r.refused = code;
    }
    this.#notice(Notice.requestError, { error: code, room, text });
  }

  // unsubscribeRefused sends an unsubscribe refused RATE_LIMITED again
  // after the backoff, unless the room was subscribed again meanwhile.
  #unsubscribeRefused(name, code, text) {
    this.#left(name);
    let retry = 0;
    const room = this.#rooms.get(name);
    if (code === "RATE_LIMITED" && room) {
      // It was to leave the old subscription before a subscribe from a
      // new position, which followed it: the old one may stand, and its
      // events cannot be told from the new one's. That subscribe is given
      // up (its answer ignored, the room's events dropped) and both are
      // sent again after the backoff.
      this.#pending.delete(room.subID);
      Object.assign(room, { subID: "", held: [], holding: false, leave: true });
      retry = this.#backoff(++room.limited);
      clearTimeout(room.timer);
      room.timer = setTimeout(() => { if (this.#rooms.get(room.name) === room && this.#live()) this.#subscribe(room); }, retry);
    } else if (code === "RATE_LIMITED") {
      const n = (this.#unsubTries.get(name) ?? 0) + 1;
      this.#unsubTries.set(name, n);
      retry = this.#backoff(n);
      this.#unsubTimers.set(name, setTimeout(() => {
        this.#unsubTimers.delete(name);
        if (!this.#rooms.has(name) && this.#live()) this.#unsubscribe(name);
      }, retry));
    }
    this.#notice(Notice.requestError, { error: code, room: name, text, ...(retry > 0 ? { retry } : {}) });
  }

  #authRefused(code, text) {
    this.#notice(Notice.requestError, { error: code, text });
    if (code === "RATE_LIMITED") {
      this.#retryTimer = setTimeout(() => { if (this.#ws !== null && !this.#authed) this.#authenticate("auth"); }, this.#backoff(++this.#failures));
      return;
    }
    // BAD_REQUEST: a node without keys, where every room is readable
    // without a token (as a header token would be ignored there).
    this.#keyless = code === "BAD_REQUEST";
    this.#accepted({});
  }

  #subscribeRefused(req, id, code, text) {
    const room = this.#rooms.get(req.room);
    if (!room || room.subID !== id) return;
    this.#pending.delete(id);
    room.subID = "";
    room.held = [];
    room.holding = false;
    if (code === "CANCELLED") return; // superseded: the later subscribe stands
    let retry = 0;
    if (code === "UNAVAILABLE") retry = Math.min(this.#o.retryMax, this.#o.retryMin * 2 ** room.tries++);
    else if (code === "RATE_LIMITED") retry = this.#backoff(++room.limited);
    else room.refused = code;
    if (code === "UNAUTHENTICATED" && typeof this.#o.refresh !== "function") {
      // The client closes (1000) and stops: told as the connection's end.
      this.#notice(Notice.disconnected, { code: 1000, text: `subscribe ${room.name}: ${text}; stopping` });
      this.#stop(0, `the node requires a token (${text})`);
      return;
    }
    this.#notice(Notice.requestError, { error: code, room: room.name, text, ...(retry > 0 ? { retry } : {}) });
    if (retry > 0) {
      room.timer = setTimeout(() => { if (this.#rooms.get(room.name) === room && this.#live()) this.#subscribe(room); }, retry);
    } else if (code === "UNAUTHENTICATED") {
      this.#refreshNow();
    }
  }

  // --- the token ---

  #scheduleRefresh() {
    clearTimeout(this.#refreshTimer);
    if (typeof this.#o.refresh !== "function" || !this.#exp || this.#keyless) return;
    // Three quarters of its life, at the latest 10 s before exp, but never
    // before half of it: a short-lived token would be asked for at once,
    // again and again.
    const life = this.#exp - this.#tokenAt;
    const at = this.#tokenAt + Math.max(Math.min(0.75 * life, life - refreshBefore), 0.5 * life);
    const wait = at - Date.now();
    this.#refreshTimer = setTimeout(() => {
      if (wait > maxTimer) this.#scheduleRefresh(); // a long-lived token: not yet
      else this.#refreshNow();
    }, Math.max(0, Math.min(wait, maxTimer)));
  }

  async #refreshNow() {
    if (this.#refreshing || typeof this.#o.refresh !== "function") return;
    clearTimeout(this.#refreshTimer);
    this.#refreshing = true;
    const ws = this.#ws;
    let token;
    try {
      token = String((await this.#o.refresh()) ?? "").trim();
      if (!token) throw new Error("the refresh callback gave no token");
      if (token === this.#token) throw new Error("the refresh callback gave the same token");
    } catch (e) {
      this.#refreshing = false;
      if (ws === this.#ws && this.#live()) this.#refreshFailed(`refresh: ${e.message ?? e}`, true);
      return;
    }
    this.#refreshing = false;
    if (this.#mode !== "running") return;
    this.#useToken(token);
    if (ws === this.#ws && this.#live()) this.#authenticate("refresh");
  }

  #refreshed(d) {
    this.#refreshTries = 0;
    if (!this.#exp && d.expires_at) this.#exp = Date.parse(d.expires_at) || 0;
    this.#notice(Notice.tokenRefreshed, { text: `token accepted for ${d.user_id ?? "?"}`, user: d.user_id ?? "", expiresAt: d.expires_at ?? "" });
    this.#scheduleRefresh();
    // Rooms the last token was refused are tried with this one.
    for (const room of this.#rooms.values()) {
      if (room.refused === "UNAUTHENTICATED" || room.refused === "FORBIDDEN") this.#subscribe(room);
    }
  }

  #refreshRefused(code, text) {
    if (code === "BAD_REQUEST") this.#keyless = true;
    // FORBIDDEN: another user's token, which an open connection never
    // takes; a node without keys takes none.
    this.#refreshFailed(text, code !== "FORBIDDEN" && code !== "BAD_REQUEST", code);
  }

  // refreshFailed tells, and tries again with the backoff until the node
  // would close the connection (exp + 5 s), which the close handles.
  #refreshFailed(text, again, code = "") {
    this.#notice(Notice.tokenRefreshFailed, { error: code, text });
    if (!again || typeof this.#o.refresh !== "function") return;
    const wait = this.#backoff(++this.#refreshTries);
    if (this.#exp && Date.now() + wait > this.#exp + expiryGrace) return;
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = setTimeout(() => this.#refreshNow(), wait);
  }

  // --- the connection's end ---

  #beat() {
    const now = Date.now();
    if (this.#pingAt === 0 && now - this.#heardAt >= this.#o.pingAfter) {
      this.#pingAt = now;
      this.#send({ type: "ping", id: this.#id("p") });
    } else if (this.#pingAt !== 0 && now - this.#pingAt >= this.#o.deadAfter) {
      // A cut network sends no close; a browser's close handshake would
      // wait for one.
      this.#drop(1000, "no answer to ping");
      this.#closed(1006, "no answer to ping");
    }
  }

  // drop lets go of the connection (closing it when open), and of
  // everything that belonged to it.
  #drop(code, reason) {
    const ws = this.#ws;
    this.#ws = null;
    this.#authed = false;
    clearInterval(this.#beatTimer);
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#refreshTimer);
    for (const req of this.#pending.values()) if (req.kind === "call") req.reject(new Error("connection closed"));
    this.#pending.clear();
    this.#leaving.clear();
    for (const t of this.#unsubTimers.values()) clearTimeout(t);
    this.#unsubTimers.clear();
    this.#unsubTries.clear();
    for (const room of this.#rooms.values()) {
      clearTimeout(room.timer);
      Object.assign(room, { holding: false, held: [], refused: "", tries: 0, limited: 0, leave: false });
    }
    if (ws === null) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    if (ws.readyState <= 1) {
      try { ws.close(code, reason); } catch { /* already closing */ }
    }
  }

  #closed(code, reason) {
    const refused = this.#sentToken;
    this.#drop(1000, "");
    if (this.#mode !== "running") return;
    if (code === 1001 || code === 4012) {
      // Draining, or shedding to balance the cluster: nothing is wrong.
      this.#failures = 0;
      this.#retry(code, reason, Math.random() * atOnce);
    } else if (code === 1008 || code === 4001) {
      const next = this.#token !== refused ? "trying the token given since"
        : typeof this.#o.refresh === "function" ? "asking for a new token" : "stopping";
      this.#notice(Notice.disconnected, { code, text: `${reason || "token refused"}; ${next}` });
      this.#tokenRefused(code, reason, refused);
    } else if (stopCodes.has(code)) {
      this.#notice(Notice.disconnected, { code, text: `${reason || "closed"}; stopping` });
      this.#stop(code, reason || `closed with ${code}`);
    } else {
      this.#retry(code, reason, this.#backoff(++this.#failures));
    }
  }

  #retry(code, reason, wait) {
    const ms = Math.round(wait);
    this.#notice(Notice.disconnected, { code, text: `${reason || "connection lost"}; next attempt in ${ms} ms`, delay: ms, attempt: this.#failures + 1 });
    this.#retryTimer = setTimeout(() => this.#connect(), ms);
  }

  // tokenRefused follows a 1008 or 4001: a token that differs from the
  // refused one (given since, or by the refresh callback) is tried after
  // the backoff; without one the client stops.
  async #tokenRefused(code, reason, refused) {
    let token = this.#token !== refused ? this.#token : "";
    if (!token && typeof this.#o.refresh === "function") {
      try {
        token = String((await this.#o.refresh()) ?? "").trim();
        if (token === refused) throw new Error("the refresh callback gave the same token");
      } catch (e) {
        this.#notice(Notice.tokenRefreshFailed, { text: `refresh: ${e.message ?? e}` });
        token = "";
      }
      if (this.#mode !== "running" || this.#ws !== null) return; // closed, or a token given meanwhile
      if (token) this.#useToken(token);
    }
    if (!token) {
      this.#stop(code, reason || (code === 4001 ? "the token expired" : "the token was refused"));
      return;
    }
    const ms = Math.round(this.#backoff(++this.#failures));
    this.#retryTimer = setTimeout(() => this.#connect(), ms);
  }

  #stop(code, text) {
    this.#mode = "stopped";
    this.#drop(1000, "stopping");
    this.#call("onStop", { code, text });
  }

  // backoff is the wait before attempt n (1 for the first after a
  // failure), with a random factor so that clients do not return in step.
  #backoff(n) {
    return Math.min(this.#o.backoffMax, this.#o.backoffMin * 2 ** (n - 1)) * (0.5 + Math.random());
  }
}

// unreadable says what makes a subscribe response's data unreadable (not
// the protocol's fields), or "" when it can be read.
function unreadable(d) {
  if (d === null || typeof d !== "object" || Array.isArray(d)) return "data that is not an object";
  for (const name of ["seq", "replayed"]) {
    if (d[name] !== undefined && !(Number.isSafeInteger(d[name]) && d[name] >= 0)) return `a bad ${name}`;
  }
  if (d.epoch !== undefined && typeof d.epoch !== "string") return "a bad epoch";
  if (d.recovered !== undefined && typeof d.recovered !== "boolean") return "a bad recovered";
  if (d.state !== undefined && d.state !== null && !Array.isArray(d.state)) return "a state that is not an array";
  return "";
}

// expiryOf reads a JWT's exp (ms), unverified: the node verifies. 0 when
// the token has none or is not a JWT.
function expiryOf(token) {
  const part = token.split(".")[1];
  if (!part) return 0;
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    const exp = JSON.parse(json).exp;
    return Number.isFinite(exp) ? exp * 1000 : 0;
  } catch {
    return 0;
  }
}
