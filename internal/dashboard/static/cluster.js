// cluster.js: the cluster view, every node of the cluster with its load
// and the cluster's slowest connections, asked of the node with a cluster
// request (docs/protocol.md section 3) when the link goes live and every
// refreshEvery while it stays live and the tab is shown. Only tokens with
// `admin` (or anyone, on a node without auth) may ask: the view shows
// itself when the node answers, and hides on FORBIDDEN or UNAUTHENTICATED
// until the link goes live again (a new token).

const refreshEvery = 5000; // ms; nodes publish their status every second
const slowestShown = 10;

// ClusterView draws the node's answers into section (hidden until the
// first answer).
export class ClusterView {
  constructor(link, section) {
    this.link = link;
    this.section = section;
    this.nodes = section.querySelector(".cluster-nodes tbody");
    this.slow = section.querySelector(".cluster-slowest tbody");
    this.summary = section.querySelector(".cluster-summary");
    this.timer = 0;
    this.asking = false;
  }

  // live starts the refreshes when the link is live, and stops them when
  // it is not (the view stays, as it was last read).
  live(isLive) {
    this.stop();
    if (!isLive) return;
    this.refresh();
    this.timer = setInterval(() => { if (!document.hidden) this.refresh(); }, refreshEvery);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = 0;
  }

  async refresh() {
    if (this.asking) return; // one request at a time: the rate limit counts them
    this.asking = true;
    try {
      this.draw(await this.link.request("cluster"));
    } catch (e) {
      const refused = /^(FORBIDDEN|UNAUTHENTICATED)\b/.exec(e.message);
      if (refused) {
        // Not this token's to see: no view, and no more asking.
        this.section.hidden = true;
        this.section.dataset.state = refused[1].toLowerCase();
        this.stop();
      } else if (!this.section.hidden) {
        this.section.dataset.state = "error";
        this.summary.textContent = `cluster: ${e.message}`;
      }
    } finally {
      this.asking = false;
    }
  }

  draw(view) {
    const nodes = view.nodes || [];
    let conns = 0;
    let rooms = 0;
    for (const n of nodes) {
      conns += n.connections;
      rooms += n.rooms;
    }
    this.section.hidden = false;
    this.section.dataset.state = "shown";
    this.summary.textContent = `${nodes.length} node${nodes.length === 1 ? "" : "s"} · ${conns} connections · ${rooms} rooms · updated ${new Date().toLocaleTimeString([], { hour12: false })}`;
    this.nodes.replaceChildren(...nodes.map((n) => {
      const tr = row([n.name || n.id, readiness(n), n.connections, n.rooms,
        rate(n.events_per_second), rate(n.deliveries_per_second), n.lagging, n.shed]);
      tr.dataset.node = n.name || n.id;
      tr.dataset.ready = n.ready;
      if (n.id === view.node) tr.classList.add("self");
      return tr;
    }));
    const slow = [];
    for (const n of nodes) for (const c of n.slowest || []) slow.push({ node: n.name || n.id, c });
    slow.sort((a, b) => b.c.lag - a.c.lag || b.c.queued_bytes - a.c.queued_bytes || b.c.oldest_wait_seconds - a.c.oldest_wait_seconds);
    if (slow.length === 0) {
      this.slow.replaceChildren(row(["no connection is behind"], 7));
      return;
    }
    this.slow.replaceChildren(...slow.slice(0, slowestShown).map(({ node, c }) => row([node, c.remote, c.user || "–",
      (c.rooms || []).map((r) => r.room).join(", ") || "–", c.lag, bytes(c.queued_bytes), `${c.oldest_wait_seconds.toFixed(1)} s`])));
  }
}

// row is a table row of cells' text; span makes one cell span that many
// columns.
function row(cells, span) {
  const tr = document.createElement("tr");
  for (const text of cells) {
    const td = Object.assign(document.createElement("td"), { textContent: String(text) });
    if (span) td.colSpan = span;
    tr.append(td);
  }
  return tr;
}

function readiness(n) {
  if (n.draining) return "draining";
  if (n.ready) return "ready";
  return n.reason ? `not ready: ${n.reason}` : "not ready";
}

function rate(x) {
  return (x || 0).toFixed(1);
}

function bytes(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}
