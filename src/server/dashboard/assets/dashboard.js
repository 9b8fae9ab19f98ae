// greenroom dashboard: live updates. The pages work without this file;
// with it, a server-sent event ("change") re-fetches the page's content
// (the server answers the fragment inside #live) and swaps it in place,
// keeping keyboard focus where it was.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var status = document.getElementById("live-status");
  if (!live || !status || !window.EventSource || !window.fetch) {
    return;
  }
  var busy = false;
  var again = false;
  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(location.href, {
      headers: { "X-Greenroom-Fragment": "1" },
      credentials: "same-origin",
      cache: "no-store"
    })
      .then(function (r) {
        if (!r.ok) {
          throw new Error("HTTP " + r.status);
        }
        return r.text();
      })
      .then(function (html) {
        var active = document.activeElement;
        var id = active && live.contains(active) ? active.id : "";
        live.innerHTML = html;
        if (id) {
          var el = document.getElementById(id);
          if (el) {
            el.focus();
          }
        }
        live.setAttribute("data-updated", String(Date.now()));
        status.textContent = "Live: updated at " + new Date().toLocaleTimeString();
      })
      .catch(function () {
        status.textContent = "Live updates interrupted; retrying.";
      })
      .then(function () {
        busy = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }
  var events = new EventSource("/events");
  events.addEventListener("change", refresh);
  events.onopen = function () {
    status.textContent = "Live: connected.";
  };
  events.onerror = function () {
    status.textContent = "Live updates interrupted; reconnecting.";
  };
})();
