// views.js: how a room's events are drawn. Each view keeps a model that
// every event updates at once, and touches the page only in render(),
// which the page calls at most once a frame for the views that changed:
// a burst of replayed events, or 50 a second, costs one layout per frame.
// Event data is the publishers' and is shown as text, never as markup.

const feedLength = 12;  // task assignments and scaling events shown
const runsShown = 12;   // workflow runs in a timeline
const logLength = 100;  // events in a plain room's log
const otherLength = 30; // other (custom) events in a pool's log panel
const trendWindow = 5 * 60 * 1000; // ms of a pool's trend drawn
const trendPoints = 600;           // points a trend keeps: older ones are thinned

// The pool events a PoolView draws in its own parts; any other event of a
// pool room goes to its log panel.
const poolEvents = new Set(["worker.status_changed", "task.assigned", "task.completed", "task.failed",
  "pool.scaling", "pool.status_changed", "worker.removed"]);

const byName = new Intl.Collator(undefined, { numeric: true }).compare;

// viewFor returns the view for a room of kind, drawn inside body.
export function viewFor(kind, body) {
  switch (kind) {
    case "pool": return new PoolView(body);
    case "workflow": return new WorkflowView(body);
    default: return new LogView(body);
  }
}

function clone(id) {
  return document.getElementById(id).content.firstElementChild.cloneNode(true);
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// clock is an event's stored time as the reader's local time of day.
export function clock(ts) {
  const d = new Date(ts);
  return isNaN(d) ? "" : d.toLocaleTimeString([], { hour12: false });
}

function timeEl(ts) {
  const t = el("time", "", clock(ts));
  if (ts) t.dateTime = ts;
  return t;
}

// brief is a short text of a value for a line: strings as they are, an
// object as its fields (key: value, ...), the rest as JSON.
function brief(v) {
  if (v === undefined || v === null) return "";
  let s;
  if (typeof v === "string") s = v;
  else if (typeof v === "object" && !Array.isArray(v)) {
    s = Object.entries(v).map(([k, x]) => `${k.replaceAll("_", " ")}: ${typeof x === "string" ? x : JSON.stringify(x)}`).join(", ");
  } else s = JSON.stringify(v);
  return s.length > 160 ? s.slice(0, 157) + "…" : s;
}

function isObject(v) {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// PoolView: a tile per worker coloured by status, the pool's counts, and
// the latest task assignments and scaling events.
class PoolView {
  constructor(body) {
    this.root = clone("pool-tpl");
    body.append(this.root);
    this.q = (c) => this.root.querySelector(c);
    this.tilesEl = this.q(".tiles");
    this.workers = new Map();  // id -> {status, el}
    this.changed = new Set();  // worker ids to draw
    this.removed = [];         // tiles to take away
    this.tasks = [];
    this.scaling = [];
    this.tasksSeen = 0;
    this.workerCount = null;
    this.queueSize = null;
    this.feedsChanged = false;
    this.busy = 0;         // workers whose status is busy
    this.done = 0;         // task.completed seen
    this.failed = 0;       // task.failed seen
    this.others = [];      // other events of the room, newest first
    this.othersSeen = 0;
    this.queueTrend = new Trend(this.q(".trend-queue"));
    this.busyTrend = new Trend(this.q(".trend-busy"));
  }

  apply(msg) {
    const d = isObject(msg.data) ? msg.data : {};
    // An event that ends a worker's key (docs/protocol.md, "Keys"): the
    // worker left, whatever the event is called.
    if (msg.key_deleted === true && typeof msg.key === "string" && msg.key.startsWith("worker:")) {
      this.removeWorker(msg.key.slice("worker:".length));
    }
    switch (msg.event) {
      case "worker.status_changed":
        if (d.worker_id !== undefined) this.setWorker(String(d.worker_id), String(d.status ?? "unknown"));
        this.busyTrend.add(msg.ts, this.busy);
        break;
      case "task.assigned":
        this.tasksSeen++;
        this.task(msg.ts, d, "assigned", "");
        break;
      case "task.completed":
        this.done++;
        this.task(msg.ts, d, "completed", "");
        break;
      case "task.failed":
        this.failed++;
        this.task(msg.ts, d, "failed", brief(d.error ?? "no error given"));
        break;
      case "pool.scaling":
        this.scale(msg.ts, d);
        this.busyTrend.add(msg.ts, this.busy);
        break;
      case "worker.removed":
        this.scale(msg.ts, { ...d, event_type: "worker_removed" });
        this.busyTrend.add(msg.ts, this.busy);
        break;
      case "pool.status_changed": {
        const s = isObject(d.status) ? d.status : {};
        if (typeof s.worker_count === "number") this.workerCount = s.worker_count;
        if (typeof s.queue_size === "number") {
          this.queueSize = s.queue_size;
          this.queueTrend.add(msg.ts, s.queue_size);
        }
        this.feedsChanged = true;
        break;
      }
      default:
        this.others.unshift({ ts: msg.ts, seq: msg.seq, event: String(msg.event ?? "?"), text: brief(msg.data) });
        this.others.length = Math.min(this.others.length, otherLength);
        this.othersSeen++;
        this.feedsChanged = true;
    }
  }

  // task puts a task's latest news at the top of the feed: an outcome
  // replaces the task's assignment there (the worker kept when the
  // outcome does not name one).
  task(ts, d, outcome, detail) {
    const id = String(d.task_id ?? "?");
    const i = this.tasks.findIndex((t) => t.task === id);
    const before = i >= 0 ? this.tasks.splice(i, 1)[0] : null;
    const worker = d.worker_id != null ? String(d.worker_id) : (before?.worker ?? "?");
    this.tasks.unshift({ ts, task: id, worker, outcome, detail });
    this.tasks.length = Math.min(this.tasks.length, feedLength);
    this.feedsChanged = true;
  }

  setWorker(id, status) {
    const w = this.workers.get(id);
    if (w) {
      if (w.status === "busy") this.busy--;
      w.status = status;
    } else this.workers.set(id, { status, el: null });
    if (status === "busy") this.busy++;
    this.changed.add(id);
  }

  removeWorker(id) {
    const w = this.workers.get(id);
    if (!w) return;
    if (w.status === "busy") this.busy--;
    this.workers.delete(id);
    this.changed.delete(id);
    if (w.el) this.removed.push(w.el);
  }

  scale(ts, d) {
    const kind = String(d.event_type ?? "scaling");
    const worker = d.worker_id != null ? String(d.worker_id) : "";
    if (kind === "worker_removed" && worker) {
      this.removeWorker(worker);
    } else if (kind === "worker_added" && worker && !this.workers.has(worker)) {
      this.setWorker(worker, "added");
    }
    const { pool_id, event_type, timestamp, ...details } = d;
    // A worker's id alone says it all; other details are listed.
    const keys = Object.keys(details);
    const text = keys.length === 1 && keys[0] === "worker_id" ? worker : brief(keys.length ? details : "");
    this.scaling.unshift({ ts, kind, details: text });
    this.scaling.length = Math.min(this.scaling.length, feedLength);
    this.feedsChanged = true;
  }

  render() {
    for (const e of this.removed) e.remove();
    this.removed = [];
    let added = false;
    for (const id of this.changed) {
      const w = this.workers.get(id);
      if (!w.el) {
        w.el = el("div", "tile");
        w.el.setAttribute("role", "listitem");
        w.el.dataset.worker = id;
        w.el.append(el("span", "", id), el("small"));
        added = true;
      }
      w.el.dataset.status = w.status;
      w.el.lastChild.textContent = w.status;
      w.el.title = `${id}: ${w.status}`;
    }
    this.changed.clear();
    if (added) {
      const ids = [...this.workers.keys()].sort(byName);
      this.tilesEl.replaceChildren(...ids.map((id) => this.workers.get(id).el));
    }
    this.renderCounts();
    if (this.feedsChanged) this.renderFeeds();
    this.queueTrend.render();
    this.busyTrend.render();
  }

  renderCounts() {
    const n = { busy: 0, idle: 0, error: 0 };
    for (const w of this.workers.values()) if (w.status in n) n[w.status]++;
    this.q(".n-busy").textContent = n.busy;
    this.q(".n-idle").textContent = n.idle;
    this.q(".n-error").textContent = n.error;
    this.q(".worker-count").textContent = this.workerCount ?? this.workers.size;
    this.q(".queue-size").textContent = this.queueSize ?? "–";
    this.q(".n-tasks").textContent = this.tasksSeen;
    this.q(".n-done").textContent = this.done;
    this.q(".n-failed").textContent = this.failed;
  }

  renderFeeds() {
    this.feedsChanged = false;
    this.q(".tasks").replaceChildren(...this.tasks.map((t) => {
      const li = el("li");
      li.dataset.task = t.task;
      li.dataset.outcome = t.outcome;
      const what = el("span", "what", `${t.task} → ${t.worker}`);
      li.append(timeEl(t.ts), el("span", "tag outcome", t.outcome), what);
      if (t.detail) {
        li.append(el("span", "detail", t.detail));
        li.title = `${t.task} failed on ${t.worker}: ${t.detail}`;
      }
      return li;
    }));
    this.q(".others").replaceChildren(...this.others.map((o) => {
      const li = el("li");
      li.dataset.event = o.event;
      li.dataset.seq = o.seq;
      li.append(timeEl(o.ts), el("span", "tag", o.event), el("span", "what", o.text));
      return li;
    }));
    this.q(".others-section").hidden = this.othersSeen === 0;
    this.q(".scaling").replaceChildren(...this.scaling.map((s) => {
      const li = el("li");
      const tag = el("span", "tag", s.kind.replaceAll("_", " "));
      tag.dataset.kind = /added|up/.test(s.kind) ? "up" : /removed|down/.test(s.kind) ? "down" : "";
      li.append(timeEl(s.ts), tag, el("span", "what", s.details));
      return li;
    }));
  }
}

// WorkflowView: a timeline of a workflow room's runs, newest first: when
// each started, its stages as they completed, and how it ended.
class WorkflowView {
  constructor(body) {
    this.list = clone("workflow-tpl");
    body.append(this.list);
    this.runs = [];          // newest first
    this.changed = new Set();
  }

  apply(msg) {
    const d = msg.data || {};
    const id = String(d.workflow_id ?? "?");
    let run = this.runs.find((r) => r.id === id);
    if (msg.event === "workflow.started" || !run) {
      // A stage with no start seen began before the retained history.
      run = { id, started: msg.event === "workflow.started" ? msg.ts : "", adapter: "", prompt: "",
        stages: [], outcome: "running", detail: "", el: null };
      this.runs.unshift(run);
      if (this.runs.length > runsShown) this.runs.pop().el?.remove();
    }
    switch (msg.event) {
      case "workflow.started":
        run.adapter = brief(d.adapter);
        run.prompt = brief(d.prompt);
        break;
      case "workflow.stage_completed":
        run.stages.push({ name: brief(d.stage_name ?? "stage"), ts: msg.ts });
        break;
      case "workflow.completed":
        run.outcome = "completed";
        run.detail = brief(d.result);
        break;
      case "workflow.failed":
        run.outcome = "failed";
        run.detail = brief(d.error);
        break;
      default:
        run.stages.push({ name: msg.event, ts: msg.ts });
    }
    run.ended = run.outcome !== "running" ? msg.ts : "";
    this.changed.add(run);
  }

  render() {
    for (const run of this.changed) this.drawRun(run);
    this.changed.clear();
    const els = this.runs.map((r) => r.el).filter(Boolean);
    if (els.some((e, i) => this.list.children[i] !== e)) this.list.replaceChildren(...els);
  }

  drawRun(run) {
    if (!run.el) {
      run.el = el("li", "run");
      run.el.dataset.workflow = run.id;
    }
    run.el.dataset.outcome = run.outcome;
    const head = el("div", "head");
    head.append(el("span", "id", run.id), el("span", "outcome", run.outcome));
    if (run.started) head.append(timeEl(run.started));
    if (run.adapter) head.append(el("span", "adapter", run.adapter));
    if (run.prompt) head.append(el("span", "prompt", run.prompt));
    const stages = el("ol", "stages");
    for (const s of run.stages) {
      const li = el("li", "stage", s.name);
      li.dataset.stage = s.name;
      li.append(timeEl(s.ts));
      stages.append(li);
    }
    const parts = [head, stages];
    if (run.detail) parts.push(el("p", "detail", run.detail));
    run.el.replaceChildren(...parts);
  }
}

// LogView: any other room, as a log of its latest events.
class LogView {
  constructor(body) {
    this.list = clone("log-tpl");
    body.append(this.list);
    this.fresh = [];
  }

  apply(msg) {
    this.fresh.push(msg);
    if (this.fresh.length > logLength) this.fresh.shift();
  }

  render() {
    const items = this.fresh.reverse().map((m) => {
      const li = el("li");
      li.dataset.seq = m.seq;
      li.append(timeEl(m.ts), el("span", "tag", m.event ?? "?"), el("span", "what", brief(m.data)));
      return li;
    });
    this.fresh = [];
    this.list.prepend(...items);
    while (this.list.children.length > logLength) this.list.lastChild.remove();
  }
}

// Trend is a small step chart of one of a pool's numbers over the last
// minutes (trendWindow), drawn as inline SVG, with a dot at the right
// edge for the value now. A point is kept per change of the value, at the
// event's stored time; past trendPoints the older half is thinned, so a
// busy pool costs a bounded drawing. While it has points the chart slides
// with the clock (every trendSlide ms), until its panel is closed.
const svgNS = "http://www.w3.org/2000/svg";
const chartW = 240;
const chartH = 48;
const trendSlide = 5000;

class Trend {
  constructor(figure) {
    this.figure = figure;
    this.points = []; // {t: ms, v}, oldest first
    this.changed = false;
    this.timer = 0;
    const svg = (tag, attrs) => {
      const e = document.createElementNS(svgNS, tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
      return e;
    };
    this.svg = svg("svg", { viewBox: `0 0 ${chartW} ${chartH}`, role: "img" });
    this.area = svg("path", { class: "area" });
    this.line = svg("path", { class: "line" });
    this.dot = svg("circle", { class: "dot", r: 2.5, cx: chartW - 3, cy: chartH - 2 });
    this.dot.style.display = "none";
    this.svg.append(svg("line", { class: "base", x1: 0, x2: chartW, y1: chartH - 2, y2: chartH - 2 }),
      this.area, this.line, this.dot);
    this.figure.querySelector(".chart").append(this.svg);
  }

  add(ts, v) {
    if (typeof v !== "number" || !isFinite(v)) return;
    let t = Date.parse(ts);
    if (isNaN(t)) t = Date.now();
    const last = this.points.at(-1);
    if (last && last.v === v) return; // a step chart needs only changes
    if (last && t < last.t) t = last.t; // never backwards: stored times may tie
    this.points.push({ t, v });
    if (this.points.length > trendPoints) this.thin();
    this.changed = true;
    if (!this.timer) this.timer = setInterval(() => this.slide(), trendSlide);
  }

  // thin drops every other point of the older half.
  thin() {
    const half = this.points.length >> 1;
    this.points = this.points.filter((_, i) => i >= half || i % 2 === 0);
  }

  slide() {
    if (!this.figure.isConnected) {
      clearInterval(this.timer); // the panel was closed
      return;
    }
    this.changed = true;
    this.render();
  }

  render() {
    if (!this.changed) return;
    this.changed = false;
    const end = Math.max(Date.now(), this.points.at(-1)?.t ?? 0);
    const start = end - trendWindow;
    // The last point before the window starts the line at its left edge.
    this.points = this.points.slice(Math.max(0, this.points.findLastIndex((p) => p.t <= start)));
    const shown = this.points;
    const last = shown.at(-1);
    const max = Math.max(1, ...shown.map((p) => p.v));
    const x = (t) => ((Math.max(t, start) - start) / trendWindow * (chartW - 3)).toFixed(1);
    const y = (v) => (chartH - 2 - Math.max(0, v) / max * (chartH - 6)).toFixed(1);
    let d = "";
    shown.forEach((p, i) => { d += i === 0 ? `M${x(p.t)},${y(p.v)}` : `H${x(p.t)}V${y(p.v)}`; });
    if (last) d += `H${chartW - 3}`;
    this.line.setAttribute("d", d);
    this.area.setAttribute("d", last ? `${d}V${chartH - 2}H${x(shown[0].t)}Z` : "");
    this.dot.style.display = last ? "" : "none";
    if (last) this.dot.setAttribute("cy", y(last.v));
    this.figure.dataset.points = shown.length;
    this.figure.dataset.last = last ? last.v : "";
    this.figure.querySelector(".now").textContent = last ? last.v : "–";
    this.figure.querySelector(".max").textContent = last ? `max ${max} · ${trendWindow / 60000} min` : "";
    this.svg.setAttribute("aria-label", `${this.figure.dataset.label}: ${shown.length} changes in the last ` +
      `${trendWindow / 60000} minutes, now ${last ? last.v : "unknown"}, at most ${max}`);
  }
}

// Freshness marks a room's panel stale while the room is not live after
// it has been (the connection is down, or being resumed): the panel is
// greyed and says how long ago what it shows was last known current: when
// the node last sent anything, so a silent network, noticed only when a
// ping goes unanswered, shows its full age.
export class Freshness {
  constructor(article) {
    this.article = article;
    this.wasLive = false;
    this.since = 0; // ms: when the panel was last known current
    this.timer = 0; // ticks the age while stale; cleared when live or gone
    this.label = el("span", "stale-age");
    this.label.hidden = true;
    article.querySelector("header .counts").after(this.label);
  }

  // draw follows the room's state: called whenever its panel is drawn,
  // with when the node was last heard from (ms, 0: never).
  draw(room, heardAt) {
    if (room.state === "live") {
      this.wasLive = true;
      this.clear();
      return;
    }
    if (!this.wasLive || this.timer) return;
    this.since = heardAt > 0 ? Math.min(heardAt, Date.now()) : Date.now();
    this.article.dataset.stale = "true";
    this.label.hidden = false;
    this.label.title = `nothing from the node since ${clock(new Date(this.since))}: the connection is down or resuming`;
    this.tick();
    this.timer = setInterval(() => this.tick(), 1000);
  }

  tick() {
    if (!this.article.isConnected) {
      this.clear(); // the panel was closed
      return;
    }
    const s = Math.floor((Date.now() - this.since) / 1000);
    this.label.dataset.age = s;
    this.label.textContent = `last update ${ago(s)} ago`;
  }

  // clear ends the stale marking (and its timer).
  clear() {
    clearInterval(this.timer);
    this.timer = 0;
    delete this.article.dataset.stale;
    this.label.hidden = true;
  }
}

// ago is a duration in seconds, short: "12 s", "3 min 5 s", "2 h 4 min".
function ago(s) {
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor(s / 60) % 60} min`;
}
