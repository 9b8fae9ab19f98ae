// greenroom dashboard: live updates. The pages work without this file;
// with it, a server-sent event ("change") re-fetches the page's content
// (the server answers the fragment inside #live) and swaps it in place,
// keeping keyboard focus where it was. A running cycle's log page appends
// its new lines from the log's stream (the second function below).
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

// A running cycle's log page: the lines written after the page was
// rendered arrive from the log's stream (server-sent events, from the
// byte offset the page rendered up to; the browser reconnects from the
// last event's id) and are appended as text, never as markup. The view
// follows new lines only while the reader is at the bottom.
(function () {
  "use strict";
  var log = document.getElementById("log");
  var status = document.getElementById("log-status");
  if (!log || !status || !window.EventSource) {
    return;
  }
  var url = log.getAttribute("data-stream");
  if (!url) {
    return;
  }
  // Very long sessions keep the newest text only.
  var MAX_NODES = 5000;
  function atBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  }
  function append(text) {
    var stick = atBottom();
    log.appendChild(document.createTextNode(text));
    while (log.childNodes.length > MAX_NODES) {
      log.removeChild(log.firstChild);
    }
    if (stick) {
      log.scrollTop = log.scrollHeight;
    }
  }
  log.scrollTop = log.scrollHeight;
  var from = log.getAttribute("data-from") || "0";
  var source = new EventSource(url + "?from=" + encodeURIComponent(from));
  source.addEventListener("hello", function () {
    status.textContent = "Live log: connected; new lines appear as they are written.";
  });
  source.addEventListener("log", function (e) {
    append(e.data);
    log.setAttribute("data-offset", e.lastEventId);
  });
  source.addEventListener("skipped", function (e) {
    append("… (" + e.data + " bytes left out: reload for the log's end)\n");
  });
  source.addEventListener("end", function () {
    source.close();
    status.textContent = "The cycle finished: the log is complete.";
  });
  source.addEventListener("gone", function (e) {
    source.close();
    status.textContent = "Live log stopped: " + e.data + ".";
  });
  source.onerror = function () {
    if (source.readyState === EventSource.CLOSED) {
      status.textContent = "Live log unavailable; reload for newer lines.";
    } else {
      status.textContent = "Live log interrupted; reconnecting.";
    }
  };
})();
