// loanflow console: countdowns to each case's deadline, and live parts of a page reloaded
// from the server every few seconds. No library; the pages work without it (reload by hand).
(function () {
  "use strict";
  function fmt(ms) {
    var s = Math.ceil(ms / 1000), m = Math.floor(s / 60);
    s = s % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }
  function tick() {
    var els = document.querySelectorAll("[data-deadline]");
    for (var i = 0; i < els.length; i++) {
      var el = els[i], ms = Date.parse(el.getAttribute("data-deadline")) - Date.now();
      el.textContent = ms > 0 ? fmt(ms) : el.getAttribute("data-expired");
      el.className = ms <= 0 ? "late expired" : (ms < 30000 ? "late" : "");
    }
  }
  function live(el) {
    var every = parseInt(el.getAttribute("data-every"), 10) || 3000;
    setInterval(function () {
      fetch(el.getAttribute("data-live"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) {
          if (r.redirected || !r.ok) { location.reload(); return null; }
          return r.text();
        })
        .then(function (html) {
          if (html !== null) { el.innerHTML = html; tick(); }
        })
        .catch(function () { /* offline for a moment: try again next time */ });
    }, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var els = document.querySelectorAll("[data-live]");
    for (var i = 0; i < els.length; i++) { live(els[i]); }
    tick();
    setInterval(tick, 1000);
  });
})();
