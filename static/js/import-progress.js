// The import page's progress bar: polls the run's JSON status, moves the bar, and reloads the
// page when the import has finished, to show its summary or its problems. A file of its own
// because the Content-Security-Policy allows no inline script. Without it, the page's
// "Refresh" link does the same by hand.
(function () {
  "use strict";
  var box = document.getElementById("import-progress");
  if (!box || !window.fetch) {
    return;
  }
  var url = box.getAttribute("data-status-url");
  var bar = box.querySelector("[data-import-bar]");
  var label = box.querySelector("[data-import-label]");
  var count = box.querySelector("[data-import-count]");
  var interval = 1000;
  var failures = 0;

  function show(status) {
    label.textContent = status.label;
    if (status.total > 0) {
      bar.max = status.total;
      bar.value = status.processed;
      bar.textContent = status.percent + "%";
      count.textContent = status.processed.toLocaleString() + " of " +
        status.total.toLocaleString() + " rows (" + status.percent + "%)";
    }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (status) {
        failures = 0;
        show(status);
        if (status.finished) {
          window.location.assign(status.url);
        } else {
          window.setTimeout(poll, interval);
        }
      })
      .catch(function () {
        // A signed-out session or a restarting server: back off, then leave it to the
        // Refresh link rather than polling forever.
        failures += 1;
        if (failures < 5) {
          window.setTimeout(poll, interval * 2 * failures);
        }
      });
  }

  window.setTimeout(poll, interval);
})();
