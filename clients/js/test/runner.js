// runner.js: the conformance runner of roomcast.js (clients/conformance,
// README.md, "The runner contract"). It reads its configuration, a JSON
// object, from the page's `config` query parameter, follows the rooms with
// the library and pushes what the library hands it, as records, onto
// window.records, which the harness drains with window.records.splice(0).
// The module is loaded relative to the page: the harness serves the
// clients/js directory.
import { Client } from "../roomcast.js";

const records = [];
window.records = records;

function record(r) {
  records.push(r);
  document.getElementById("last").textContent = JSON.stringify(r);
}

// pause blocks the page's thread for ms: the application stops taking
// anything from the library, so the node sees a slow consumer.
function pause(ms) {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* busy: a sleep would let the library read on */ }
}

// refreshFrom is the refresh callback: the body of a GET of url is the new
// token; any other answer than 200 is a failed refresh.
function refreshFrom(url) {
  return async () => {
    const res = await fetch(url, { cache: "no-store" });
    if (res.status !== 200) throw new Error(`refresh: ${url} answered ${res.status}`);
    return (await res.text()).trim();
  };
}

let config;
try {
  config = JSON.parse(new URLSearchParams(location.search).get("config") ?? "");
} catch (e) {
  record({ kind: "stopped", code: 0, text: `runner: no valid config parameter: ${e.message}` });
  throw e;
}

const client = new Client(config.urls, {
  token: config.token ?? "",
  refresh: config.refresh_url ? refreshFrom(config.refresh_url) : undefined,
  backoffMin: config.backoff_min_ms || undefined,
  backoffMax: config.backoff_max_ms || undefined,
  onEvent(ev) {
    const n = ev.data && Number.isInteger(ev.data.n) ? ev.data.n : -1;
    record({ kind: "event", room: ev.room, seq: ev.seq, event: ev.event ?? "", n, conflated: ev.conflated ?? 0 });
    if (n >= 0) subscribeAfter(n);
    const ms = ev.data && ev.data.pause_ms;
    if (Number.isFinite(ms) && ms > 0) pause(ms);
  },
  onSubscribed(sub) {
    record({
      kind: "subscribed", room: sub.room, seq: sub.seq, epoch: sub.epoch, replayed: sub.replayed,
      recovered: sub.recovered, resumed: sub.resumed, state: sub.state ? sub.state.length : -1,
    });
  },
  onNotice(n) {
    record({ kind: "notice", notice: n.notice, code: n.code, error: n.error, room: n.room, text: n.text });
  },
  onStop(reason) {
    record({ kind: "stopped", code: reason.code, text: reason.text });
  },
});
// subscribeAfter subscribes the rooms whose after_n is n (null: those
// without one, at the start), each entry once.
const subscribed = new Set();
function subscribeAfter(n) {
  for (const r of config.rooms ?? []) {
    if ((r.after_n ?? null) !== n || subscribed.has(r)) continue;
    subscribed.add(r);
    client.subscribe(r.room, {
      history: r.history === true, since: r.since, epoch: r.epoch, state: r.state === true, conflate: r.conflate === true,
    });
  }
}
subscribeAfter(null);
window.client = client; // for a harness that wants to look closer
record({ kind: "ready" });
client.start();
