// vantage status page: swap in a fresh copy of the live part every few
// seconds. No framework, no build step; the page works without it.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.fetch) return;
  var period = (parseInt(live.getAttribute("data-refresh"), 10) || 10) * 1000;
  var note = document.getElementById("refresh-note");
  var busy = false;

  function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(location.pathname + "?fragment=1", { cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        // Keep keyboard focus where it was when the element still exists.
        var focused = document.activeElement && document.activeElement.closest("[data-target]");
        var key = focused && focused.getAttribute("data-target");
        // Folded sections the reader opened stay open.
        var open = Array.prototype.map.call(live.querySelectorAll("details[open][id]"), function (d) { return d.id; });
        live.innerHTML = html;
        open.forEach(function (id) {
          var d = document.getElementById(id);
          if (d) d.open = true;
        });
        if (key) {
          var el = live.querySelector('[data-target="' + CSS.escape(key) + '"] a');
          if (el) el.focus({ preventScroll: true });
        }
        if (note) note.textContent = "Updates every " + period / 1000 + "s.";
      })
      .catch(function (e) {
        if (note) note.textContent = "Update failed (" + e.message + "); retrying.";
      })
      .then(function () { busy = false; });
  }
  setInterval(refresh, period);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
})();
