// link.js: the page's connection to the node it was served by, over the
// client library (roomcast.js, served by the node beside this page), which
// does what docs/protocol.md section 3 "What a client does" says: the
// token in an auth request, each room resumed with since and epoch after
// every reconnection, each event once, UNAVAILABLE retried, the backoff.
// This adapter keeps, for the page, what each room shows (its state, its
// counts, its last error) and turns what the library tells into the
// page's words: the connection's state, and notices such as "resumed (3
// missed events replayed)". A room followed with state (a pool's, a
// workflow's) is redrawn from the state a response carries; one followed
// with conflate is sent the latest event of each key when the page falls
// behind. The link knows nothing of how events are drawn.
import { Client, Notice } from "./roomcast.js";

// Link states, shown by the page.
export const State = {
  connecting: "connecting",
  live: "live",
  reconnecting: "reconnecting",
  token: "token",     // the node wants a (new) token: no retry until one is given
  stopped: "stopped", // the node refused what the page sent, and would again
};

// A Link follows rooms over one WebSocket.
// handlers: onState(state, text), onRoom(room), onEvent(room, msg),
// onNotice(text, kind), onRebuild(room): a state follows, as onEvent
// calls, that replaces everything the room's events drew before.
export class Link {
  constructor(url, handlers) {
    this.h = handlers;
    this.rooms = new Map(); // name -> room (see follow)
    this.connectedOnce = false;
    this.resume = null;      // after a reconnection: {waiting (rooms not answered yet), replayed, lost, rebuilt, rebalanced}
    this.rebalanced = false; // the last close was a 4012: the resume says so
    this.hadToken = false;
    this.client = new Client([url], {
      onEvent: (msg) => this.event(msg),
      onSubscribed: (sub) => this.subscribed(sub),
      onNotice: (n) => this.notice(n),
      onStop: (reason) => this.stopped(reason),
    });
  }

  // heardAt is when the node last sent anything (ms): what the page shows
  // was current then.
  get heardAt() { return this.client.heardAt; }

  // follow subscribes to a room; history asks for its retained events;
  // opts.state for its state, opts.conflate for conflation (docs/protocol.md
  // section 3, "State", "Conflation").
  follow(name, history, opts = {}) {
    if (this.rooms.has(name)) return this.rooms.get(name);
    const room = {
      name,
      seq: null,        // the last seq given (or the live start)
      state: "subscribing",
      error: "",
      events: 0,
      dupes: 0,
      replayed: 0,
      recovered: true,
      keys: null,       // keys in the state the last response carried; null: none came
      conflated: 0,     // superseded events the node skipped (counted in events)
    };
    this.rooms.set(name, room);
    this.h.onRoom(room);
    this.client.subscribe(name, { history, state: opts.state === true, conflate: opts.conflate === true });
    return room;
  }

  // unfollow unsubscribes from a room and forgets it.
  unfollow(name) {
    if (!this.rooms.delete(name)) return;
    this.client.unsubscribe(name);
    if (this.resume) this.answered(name);
  }

  // useToken sets the token: sent at once when connected (a refresh), or
  // used by the next connection; a link stopped for want of one goes on.
  useToken(token) {
    this.hadToken = token.trim() !== "";
    this.client.setToken(token);
  }

  // start connects, with token when one is given.
  start(token) {
    this.hadToken = (token ?? "").trim() !== "";
    this.client.setToken(token ?? "");
    this.h.onState(State.connecting, "connecting");
    this.client.start();
  }

  // request sends a request of event (with data) and resolves with its
  // response's data; it rejects with the error's text ("CODE: message"),
  // or when the link is not live or closes before the answer.
  request(event, data) {
    return this.client.request(event, data);
  }

  event(msg) {
    const room = this.rooms.get(msg.room);
    if (!room) return;
    room.seq = msg.seq;
    room.dupes = this.client.position(room.name).duplicates; // never expected: the guarantee says each event once
    // Events the node skipped as superseded count as seen: their keys'
    // newer events are drawn.
    const skipped = Number.isInteger(msg.conflated) && msg.conflated > 0 ? msg.conflated : 0;
    room.events += 1 + skipped;
    room.conflated += skipped;
    this.h.onEvent(room, msg);
  }

  subscribed(sub) {
    const room = this.rooms.get(sub.room);
    if (!room) return;
    room.keys = sub.state ? sub.state.length : null;
    if (sub.state) this.rebuild(room, sub.state);
    const pos = this.client.position(room.name);
    room.seq = pos.seq;
    room.dupes = pos.duplicates;
    room.state = "live";
    room.error = "";
    room.replayed = sub.replayed;
    room.recovered = sub.recovered;
    this.h.onRoom(room);
    if (this.resume && this.resume.waiting.has(room.name)) this.resumed(room);
    else if (room.keys !== null) this.h.onNotice(`${room.name}: loaded its state (${plural(room.keys, "key")})`, "info");
    else if (room.replayed > 0) this.h.onNotice(`${room.name}: loaded ${plural(room.replayed, "retained event")}`, "info");
  }

  // rebuild hands the page a room's state, the latest event of each key
  // as of the response's seq, in seq order: it replaces what was drawn,
  // and the events after that seq follow.
  rebuild(room, state) {
    this.h.onRebuild(room);
    for (const m of state) {
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
    this.answered(room.name);
  }

  // answered marks a room's resubscription done (subscribed, refused or
  // unfollowed); after the last, the page is told how the resume went.
  answered(name) {
    const r = this.resume;
    r.waiting.delete(name);
    if (r.waiting.size > 0) return;
    this.resume = null;
    let text = `${r.rebalanced ? "rebalanced: " : ""}resumed (${plural(r.replayed, "missed event")} replayed)`;
    if (r.lost > 0) text += `, but ${plural(r.lost, "room")} lost events to retention or a recreated stream`;
    if (r.rebuilt > 0) text += `; ${plural(r.rebuilt, "room")} redrawn from ${r.rebuilt === 1 ? "its" : "their"} state`;
    this.h.onNotice(text, r.lost > 0 ? "warn" : "info");
  }

  notice(n) {
    switch (n.notice) {
      case Notice.connected: return this.connected(n);
      case Notice.disconnected: return this.disconnected(n);
      case Notice.draining: return this.h.onNotice("node draining: moving to another", "info");
      case Notice.requestError: return this.refused(n);
      case Notice.tokenRefreshed: return this.authenticated(n);
      case Notice.tokenRefreshFailed:
        this.h.onState(State.token, "token refused");
        this.h.onNotice(n.text, "warn");
        return;
      case Notice.badInput: return; // the node sends JSON only: nothing to show
    }
  }

  connected(n) {
    const again = this.connectedOnce;
    this.connectedOnce = true;
    this.h.onState(State.live, "live");
    if (n.user) this.authenticated(n);
    // The library subscribes every room again: each shows it until answered.
    for (const room of this.rooms.values()) {
      room.state = "subscribing";
      this.h.onRoom(room);
    }
    this.resume = again && this.rooms.size > 0
      ? { waiting: new Set(this.rooms.keys()), replayed: 0, lost: 0, rebuilt: 0, rebalanced: this.rebalanced }
      : null;
    this.rebalanced = false;
  }

  authenticated(n) {
    this.h.onState(State.live, "live");
    this.h.onNotice(`authenticated as ${n.user || "?"}` + (n.expiresAt ? `, token valid until ${new Date(n.expiresAt).toLocaleString()}` : ""), "info");
  }

  disconnected(n) {
    this.resume = null;
    for (const room of this.rooms.values()) {
      if (room.state !== "error") room.state = "subscribing";
      this.h.onRoom(room);
    }
    if (n.code === 4010) this.h.onNotice("the node's stream was recreated: its history before that is gone", "warn");
    if (n.delay === undefined) return; // no attempt planned: a stop or a token follows
    if (n.code === 4012) this.rebalanced = true; // the node sheds clients to balance the cluster
    const attempt = n.code === 1001 || n.code === 4012 ? 0 : n.attempt;
    this.h.onState(State.reconnecting, attempt > 0 ? `reconnecting (attempt ${attempt})` : "reconnecting");
  }

  // refused shows a request the node refused: a room's, retried by the
  // library when it says so (UNAVAILABLE: the room, or its state, cannot
  // be read now), or another.
  refused(n) {
    const room = this.rooms.get(n.room);
    if (!room) {
      this.h.onNotice(n.text, "warn");
      return;
    }
    room.error = n.text;
    room.state = n.retry ? "subscribing" : "error";
    this.h.onRoom(room);
    if (!n.retry && this.resume && this.resume.waiting.has(room.name)) this.answered(room.name);
  }

  stopped(reason) {
    this.resume = null;
    for (const room of this.rooms.values()) {
      if (room.state !== "error") room.state = "subscribing";
      this.h.onRoom(room);
    }
    switch (reason.code) {
      case 4001:
        this.h.onState(State.token, "token expired");
        this.h.onNotice("the token expired: give a new one to go on", "warn");
        return;
      case 0:
      case 1008:
        this.h.onState(State.token, this.hadToken ? "token refused" : "needs a token");
        this.h.onNotice(reason.text || "the node wants a token", "warn");
        return;
    }
    this.h.onState(State.stopped, "stopped");
    this.h.onNotice(`stopped: ${reason.text}`, "warn");
  }
}

// plural is "1 thing" or "n things".
function plural(n, thing) {
  return `${n} ${thing}${n === 1 ? "" : "s"}`;
}
