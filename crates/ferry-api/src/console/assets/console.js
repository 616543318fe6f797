// Ferry console: confirmations for action forms and polling of the live part of a page.
// Loaded with `defer` from /console/static/console.js (the CSP allows no inline script).
(function () {
  "use strict";
  var POLL_MS = 2000;

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      ev.preventDefault();
    }
  });

  var live = document.getElementById("live");
  if (!live) {
    return;
  }
  var url = live.getAttribute("data-live");
  var busy = false;
  // The action buttons follow the job's state at page load: when the state changes, the page
  // is reloaded (unless a field is being edited).
  function state() {
    var el = live.querySelector("[data-status]");
    return el ? el.getAttribute("data-status") : null;
  }
  var loadedState = state();
  function poll() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.status === 401) {
          window.location.assign("/console/login");
          return null;
        }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== undefined) {
          live.innerHTML = html;
          live.setAttribute("data-updated", String(Date.now()));
          var editing = document.activeElement && document.activeElement.tagName === "INPUT";
          if (loadedState !== null && state() !== loadedState && !editing) {
            window.location.replace(window.location.pathname);
          }
        }
      })
      .catch(function () {})
      .then(function () {
        busy = false;
      });
  }
  window.setInterval(poll, POLL_MS);
})();
