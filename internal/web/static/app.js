// sts pages: the only script besides htmx. No inline script anywhere
// (Content-Security-Policy script-src 'self').
(function () {
  "use strict";
  // Copy buttons: <button data-copy="ID"> copies the value of #ID.
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button[data-copy]");
    if (!b) { return; }
    var field = document.getElementById(b.getAttribute("data-copy"));
    var status = document.getElementById("copy-status");
    var done = function (text) { if (status) { status.textContent = text; } };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(field.value).then(function () { done("Copied."); }, function () {
        field.select(); done("Press Ctrl+C to copy.");
      });
    } else {
      field.select(); done("Press Ctrl+C to copy.");
    }
  });
  // A form htmx submits in the background and the server refuses (400 a
  // mistake in the form, 401 the session ended, 403, 404, 503 storage
  // unavailable) is answered with one of our pages saying what is wrong
  // and, for a mistake, the form as typed. htmx swaps only 2xx answers by
  // default, so the button would seem to do nothing: show our page's
  // content whatever its status (docs/security.md T-114). An answer that
  // is not one of our pages (a proxy's error) is left alone.
  document.addEventListener("htmx:beforeSwap", function (ev) {
    var d = ev.detail;
    if (d.xhr.status >= 400 && /<main id="content">/.test(d.serverResponse || "")) {
      d.shouldSwap = true;
      d.isError = false;
    }
  });
  // A one-time sign-in link carries its secret in the fragment, which the
  // browser never sends: put it in the form, drop it from the address bar
  // and history, and sign in, but only when the server marked the page
  // (data-auto-submit) as not opened by another site; otherwise the
  // person clicks Sign in (docs/security.md T-105).
  function signInFromLink() {
    var form = document.getElementById("link-form");
    if (!form || location.hash.length < 2) { return; }
    var token = document.getElementById("link-token");
    token.value = decodeURIComponent(location.hash.slice(1));
    history.replaceState(null, "", location.pathname + location.search);
    if (form.hasAttribute("data-auto-submit")) {
      form.submit();
    } else {
      form.querySelector("button[type=submit]").focus();
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", signInFromLink);
  } else {
    signInFromLink();
  }
})();
