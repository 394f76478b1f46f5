// rooms.js: the list of rooms with recent events that the page's token may
// read, asked of the node with a rooms request (docs/protocol.md section 3)
// when the link goes live and every refreshEvery while it stays live and
// the tab is shown. A click on a room opens it.

const refreshEvery = 10000; // ms; the node keeps its list 2 s, so more often gains nothing

// RoomList draws the node's list of rooms into list (a <ul>); open(name)
// opens a room.
export class RoomList {
  constructor(link, list, open) {
    this.link = link;
    this.list = list;
    this.open = open;
    this.timer = 0;
    this.asking = false;
  }

  // live starts the refreshes when the link is live, and stops them when
  // it is not (the list stays, as it was last read).
  live(isLive) {
    clearInterval(this.timer);
    this.timer = 0;
    if (!isLive) return;
    this.refresh();
    this.timer = setInterval(() => { if (!document.hidden) this.refresh(); }, refreshEvery);
  }

  async refresh() {
    if (this.asking) return; // one request at a time: the rate limit counts them
    this.asking = true;
    try {
      this.draw(await this.link.request("rooms"));
    } catch (e) {
      this.note(`room list: ${e.message}`);
    } finally {
      this.asking = false;
    }
  }

  draw(res) {
    const rooms = res.rooms || [];
    if (rooms.length === 0) {
      this.note("no events in the last hour in rooms this token may read");
      return;
    }
    const items = rooms.map((r) => {
      const li = document.createElement("li");
      li.dataset.room = r.room;
      const a = Object.assign(document.createElement("a"), { href: "#", textContent: r.room, title: "open this room" });
      a.dataset.room = r.room;
      a.addEventListener("click", (e) => { e.preventDefault(); this.open(r.room); });
      const when = Object.assign(document.createElement("span"), { className: "seq", textContent: ago(r.ts) });
      when.title = `last event: seq ${r.seq} at ${new Date(r.ts).toLocaleString()}`;
      li.append(a, when);
      return li;
    });
    if (res.truncated) items.push(Object.assign(document.createElement("li"), { className: "empty", textContent: "more rooms had events: the newest are shown" }));
    this.list.replaceChildren(...items);
  }

  note(text) {
    this.list.replaceChildren(Object.assign(document.createElement("li"), { className: "empty", textContent: text }));
  }
}

// ago says how long ago ts was, roughly.
function ago(ts) {
  const s = Math.max(0, Math.round((Date.now() - new Date(ts).getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}
