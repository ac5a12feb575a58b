// The live tail: records arrive as server-sent events (JSON) and are added as
// text (textContent), never as HTML. Scrolling up pauses it: new records wait
// until the reader is back at the bottom (or presses resume).
"use strict";
(function () {
  const table = document.getElementById("live");
  const body = table.tBodies[0];
  const state = document.getElementById("state");
  const resume = document.getElementById("resume");
  const KEEP = 5000;
  let paused = false;
  let waiting = [];
  let pending = [];
  let received = 0;
  let timer = null;

  function atBottom() {
    return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 40;
  }

  function cell(tr, cls, text) {
    const td = document.createElement("td");
    td.className = cls;
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }

  function row(r) {
    const tr = document.createElement("tr");
    tr.id = "r" + r.id;
    tr.className = "rec " + r.cls;
    const time = cell(tr, "t", "");
    const link = document.createElement("a");
    link.href = r.href;
    link.textContent = r.time;
    time.appendChild(link);
    cell(tr, "stream", r.host);
    cell(tr, "lv", r.level);
    cell(tr, "ts", r.ts);
    const msg = cell(tr, "msg", r.text);
    if (r.incomplete) {
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = "incomplete";
      msg.append(" ", tag);
    }
    return tr;
  }

  function show() {
    resume.hidden = !paused;
    state.textContent = paused
      ? "paused: " + waiting.length + (waiting.length === 1 ? " new record waits" : " new records wait")
        + "; scroll to the bottom to follow"
      : "following: " + received + " records";
  }

  function append(records) {
    const rows = document.createDocumentFragment();
    for (const r of records) rows.appendChild(row(r));
    body.appendChild(rows);
    while (body.rows.length > KEEP) body.deleteRow(0);
    window.scrollTo(0, document.documentElement.scrollHeight);
  }

  function flush() {
    timer = null;
    if (paused) {
      waiting = waiting.concat(pending);
    } else {
      append(pending);
    }
    pending = [];
    show();
  }

  function follow() {
    paused = false;
    const records = waiting;
    waiting = [];
    append(records);
    show();
  }

  const source = new EventSource(table.dataset.src);
  source.onopen = show;
  source.onmessage = function (event) {
    pending.push(JSON.parse(event.data));
    received += 1;
    if (timer === null) timer = setTimeout(flush, 50);
  };
  source.addEventListener("problem", function (event) {
    state.textContent = "the store cannot answer: " + JSON.parse(event.data);
  });
  source.onerror = function () {
    state.textContent = "connection lost; reconnecting…";
  };
  window.addEventListener("scroll", function () {
    const bottom = atBottom();
    if (!bottom && !paused) {
      paused = true;
      show();
    } else if (bottom && paused) {
      follow();
    }
  }, { passive: true });
  resume.addEventListener("click", follow);
})();
