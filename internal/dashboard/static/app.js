// app.js: the dashboard page. It wires the link (link.js) to the views
// (views.js) and the controls: the rooms a person picks, the recent ones,
// the token, and what the connection is doing.
import { ClusterView } from "./cluster.js";
import { Link } from "./link.js";
import { checkOrigin, refusalText } from "./origin.js";
import { RoomList } from "./rooms.js";
import { Freshness, viewFor } from "./views.js";

const roomPattern = /^[a-z][a-z0-9_-]{0,31}:[A-Za-z0-9_-]{1,128}$/; // docs/protocol.md section 1
// How rooms of a kind are subscribed (link.js). A pool's and a workflow's
// views draw their keys' latest events (every worker, every run), so they
// ask for the state: it has the keys whose events the history no longer
// holds. A pool's view wants the latest status of each worker, not every
// step, so it conflates; a workflow's timeline draws every stage of a
// run, all events of one key, which conflation would skip.
const subscribeOpts = {
  pool: { state: true, conflate: true },
  workflow: { state: true },
};
const recentLength = 8;
const store = {
  get(key, fallback) {
    try { return JSON.parse(localStorage.getItem(key)) ?? fallback; } catch { return fallback; }
  },
  set(key, value) {
    try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* private mode: not kept */ }
  },
};

const $ = (id) => document.getElementById(id);
const panels = new Map(); // room name -> {article, view, room}
const dirty = new Set();  // panels to draw
let drawScheduled = false;
let eventsThisSecond = 0;
let originRefused = null; // the node's word that it refuses this page's origin (origin.js)

const link = new Link(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`, {
  onState(state, text) {
    if (state === "live" && originRefused) {
      // Allowed after all (the node's settings changed): the warning is stale.
      originRefused = null;
      if ($("notice").dataset.kind === "refused") Object.assign($("notice"), { hidden: true, textContent: "" });
    }
    if (originRefused && (state === "connecting" || state === "reconnecting")) {
      state = "refused";
      text = "refused: origin not allowed";
    }
    $("conn").dataset.state = state;
    $("conn").textContent = text;
    roomList.live(state === "live");
    clusterView.live(state === "live");
  },
  onNotice: notice,
  onRoom: roomChanged,
  onRebuild(room) {
    const p = panels.get(room.name);
    if (!p) return;
    const body = p.article.querySelector(".body");
    body.replaceChildren();
    p.view = viewFor(kindOf(room.name), body);
    markDirty(p);
  },
  onEvent(room, msg) {
    eventsThisSecond++;
    const p = panels.get(room.name);
    if (!p) return;
    p.view.apply(msg);
    markDirty(p);
  },
});

function notice(text, kind) {
  const n = $("notice");
  n.hidden = false;
  n.dataset.kind = kind;
  n.textContent = text;
  n.title = new Date().toLocaleTimeString([], { hour12: false });
}

// markDirty draws p at the next frame; a timer stands in when frames do
// not come (a hidden tab), so the page is current when it is looked at.
function markDirty(p) {
  dirty.add(p);
  if (drawScheduled) return;
  drawScheduled = true;
  const timer = setTimeout(draw, 250);
  requestAnimationFrame(() => { clearTimeout(timer); draw(); });
}

function draw() {
  if (!drawScheduled) return;
  drawScheduled = false;
  for (const p of dirty) {
    p.view.render();
    drawCounts(p);
  }
  dirty.clear();
}

function drawCounts(p) {
  const r = p.room;
  const a = p.article;
  a.dataset.state = r.state;
  a.dataset.events = r.events;
  a.dataset.lastSeq = r.seq ?? "";
  a.dataset.dupes = r.dupes;
  a.querySelector(".state").textContent = r.state;
  a.dataset.conflated = r.conflated;
  let counts = `${r.events} events · seq ${r.seq ?? "–"}`;
  if (r.conflated > 0) counts += ` · ${r.conflated} superseded skipped`;
  if (r.dupes > 0) counts += ` · ${r.dupes} duplicates dropped`;
  a.querySelector(".counts").textContent = counts;
  p.fresh.draw(r, link.heardAt);
  const err = a.querySelector(".panel-error");
  err.hidden = !r.error;
  err.textContent = r.error;
  const side = document.querySelector(`#rooms li[data-room="${CSS.escape(r.name)}"] .seq`);
  if (side) side.textContent = r.seq ?? "";
}

function roomChanged(room) {
  let p = panels.get(room.name);
  if (!p) p = addPanel(room);
  markDirty(p);
}

function addPanel(room) {
  const article = $("panel-tpl").content.firstElementChild.cloneNode(true);
  article.dataset.room = room.name;
  article.querySelector(".room-name").textContent = room.name;
  article.querySelector(".close").addEventListener("click", () => unfollow(room.name));
  const view = viewFor(kindOf(room.name), article.querySelector(".body"));
  const p = { article, view, room, fresh: new Freshness(article) };
  panels.set(room.name, p);
  $("welcome").hidden = true;
  $("views").append(article);
  drawRooms();
  return p;
}

function follow(name, history) {
  if (!roomPattern.test(name)) {
    const e = $("room-error");
    e.hidden = false;
    e.textContent = `"${name}" is not a room: kind:id, such as pool:p1 (kind: a-z, 0-9, _ and -; id: letters, digits, _ and -)`;
    return;
  }
  $("room-error").hidden = true;
  link.follow(name, history, subscribeOpts[kindOf(name)]);
  remember(name);
  store.set("roomcast.rooms", [...panels.keys()]);
}

// kindOf is a room's kind, the part before the colon.
function kindOf(name) {
  return name.split(":")[0];
}

function unfollow(name) {
  link.unfollow(name);
  const p = panels.get(name);
  if (p) {
    p.article.remove();
    p.fresh.clear();
    dirty.delete(p);
    panels.delete(name);
  }
  $("welcome").hidden = panels.size > 0;
  store.set("roomcast.rooms", [...panels.keys()]);
  drawRooms();
}

function remember(name) {
  const recent = [name, ...store.get("roomcast.recent", []).filter((r) => r !== name)].slice(0, recentLength);
  store.set("roomcast.recent", recent);
  drawRecent();
}

function drawRooms() {
  const list = $("rooms");
  if (panels.size === 0) {
    list.replaceChildren(Object.assign(document.createElement("li"), { className: "empty", textContent: "none yet" }));
    return;
  }
  list.replaceChildren(...[...panels.values()].map((p) => {
    const li = document.createElement("li");
    li.dataset.room = p.room.name;
    const a = Object.assign(document.createElement("a"), { href: "#", textContent: p.room.name });
    a.addEventListener("click", (e) => { e.preventDefault(); p.article.scrollIntoView({ behavior: "smooth" }); });
    li.append(a, Object.assign(document.createElement("span"), { className: "seq", textContent: p.room.seq ?? "" }));
    return li;
  }));
}

function drawRecent() {
  const list = $("recent");
  list.replaceChildren(...store.get("roomcast.recent", []).filter((r) => roomPattern.test(r)).map((name) => {
    const li = document.createElement("li");
    const a = Object.assign(document.createElement("a"), { href: "#", textContent: name, title: "subscribe" });
    a.addEventListener("click", (e) => { e.preventDefault(); follow(name, $("history").checked); });
    li.append(a);
    return li;
  }));
}

$("room-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("room");
  follow(input.value.trim(), $("history").checked);
  input.value = "";
});

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const token = $("token").value;
  try { sessionStorage.setItem("roomcast.token", token); } catch { /* not kept */ }
  $("token-info").hidden = false;
  $("token-info").textContent = token.trim() ? "token set for this tab" : "token cleared";
  link.useToken(token);
});

setInterval(() => {
  $("rate").textContent = `${eventsThisSecond} ev/s`;
  eventsThisSecond = 0;
}, 1000);

// The node's rooms with recent events; a click opens one.
const roomList = new RoomList(link, $("active"), (name) => follow(name, $("history").checked));
$("active-refresh").addEventListener("click", () => roomList.refresh());
// The cluster's nodes and slowest connections, for tokens that may see them.
const clusterView = new ClusterView(link, $("cluster"));

// Rooms to start with: ?rooms=pool:p1,workflow:w1 (a link to share), or
// those of the last visit. ?history=0 starts them live only.
const params = new URLSearchParams(location.search);
const history = params.get("history") !== "0";
$("history").checked = history;
const saved = sessionStorage.getItem("roomcast.token") ?? "";
$("token").value = saved;
drawRecent();
const initial = params.has("rooms") ? params.get("rooms").split(",") : store.get("roomcast.rooms", []);
for (const name of initial.map((r) => r.trim()).filter(Boolean)) follow(name, history);
// Ask first whether the node takes this page's origin, and say so before
// the first attempt; connect either way (the answer is only advice).
checkOrigin().then((refused) => {
  if (refused) {
    originRefused = refused;
    notice(refusalText(refused), "refused");
  }
  link.start(saved);
});
