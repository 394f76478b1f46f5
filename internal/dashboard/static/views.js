// views.js: how a room's events are drawn. Each view keeps a model that
// every event updates at once, and touches the page only in render(),
// which the page calls at most once a frame for the views that changed:
// a burst of replayed events, or 50 a second, costs one layout per frame.
// Event data is the publishers' and is shown as text, never as markup.

const feedLength = 12;  // task assignments and scaling events shown
const runsShown = 12;   // workflow runs in a timeline
const logLength = 100;  // events in a plain room's log

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
  }

  apply(msg) {
    const d = msg.data || {};
    switch (msg.event) {
      case "worker.status_changed":
        if (d.worker_id) this.setWorker(String(d.worker_id), String(d.status ?? "unknown"));
        break;
      case "task.assigned":
        this.tasksSeen++;
        this.tasks.unshift({ ts: msg.ts, task: String(d.task_id ?? "?"), worker: String(d.worker_id ?? "?") });
        this.tasks.length = Math.min(this.tasks.length, feedLength);
        this.feedsChanged = true;
        break;
      case "pool.scaling":
        this.scale(msg.ts, d);
        break;
      case "pool.status_changed": {
        const s = d.status || {};
        if (typeof s.worker_count === "number") this.workerCount = s.worker_count;
        if (typeof s.queue_size === "number") this.queueSize = s.queue_size;
        this.feedsChanged = true;
        break;
      }
    }
  }

  setWorker(id, status) {
    const w = this.workers.get(id);
    if (w) w.status = status;
    else this.workers.set(id, { status, el: null });
    this.changed.add(id);
  }

  scale(ts, d) {
    const kind = String(d.event_type ?? "scaling");
    const worker = d.worker_id !== undefined ? String(d.worker_id) : "";
    if (kind === "worker_removed" && worker) {
      const w = this.workers.get(worker);
      if (w) {
        this.workers.delete(worker);
        this.changed.delete(worker);
        if (w.el) this.removed.push(w.el);
      }
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
  }

  renderFeeds() {
    this.feedsChanged = false;
    this.q(".tasks").replaceChildren(...this.tasks.map((t) => {
      const li = el("li");
      li.dataset.task = t.task;
      li.append(timeEl(t.ts), el("span", "what", `${t.task} → ${t.worker}`));
      return li;
    }));
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
