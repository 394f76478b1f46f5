// link.js: the page's one WebSocket to the node it was served by, the rooms
// it follows, and the resume after every reconnection (docs/protocol.md section
// 3): each room remembers the last seq it was given, and the epoch of the
// stream that seq is in, and subscribes again with them as since and epoch,
// so a dropped connection loses nothing and repeats nothing, and a stream
// recreated meanwhile is replayed from its start. A room followed with
// state (a pool's, a workflow's) is answered, when its history is not
// whole or a resume lost events, with its state, every key's latest
// event, and the page draws the room again from it; one followed with
// conflate is sent the latest event of each key when the page falls
// behind, instead of being closed. The link knows nothing of how events
// are drawn.

const backoffFirst = 250;     // ms before the first reconnection attempt
const backoffMax = 10000;     // ms, the longest wait between attempts
const heartbeatEvery = 15000; // ms between application pings
const heartbeatWait = 10000;  // ms a pong may take before the link is dead
const retryFirst = 1000;      // ms before a subscribe refused as UNAVAILABLE is sent again

// Link states, shown by the page.
export const State = {
  connecting: "connecting",
  live: "live",
  reconnecting: "reconnecting",
  token: "token",   // the node wants a (new) token: no retry until one is given
};

// A Link follows rooms over one WebSocket.
// handlers: onState(state, text), onRoom(room), onEvent(room, msg),
// onNotice(text, kind), onRebuild(room): a state follows, as onEvent
// calls, that replaces everything the room's events drew before.
export class Link {
  constructor(url, handlers) {
    this.url = url;
    this.h = handlers;
    this.rooms = new Map(); // name -> room (see follow)
    this.token = "";
    this.ws = null;
    this.authed = false; // the open link's rooms may be subscribed
    this.nextID = 0;
    this.pending = new Map(); // request id -> what it was for
    this.attempt = 0;
    this.connectedOnce = false;
    this.retryTimer = 0;
    this.beatTimer = 0;
    this.beatDeadline = 0;
    this.resume = null; // {left, replayed, lost}: resubscriptions after a reconnection
    this.heardAt = 0;   // ms: when the node last sent anything (what the page shows was current then)
    this.rebalanced = false; // the last close was a 4012: the resume says so
  }

  // follow subscribes to a room; history asks for its retained events;
  // opts.state for its state, opts.conflate for conflation (docs/protocol.md
  // section 3, "State", "Conflation").
  follow(name, history, opts = {}) {
    if (this.rooms.has(name)) return this.rooms.get(name);
    const room = {
      name,
      history,
      withState: opts.state === true,
      conflate: opts.conflate === true,
      seq: null,        // the last seq given (or the live start): the next since
      epoch: null,      // the stream seq is in, from the last subscribe response
      floor: true,      // drop events at or below seq (off until a fresh stream answers)
      resuming: false,  // a subscribe with since and epoch awaits its response
      held: null,       // events of that resume at or below seq: the response says whose
      state: "subscribing",
      error: "",
      events: 0,
      dupes: 0,
      replayed: 0,
      recovered: true,
      keys: null,       // keys in the state the last response carried; null: none came
      conflated: 0,     // superseded events the node skipped (counted in events)
      retries: 0,       // subscribes refused as UNAVAILABLE in a row
      retryTimer: 0,
      subID: "",        // the id of the room's last subscribe
    };
    this.rooms.set(name, room);
    this.h.onRoom(room);
    if (this.isOpen() && this.authed) this.subscribe(room, false);
    return room;
  }

  // unfollow unsubscribes from a room and forgets it.
  unfollow(name) {
    if (!this.rooms.delete(name)) return;
    if (this.isOpen() && this.authed) this.send({ type: "request", event: "unsubscribe", id: this.id("u"), data: { channel: name } });
  }

  // useToken sets the token: sent at once when connected (a refresh),
  // or used by the next connection.
  useToken(token) {
    this.token = token.trim();
    if (this.isOpen()) {
      if (this.token) this.authenticate();
      return;
    }
    if (this.ws !== null) return; // connecting: opened() sends it
    this.connectSoon(0);
  }

  // start connects, with token when one is given.
  start(token) {
    this.token = (token ?? "").trim();
    this.connect();
  }

  // request sends a request of event (with data) and resolves with its
  // response's data; it rejects with the error's text, or when the link
  // is not live or closes before the answer.
  request(event, data) {
    if (!this.isOpen() || !this.authed) return Promise.reject(new Error("not connected"));
    return new Promise((resolve, reject) => {
      const id = this.id("q");
      this.pending.set(id, { kind: "call", resolve, reject });
      this.send({ type: "request", event, id, data });
    });
  }

  isOpen() { return this.ws !== null && this.ws.readyState === WebSocket.OPEN; }

  id(prefix) { return prefix + (++this.nextID); }

  send(msg) { this.ws.send(JSON.stringify(msg)); }

  connect() {
    clearTimeout(this.retryTimer);
    this.h.onState(this.connectedOnce ? State.reconnecting : State.connecting,
      this.attempt > 0 ? `reconnecting (attempt ${this.attempt + 1})` : (this.connectedOnce ? "reconnecting" : "connecting"));
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.closed(1006, String(e));
      return;
    }
    this.ws = ws;
    this.authed = false;
    ws.onopen = () => this.opened();
    ws.onmessage = (m) => this.received(m.data);
    ws.onclose = (e) => { if (this.ws === ws) this.closed(e.code, e.reason); };
  }

  opened() {
    this.heartbeat();
    if (this.token) this.authenticate();
    else this.subscribeAll();
  }

  authenticate() {
    const id = this.id("a");
    this.pending.set(id, { kind: "auth" });
    this.send({ type: "request", event: "auth", id, data: { token: this.token } });
  }

  // subscribeAll subscribes to every room, after a (re)connection.
  subscribeAll() {
    const again = this.connectedOnce;
    this.authed = true;
    this.attempt = 0;
    this.connectedOnce = true;
    this.h.onState(State.live, "live");
    const rooms = [...this.rooms.values()];
    this.resume = again && rooms.length > 0 ? { left: rooms.length, replayed: 0, lost: 0, rebuilt: 0, rebalanced: this.rebalanced } : null;
    this.rebalanced = false;
    for (const room of rooms) this.subscribe(room, again);
  }

  subscribe(room, resuming) {
    const data = { channel: room.name };
    if (room.seq !== null) data.since = room.seq;
    else if (room.history) data.since = 0;
    if (room.seq !== null && room.epoch) data.epoch = room.epoch;
    if (room.withState) data.state = true;
    if (room.conflate) data.conflate = true;
    room.resuming = data.epoch !== undefined;
    room.held = null;
    clearTimeout(room.retryTimer);
    const id = this.id("s");
    room.subID = id;
    this.pending.set(id, { kind: "subscribe", room: room.name, resuming });
    room.state = "subscribing";
    this.h.onRoom(room);
    this.send({ type: "request", event: "subscribe", id, data });
  }

  received(text) {
    this.heardAt = Date.now();
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return; // the node sends JSON only; nothing to do with anything else
    }
    switch (msg.type) {
      case "event": return this.event(msg);
      case "response": return this.response(msg);
      case "error": return this.error(msg);
      case "pong": return this.pong();
    }
  }

  event(msg) {
    if (!msg.room) {
      if (msg.event === "server.draining") this.h.onNotice("node draining: moving to another", "info");
      return;
    }
    const room = this.rooms.get(msg.room);
    if (!room) return; // unsubscribed while it was on its way
    if (room.held) {
      room.held.push(msg);
      return;
    }
    if (room.resuming && room.floor && room.seq !== null && msg.seq <= room.seq) {
      // The replay of a stream recreated since seq, or duplicates: the
      // response, which names its stream, tells.
      room.held = [msg];
      return;
    }
    this.accept(room, msg);
  }

  // accept shows an event unless it is at or below the room's floor.
  accept(room, msg) {
    if (room.floor && room.seq !== null && msg.seq <= room.seq) {
      room.dupes++; // never expected: the guarantee says each event once
      this.h.onRoom(room);
      return;
    }
    room.seq = msg.seq;
    // Events the node skipped as superseded count as seen: their keys'
    // newer events are drawn.
    const skipped = Number.isInteger(msg.conflated) && msg.conflated > 0 ? msg.conflated : 0;
    room.events += 1 + skipped;
    room.conflated += skipped;
    this.h.onEvent(room, msg);
  }

  response(msg) {
    const req = this.pending.get(msg.id);
    this.pending.delete(msg.id);
    if (!req) return;
    const d = msg.data || {};
    if (req.kind === "call") {
      req.resolve(d);
      return;
    }
    if (req.kind === "auth") {
      this.h.onNotice(`authenticated as ${d.user_id || "?"}` + (d.expires_at ? `, token valid until ${new Date(d.expires_at).toLocaleString()}` : ""), "info");
      if (!this.authed) {
        this.subscribeAll();
        return;
      }
      // A token given on an open link: rooms it refused are tried again.
      this.h.onState(State.live, "live");
      for (const room of this.rooms.values()) if (room.state === "error") this.subscribe(room, false);
      return;
    }
    const room = this.rooms.get(req.room);
    if (!room) {
      // Unfollowed while it was being subscribed: no longer waited for.
      if (req.resuming && this.resume && --this.resume.left === 0) this.resume = null;
      return;
    }
    // A seq of another stream than the one the page had: the replay
    // started over in it.
    if (room.epoch && d.epoch && d.epoch !== room.epoch) room.floor = false;
    const held = room.held;
    room.held = null;
    room.resuming = false;
    room.retries = 0;
    room.keys = Array.isArray(d.state) ? d.state.length : null;
    if (room.keys !== null) this.rebuild(room, d);
    else for (const m of held || []) this.accept(room, m);
    // The response follows the replayed events and precedes the live
    // ones: its seq is where live delivery starts.
    if (room.seq === null || !room.floor || d.seq > room.seq || room.keys !== null) room.seq = d.seq;
    room.epoch = d.epoch || null;
    room.floor = true;
    room.state = "live";
    room.error = "";
    room.replayed = d.replayed || 0;
    room.recovered = d.recovered !== false;
    this.h.onRoom(room);
    if (req.resuming && this.resume) this.resumed(room);
    else if (room.keys !== null) this.h.onNotice(`${room.name}: loaded its state (${plural(room.keys, "key")})`, "info");
    else if (room.replayed > 0) this.h.onNotice(`${room.name}: loaded ${plural(room.replayed, "retained event")}`, "info");
  }

  // rebuild hands the page a room's state, the latest event of each key
  // as of the response's seq, in seq order: it replaces what was drawn,
  // and the events after that seq follow. (A state comes without a
  // replay: nothing was held.)
  rebuild(room, d) {
    this.h.onRebuild(room);
    for (const m of d.state) {
      if (!m || typeof m !== "object") continue;
      room.events++;
      this.h.onEvent(room, m);
    }
  }

  // resumed counts one room's resubscription; the last one tells.
  resumed(room) {
    const r = this.resume;
    r.replayed += room.replayed;
    if (!room.recovered) r.lost++;
    if (room.keys !== null) r.rebuilt++;
    if (--r.left > 0) return;
    this.resume = null;
    let text = `${r.rebalanced ? "rebalanced: " : ""}resumed (${plural(r.replayed, "missed event")} replayed)`;
    if (r.lost > 0) text += `, but ${plural(r.lost, "room")} lost events to retention or a recreated stream`;
    if (r.rebuilt > 0) text += `; ${plural(r.rebuilt, "room")} redrawn from ${r.rebuilt === 1 ? "its" : "their"} state`;
    this.h.onNotice(text, r.lost > 0 ? "warn" : "info");
  }

  error(msg) {
    const req = this.pending.get(msg.id);
    this.pending.delete(msg.id);
    const d = msg.data || {};
    const text = `${d.code || "ERROR"}: ${d.message || "refused"}`;
    if (req && req.kind === "call") {
      req.reject(new Error(text));
      return;
    }
    if (req && req.kind === "auth") {
      this.h.onState(State.token, "token refused");
      this.h.onNotice(text, "warn");
      return;
    }
    if (d.code === "UNAUTHENTICATED") this.h.onState(State.token, "needs a token");
    // An error for a subscribe already answered: catching up after a state
    // failed, and the room was left; a CANCELLED one was superseded by
    // the page's next subscribe of the room, which stands.
    if (!req && d.code === "CANCELLED") return;
    const room = req ? (req.room ? this.rooms.get(req.room) : null)
      : [...this.rooms.values()].find((r) => r.subID === msg.id) ?? null;
    if (!room) {
      this.h.onNotice(text, "warn");
      return;
    }
    const resuming = req ? req.resuming : false;
    room.error = text;
    room.held = null;
    room.resuming = false;
    if (d.code === "UNAVAILABLE") {
      // The room (or its state: the keeper starting) cannot be read
      // now: the protocol says retry. The resume's notice waits for it.
      room.state = "subscribing";
      this.h.onRoom(room);
      const delay = Math.min(backoffMax, retryFirst * 2 ** room.retries++);
      room.retryTimer = setTimeout(() => {
        if (this.rooms.get(room.name) === room && this.isOpen() && this.authed) this.subscribe(room, resuming);
      }, delay);
      return;
    }
    room.state = "error";
    this.h.onRoom(room);
    if (resuming && this.resume && --this.resume.left === 0) this.resume = null;
  }

  heartbeat() {
    clearTimeout(this.beatTimer);
    this.beatTimer = setTimeout(() => {
      if (!this.isOpen()) return;
      this.send({ type: "ping", id: this.id("p") });
      this.beatDeadline = setTimeout(() => this.dead(), heartbeatWait);
    }, heartbeatEvery);
  }

  pong() {
    clearTimeout(this.beatDeadline);
    this.heartbeat();
  }

  // dead gives up on a connection that answers nothing (a cut network
  // sends no close): the browser's close handshake would wait for it.
  dead() {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    ws.onclose = null;
    ws.close();
    this.closed(1006, "no answer to ping");
  }

  closed(code, reason) {
    clearTimeout(this.beatTimer);
    clearTimeout(this.beatDeadline);
    this.ws = null;
    this.authed = false;
    for (const req of this.pending.values()) if (req.kind === "call") req.reject(new Error("connection closed"));
    this.pending.clear();
    this.resume = null;
    for (const room of this.rooms.values()) {
      clearTimeout(room.retryTimer); // every room is subscribed again
      if (room.state !== "error") room.state = "subscribing";
      room.held = null; // resubscribed from seq, they come again
      room.resuming = false;
      if (code === 4010) room.floor = false; // a new stream: its seqs may start anywhere
      this.h.onRoom(room);
    }
    switch (code) {
      case 1008:
        this.h.onState(State.token, this.token ? "token refused" : "needs a token");
        this.h.onNotice(reason || "the node wants a token", "warn");
        return;
      case 4001:
        this.h.onState(State.token, "token expired");
        this.h.onNotice("the token expired: give a new one to go on", "warn");
        return;
      case 4010:
        this.h.onNotice("the node's stream was recreated: its history before that is gone", "warn");
        break;
      case 4012: // the node sheds clients to balance the cluster: move at once, resume
        this.rebalanced = true;
        this.attempt = 0;
        this.h.onState(State.reconnecting, "reconnecting");
        this.connectSoon(0);
        return;
    }
    // A draining node (1001) asks for a move at once; anything else backs
    // off, exponentially with jitter, so a fleet of pages does not return
    // in step.
    const base = code === 1001 ? 100 : Math.min(backoffMax, backoffFirst * 2 ** this.attempt);
    this.attempt++;
    this.h.onState(State.reconnecting, `reconnecting (attempt ${this.attempt})`);
    this.connectSoon(base * (0.5 + Math.random()));
  }

  connectSoon(delay) {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }
}

// plural is "1 thing" or "n things".
function plural(n, thing) {
  return `${n} ${thing}${n === 1 ? "" : "s"}`;
}
