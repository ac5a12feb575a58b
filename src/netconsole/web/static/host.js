// The host timeline: start at the newest record, and load older records as the
// reader scrolls back up. The rows come from the server as HTML that it escaped;
// they are parsed with DOMParser (which runs nothing) and moved in.
"use strict";
(function () {
  const rows = document.getElementById("rows");
  const older = document.getElementById("older");
  const table = document.getElementById("timeline");
  if (!rows) return;
  const around = table && table.dataset.around;
  const target = around && document.getElementById("r" + around);
  if (location.hash) {
    // the browser shows the #rID row itself
  } else if (target) {
    target.classList.add("target");  // a jump to a time: the first record since
    target.scrollIntoView({ block: "center" });
  } else {
    window.scrollTo(0, document.documentElement.scrollHeight);
  }
  if (!older) return;
  let loading = false;

  async function loadOlder() {
    if (loading || !older.dataset.src) return;
    loading = true;
    older.textContent = "loading older records…";
    try {
      const reply = await fetch(older.dataset.src, { credentials: "same-origin" });
      if (!reply.ok) throw new Error("HTTP " + reply.status);
      const doc = new DOMParser().parseFromString(await reply.text(), "text/html");
      const body = doc.querySelector("tbody");
      const before = document.documentElement.scrollHeight;
      const moved = document.createDocumentFragment();
      for (const row of Array.from(body.rows)) moved.appendChild(document.adoptNode(row));
      rows.insertBefore(moved, rows.firstChild);
      // Keep the rows the reader was looking at where they were.
      window.scrollBy(0, document.documentElement.scrollHeight - before);
      if (body.dataset.olderSrc) {
        older.dataset.src = body.dataset.olderSrc;
        older.href = body.dataset.olderHref;
        older.textContent = "older records";
      } else {
        older.removeAttribute("data-src");
        older.removeAttribute("href");
        older.textContent = "the first record stored for this host";
      }
    } catch (err) {
      older.textContent = "could not load older records (" + err.message + "); click to retry";
    } finally {
      loading = false;
    }
  }

  older.addEventListener("click", function (event) {
    event.preventDefault();
    loadOlder();
  });
  new IntersectionObserver(function (entries) {
    if (entries.some(function (e) { return e.isIntersecting; })) loadOlder();
  }, { rootMargin: "300px 0px 0px 0px" }).observe(older);
})();
