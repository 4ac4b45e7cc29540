/**
 * The dashboard's only static assets, embedded so the server needs no file-system access and no
 * CDN. The CSP allows scripts and styles from this origin only, so nothing here is inline.
 */

export const DASHBOARD_JS =
  `// Inbound dashboard: progressive enhancement only; every form works without this file.
"use strict";
(function () {
  function announce(button, text) {
    var status = document.getElementById(button.getAttribute("data-status") || "");
    if (status) status.textContent = text;
  }

  function copyFrom(input) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(input.value);
    }
    input.focus();
    input.select();
    return document.execCommand("copy") ? Promise.resolve() : Promise.reject(new Error("copy"));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var input = document.getElementById(button.getAttribute("data-copy-target"));
    if (!input) return;
    copyFrom(input).then(function () {
      button.textContent = "Copied";
      announce(button, "API key copied to the clipboard.");
      setTimeout(function () { button.textContent = "Copy"; }, 2000);
    }, function () {
      input.focus();
      input.select();
      announce(button, "Could not copy automatically. The key is selected: press Ctrl+C or Cmd+C.");
    });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("input[data-select-on-focus]")) {
      event.target.select();
    }
  });

  // The Roll/Delete confirmations are <details> popovers: one open at a time, Escape closes it.
  function closePopover(details, refocus) {
    details.open = false;
    var summary = details.querySelector("summary");
    if (refocus && summary) summary.focus();
  }
  document.addEventListener("toggle", function (event) {
    var opened = event.target;
    if (!opened.matches || !opened.matches("details.popover") || !opened.open) return;
    var open = document.querySelectorAll("details.popover[open]");
    for (var j = 0; j < open.length; j++) if (open[j] !== opened) closePopover(open[j], false);
  }, true);
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = document.querySelectorAll("details.popover[open]");
    if (open.length === 0) return;
    event.preventDefault();
    for (var j = 0; j < open.length; j++) closePopover(open[j], open[j].contains(document.activeElement));
  });
  document.addEventListener("click", function (event) {
    if (event.target.closest("details.popover")) return;
    var open = document.querySelectorAll("details.popover[open]");
    for (var j = 0; j < open.length; j++) closePopover(open[j], false);
  });

  // A freshly generated key: move focus to its panel so it is read out.
  var panel = document.querySelector("[data-autofocus]");
  if (panel && document.activeElement !== panel) panel.focus();

  // Show the copy button only when this script runs (it needs JavaScript).
  var buttons = document.querySelectorAll("[data-copy-target]");
  for (var i = 0; i < buttons.length; i++) buttons[i].hidden = false;
})();
`;

export const DASHBOARD_CSS = `:root {
  --bg: #f6f7f9; --card: #fff; --text: #1d2330; --muted: #5b6475; --line: #dfe3ea;
  --accent: #3547d4; --accent-dark: #2433a8; --danger: #b4232c; --warn-bg: #fff6e0;
  --warn-line: #e8c468; --ok-bg: #e9f7ef; --ok-line: #7cc49a; --err-bg: #fdecec; --err-line: #e79a9a;
  color-scheme: light;
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif;
}
a { color: var(--accent); }
.skip { position: absolute; left: -9999px; }
.skip:focus { left: 1rem; top: 1rem; background: #fff; padding: .5rem; z-index: 10; }
header.top {
  display: flex; align-items: center; justify-content: space-between; gap: 1rem;
  padding: .75rem 1.5rem; background: #151a2d; color: #fff;
}
header.top .brand { font-weight: 700; font-size: 1.1rem; color: #fff; text-decoration: none; }
header.top .who { display: flex; align-items: center; gap: .75rem; color: #c9cfe0; font-size: .9rem; }
header.top form { margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 1.5rem; }
main.narrow { max-width: 440px; padding-top: 3rem; }
nav.crumbs { color: var(--muted); font-size: .9rem; margin-bottom: .25rem; }
h1 { font-size: 1.6rem; margin: 0 0 1rem; }
h2 { font-size: 1.15rem; margin: 0 0 .75rem; }
.card {
  background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 1.25rem; margin-bottom: 1.25rem;
}
label { display: block; font-weight: 600; margin-bottom: .3rem; }
.hint { color: var(--muted); font-size: .85rem; margin: .25rem 0 0; }
input[type=text], input[type=email], input[type=password], select {
  font: inherit; padding: .5rem .6rem; border: 1px solid #b9c0cc; border-radius: 6px;
  background: #fff; color: var(--text); width: 100%;
}
input:focus-visible, select:focus-visible, button:focus-visible, summary:focus-visible, a:focus-visible {
  outline: 3px solid #8fa0ff; outline-offset: 2px;
}
.field { margin-bottom: 1rem; }
.row { display: flex; gap: 1rem; align-items: flex-end; flex-wrap: wrap; }
.row .field { margin-bottom: 0; }
.row .grow { flex: 1 1 260px; }
button, .button {
  font: inherit; font-weight: 600; cursor: pointer; border-radius: 6px; padding: .5rem .9rem;
  border: 1px solid var(--accent); background: var(--accent); color: #fff;
}
button:hover { background: var(--accent-dark); }
button.secondary { background: #fff; color: var(--accent); }
button.secondary:hover { background: #eef0fd; }
button.danger { background: var(--danger); border-color: var(--danger); }
button.link { background: none; border: none; color: #c9cfe0; padding: 0; text-decoration: underline; }
.alert { border-radius: 8px; padding: .75rem 1rem; margin-bottom: 1.25rem; border: 1px solid; }
.alert.error { background: var(--err-bg); border-color: var(--err-line); }
.alert.ok { background: var(--ok-bg); border-color: var(--ok-line); }
.newkey { background: var(--ok-bg); border-color: var(--ok-line); }
.newkey .keyline { display: flex; gap: .5rem; margin: .5rem 0; }
.newkey input { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .95rem; }
.warning { background: var(--warn-bg); border: 1px solid var(--warn-line); border-radius: 6px; padding: .5rem .75rem; margin: .5rem 0 0; }
pre { background: #151a2d; color: #e6e9f5; padding: .75rem; border-radius: 6px; overflow-x: auto; font-size: .85rem; }
table { width: 100%; border-collapse: collapse; font-size: .92rem; }
caption { text-align: left; color: var(--muted); padding-bottom: .5rem; }
th, td { text-align: left; padding: .6rem .5rem; border-top: 1px solid var(--line); vertical-align: top; }
th { font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); border-top: none; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88rem; }
.muted { color: var(--muted); }
.flag { display: inline-block; font-size: .78rem; font-weight: 600; border-radius: 999px; padding: .1rem .55rem; margin: 0 .25rem .25rem 0; }
.flag.unused { background: #fff0d6; color: #7a4b00; }
.flag.old { background: #e7ecff; color: #23318f; }
.flag.expired { background: var(--err-bg); color: var(--danger); }
.flag.ok { background: #e3f6e8; color: #1d5e2e; margin-left: .5rem; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
nav.settings { display: flex; gap: 1rem; }
nav.settings a[aria-current="page"] { font-weight: 600; }
.advice { font-size: .82rem; color: var(--muted); margin: 0; }
.actions { display: flex; gap: .5rem; }
td time, td code { white-space: nowrap; }
td.advice-cell { min-width: 220px; }
details { position: relative; }
details > summary {
  list-style: none; cursor: pointer; font-weight: 600; font-size: .88rem; padding: .3rem .7rem;
  border: 1px solid #b9c0cc; border-radius: 6px; background: #fff; display: inline-block;
}
details > summary::-webkit-details-marker { display: none; }
/* The suggested fix: a filled, dashed-edge button, never a ring (rings mean focus). */
details > summary.suggested { background: #fff0d6; border: 1px dashed #7a4b00; }
.flag.rolled { background: #eceef3; color: #3a4253; }
.alert.cap { background: var(--warn-bg); border-color: var(--warn-line); }
button:disabled, button:disabled:hover {
  background: #e4e7ed; border-color: #c3c8d2; color: #5b6475; cursor: not-allowed;
}
.newkey:focus { outline: 3px solid #8fa0ff; outline-offset: 2px; }
details.delete > summary { color: var(--danger); }
details[open] > summary { background: #eef0fd; }
details .panel {
  position: absolute; right: 0; z-index: 5; width: 280px;
  margin-top: .4rem; padding: .75rem; border: 1px solid var(--line); border-radius: 8px;
  background: #fff; box-shadow: 0 6px 18px rgba(20, 30, 60, .12);
}
details .panel p { margin: 0 0 .5rem; }
details .panel select { margin-bottom: .5rem; }
.empty { color: var(--muted); padding: 1rem 0; }
.switch { margin-top: 1rem; color: var(--muted); }
`;

export const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">
<rect width="32" height="32" rx="7" fill="#3547d4"/>
<path d="M7 11l9 6 9-6M7 10h18v13H7z" fill="none" stroke="#fff" stroke-width="2.4" stroke-linejoin="round"/>
</svg>
`;
