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

  function valueOf(el) {
    return "value" in el && typeof el.value === "string" ? el.value : el.textContent;
  }
  function selectAll(el) {
    el.focus();
    if (el.select) { el.select(); return; }
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }
  function copyFrom(input) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(valueOf(input));
    }
    selectAll(input);
    return document.execCommand("copy") ? Promise.resolve() : Promise.reject(new Error("copy"));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var input = document.getElementById(button.getAttribute("data-copy-target"));
    if (!input) return;
    var what = button.getAttribute("data-copy-label") || "API key";
    copyFrom(input).then(function () {
      button.textContent = "Copied";
      announce(button, what + " copied to the clipboard.");
      setTimeout(function () { button.textContent = "Copy"; }, 2000);
    }, function () {
      selectAll(input);
      announce(button, "Could not copy automatically. The " + what.toLowerCase() +
        " is selected: press Ctrl+C or Cmd+C.");
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

  // The key form's restrictions panel: remember whether it is open, so a refused form reopens it.
  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (!details.matches || !details.matches("details.restrictions")) return;
    var memo = details.querySelector("input[name=restrictions_open]");
    if (memo) memo.value = details.open ? "1" : "";
  }, true);

  // A key name another key already has: allowed (a roll's replacement shares it), but said.
  var keyName = document.querySelector("input[data-taken-names]");
  var takenNote = document.getElementById("key-name-taken");
  if (keyName && takenNote) {
    var taken = [];
    try { taken = JSON.parse(keyName.getAttribute("data-taken-names") || "[]"); } catch (e) { taken = []; }
    keyName.addEventListener("input", function () {
      var name = keyName.value.trim();
      takenNote.textContent = name && taken.indexOf(name) !== -1
        ? "Another key is already named \u201c" + name + "\u201d. You can still use it; a distinct " +
          "name tells keys apart in Usage and the Security log."
        : "";
    });
  }

  // Code snippets keep their lines (a wrapped shell line breaks mid-word on a phone) and scroll
  // sideways instead; a region that scrolls must be reachable from the keyboard (axe).
  var snippets = document.querySelectorAll("pre:not([tabindex])");
  for (var s = 0; s < snippets.length; s++) snippets[s].setAttribute("tabindex", "0");

  // A freshly generated key: move focus to its panel so it is read out.
  var panel = document.querySelector("[data-autofocus]");
  if (panel && document.activeElement !== panel) panel.focus();

  // Dates: the server writes UTC ("2026-01-31" or "2026-01-31 14:05 UTC"); show them in the
  // viewer's time zone, keeping the exact UTC time in the title (shown on hover).
  function two(n) { return (n < 10 ? "0" : "") + n; }
  function localDay(d) { return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate()); }
  function zoneName(d) {
    try {
      var parts = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(d);
      for (var k = 0; k < parts.length; k++) if (parts[k].type === "timeZoneName") return parts[k].value;
    } catch (e) { /* no Intl: no zone name */ }
    return "";
  }
  var times = document.querySelectorAll("time[datetime]");
  for (var t = 0; t < times.length; t++) {
    var el = times[t];
    var d = new Date(el.getAttribute("datetime"));
    if (isNaN(d.getTime())) continue;
    var node = el.firstChild;
    if (!node || node.nodeType !== 3) continue;
    var text = node.nodeValue.trim();
    if (/^\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2} UTC$/.test(text)) {
      node.nodeValue = (localDay(d) + " " + two(d.getHours()) + ":" + two(d.getMinutes()) + " " +
        zoneName(d)).trim();
    } else if (/^\\d{4}-\\d{2}-\\d{2}$/.test(text)) {
      node.nodeValue = localDay(d);
    } else {
      continue;
    }
    el.setAttribute("data-local", "");
  }

  // Show the copy button only when this script runs (it needs JavaScript).
  var buttons = document.querySelectorAll("[data-copy-target]");
  for (var i = 0; i < buttons.length; i++) buttons[i].hidden = false;
})();
`;

export const DASHBOARD_CSS = `:root {
  --bg: #f6f7f9; --card: #fff; --text: #1d2330; --muted: #5b6475; --line: #dfe3ea;
  --field: #fff; --field-line: #b9c0cc; --soft: #eef0fd; --on-accent: #fff;
  --accent: #3547d4; --accent-dark: #2433a8; --danger: #b4232c; --warn-bg: #fff6e0;
  --warn-line: #e8c468; --ok-bg: #e9f7ef; --ok-line: #7cc49a; --err-bg: #fdecec; --err-line: #e79a9a;
  --header: #151a2d; --header-text: #dfe4f2; --focus: #8fa0ff;
  --unused-bg: #fff0d6; --unused-text: #7a4b00; --old-bg: #e7ecff; --old-text: #23318f;
  --good-bg: #e3f6e8; --good-text: #1d5e2e; --rolled-bg: #eceef3; --rolled-text: #3a4253;
  --bad-bg: #fdecec; --bad-text: #9d1c24; --disabled-bg: #e4e7ed; --disabled-line: #c3c8d2;
  --shadow: rgba(20, 30, 60, .12);
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f121a; --card: #181c27; --text: #e6e9f2; --muted: #a9b1c2; --line: #2e3446;
    --field: #0f121a; --field-line: #5d667b; --soft: #242b47; --on-accent: #0d1020;
    --accent: #9aa9ff; --accent-dark: #b8c2ff; --danger: #ff9196; --warn-bg: #33280e;
    --warn-line: #8a6d1f; --ok-bg: #12301e; --ok-line: #2f7a4a; --err-bg: #3a1619;
    --err-line: #8c3a40; --header: #090b12; --header-text: #dfe4f2; --focus: #b8c2ff;
    --unused-bg: #3d2c08; --unused-text: #ffd48a; --old-bg: #1f2752; --old-text: #c9d0ff;
    --good-bg: #143520; --good-text: #a8e8bb; --rolled-bg: #2a2f3d; --rolled-text: #d6dbe6;
    --bad-bg: #3a1619; --bad-text: #ffb3b7; --disabled-bg: #2a2f3d; --disabled-line: #4a5163;
    --shadow: rgba(0, 0, 0, .5);
  }
}
* { box-sizing: border-box; }
/* The enrolment QR code: scannable size, quiet zone kept white in dark mode too. */
.qr { width: 220px; max-width: 100%; background: #fff; padding: 8px; border-radius: 6px; }
.qr svg { display: block; width: 100%; height: auto; }
/* The security log: ids, addresses and user agents wrap instead of widening the page. */
table.log td { overflow-wrap: anywhere; }
/* Usage chart: the SVG stretches, its labels are HTML at a fixed size (routes/usage/pages.tsx). */
.usage-figure { margin: .75rem 0 .5rem; }
.usage-figure .axis-label { font-size: 12px; line-height: 1.2; color: var(--muted); white-space: nowrap; }
.usage-limit { text-align: right; margin: 0 0 .2rem; }
.usage-plot { display: flex; gap: .4rem; }
.usage-y { position: relative; flex: 0 0 2.6rem; height: 180px; }
.usage-y span { position: absolute; right: 0; }
.usage-y .t-top { top: 0; }
.usage-y .t-mid { top: 50%; transform: translateY(-50%); }
.usage-y .t-bottom { bottom: 0; }
svg.usage-chart { display: block; flex: 1 1 auto; min-width: 0; width: 100%; height: 180px; }
.usage-x { display: flex; margin: .3rem 0 0 3rem; }
.usage-x span { flex: 1 1 0; min-width: 0; display: flex; justify-content: center; }
.usage-x span.first { justify-content: flex-start; }
.usage-x span.last { justify-content: flex-end; }
.sparkline-empty { font-size: .85rem; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif;
}
a { color: var(--accent); }
.skip { position: absolute; left: -9999px; }
.skip:focus { left: 1rem; top: 1rem; background: var(--card); padding: .5rem; z-index: 10; }
header.top {
  display: flex; align-items: center; justify-content: space-between; gap: .5rem 1rem;
  flex-wrap: wrap; padding: .75rem 1.5rem; background: var(--header); color: #fff;
}
header.top .brand { font-weight: 700; font-size: 1.1rem; color: #fff; text-decoration: none; }
header.top a { color: var(--header-text); }
header.top .who {
  display: flex; align-items: center; flex-wrap: wrap; gap: .25rem .75rem;
  color: var(--header-text); font-size: .9rem; min-width: 0;
}
header.top .who span { overflow-wrap: anywhere; min-width: 0; }
header.top form { margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 1.5rem; }
main.narrow { max-width: 440px; padding-top: 3rem; }
nav.crumbs { color: var(--muted); font-size: .9rem; margin-bottom: .25rem; }
h1 { font-size: 1.6rem; margin: 0 0 1rem; }
h2 { font-size: 1.15rem; margin: 0 0 .75rem; }
.card {
  background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 1.25rem; margin-bottom: 1.25rem; min-width: 0;
}
label { display: block; font-weight: 600; margin-bottom: .3rem; }
.hint { color: var(--muted); font-size: .85rem; margin: .25rem 0 0; }
input[type=text], input[type=email], input[type=password], input[type=search], select {
  font: inherit; padding: .5rem .6rem; border: 1px solid var(--field-line); border-radius: 6px;
  background: var(--field); color: var(--text); width: 100%; min-width: 0;
}
input:focus-visible, select:focus-visible, button:focus-visible, summary:focus-visible, a:focus-visible {
  outline: 3px solid var(--focus); outline-offset: 2px;
}
.field { margin-bottom: 1rem; }
.row { display: flex; gap: 1rem; align-items: flex-end; flex-wrap: wrap; }
.row .field { margin-bottom: 0; }
.row .grow { flex: 1 1 260px; min-width: 0; }
button, .button {
  font: inherit; font-weight: 600; cursor: pointer; border-radius: 6px; padding: .5rem .9rem;
  border: 1px solid var(--accent); background: var(--accent); color: var(--on-accent);
}
button:hover { background: var(--accent-dark); }
button.secondary { background: var(--field); color: var(--accent); }
button.secondary:hover { background: var(--soft); }
button.danger { background: var(--danger); border-color: var(--danger); }
a.button { display: inline-block; text-decoration: none; }
a.button.secondary { background: var(--field); color: var(--accent); }
a.button.secondary:hover { background: var(--soft); }
.actions a.button { font-size: .88rem; padding: .3rem .7rem; }
.key-filter { margin-bottom: 1rem; }
.key-filter .actions { align-items: flex-end; }
button.link {
  background: none; border: none; color: var(--header-text); padding: 0; text-decoration: underline;
}
button.link:hover { background: none; color: #fff; }
.alert { border-radius: 8px; padding: .75rem 1rem; margin-bottom: 1.25rem; border: 1px solid; }
.alert.error { background: var(--err-bg); border-color: var(--err-line); }
.alert.ok { background: var(--ok-bg); border-color: var(--ok-line); }
/* Not an error, not yet a success: e.g. a DNS check that found only some records. */
.alert.warn { background: var(--warn-bg); border-color: var(--warn-line); }
.newkey { background: var(--ok-bg); border-color: var(--ok-line); }
.newkey .keyline { display: flex; gap: .5rem; margin: .5rem 0; }
.newkey input { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .95rem; }
.warning { background: var(--warn-bg); border: 1px solid var(--warn-line); border-radius: 6px; padding: .5rem .75rem; margin: .5rem 0 0; }
pre { background: #151a2d; color: #e6e9f5; padding: .75rem; border-radius: 6px; overflow-x: auto; font-size: .85rem; max-width: 100%; }
table { width: 100%; border-collapse: collapse; font-size: .92rem; }
caption { text-align: left; color: var(--muted); padding-bottom: .5rem; }
th, td { text-align: left; padding: .6rem .5rem; border-top: 1px solid var(--line); vertical-align: top; }
th { font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); border-top: none; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88rem; }
.muted { color: var(--muted); }
.flag { display: inline-block; font-size: .78rem; font-weight: 600; border-radius: 999px; padding: .1rem .55rem; margin: 0 .25rem .25rem 0; }
.flag.unused, .flag.pending { background: var(--unused-bg); color: var(--unused-text); }
.flag.old { background: var(--old-bg); color: var(--old-text); }
.flag.expired, .flag.failed, .flag.bad { background: var(--bad-bg); color: var(--bad-text); }
.flag.ok { background: var(--good-bg); color: var(--good-text); margin-left: .5rem; }
.flag.verified, .flag.good { background: var(--good-bg); color: var(--good-text); }
.flag.off { background: var(--rolled-bg); color: var(--rolled-text); }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
nav.settings { display: flex; flex-wrap: wrap; gap: .25rem 1rem; }
nav.settings a { color: var(--header-text); }
nav.settings a[aria-current="page"] { font-weight: 600; color: #fff; }
.advice { font-size: .82rem; color: var(--muted); margin: 0; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; }
td time, td code { white-space: nowrap; }
td.advice-cell { min-width: 220px; }
details { position: relative; }
details > summary {
  list-style: none; cursor: pointer; font-weight: 600; font-size: .88rem; padding: .3rem .7rem;
  border: 1px solid var(--field-line); border-radius: 6px; background: var(--field); display: inline-block;
}
details > summary::-webkit-details-marker { display: none; }
/* The suggested fix: a filled, dashed-edge button, never a ring (rings mean focus). */
details > summary.suggested {
  background: var(--unused-bg); color: var(--unused-text); border: 1px dashed var(--unused-text);
}
.flag.rolled { background: var(--rolled-bg); color: var(--rolled-text); }
.alert.cap { background: var(--warn-bg); border-color: var(--warn-line); }
button:disabled, button:disabled:hover {
  background: var(--disabled-bg); border-color: var(--disabled-line); color: var(--muted); cursor: not-allowed;
}
.newkey:focus { outline: 3px solid var(--focus); outline-offset: 2px; }
details.delete > summary { color: var(--danger); }
details[open] > summary { background: var(--soft); }
details .panel {
  position: absolute; right: 0; z-index: 5; width: 280px;
  margin-top: .4rem; padding: .75rem; border: 1px solid var(--line); border-radius: 8px;
  background: var(--card); box-shadow: 0 6px 18px var(--shadow);
}
details .panel p { margin: 0 0 .5rem; }
details .panel select { margin-bottom: .5rem; }
.empty { color: var(--muted); padding: 1rem 0; }
/* The key form: permissions and restrictions framed like fields, errors beside their field. */
input[type=number] {
  font: inherit; padding: .5rem .6rem; border: 1px solid var(--field-line); border-radius: 6px;
  background: var(--field); color: var(--text); width: 10rem; max-width: 100%;
}
fieldset.box {
  border: 1px solid var(--field-line); border-radius: 8px; padding: .6rem .9rem .75rem;
  margin: 1rem 0; min-width: 0;
}
fieldset.box legend { font-weight: 600; padding: 0 .3rem; }
label.check { display: flex; gap: .5rem; align-items: baseline; font-weight: 400; margin: .3rem 0; }
label.check input { accent-color: var(--accent); flex: none; width: 1rem; height: 1rem; }
label.check code { overflow-wrap: anywhere; }
fieldset.domains .choices { max-height: 14rem; overflow-y: auto; }
details.restrictions { margin-bottom: 1rem; }
details.restrictions > summary { margin-bottom: .75rem; }
.key-form .submit { margin-top: 1rem; }
.field-error { color: var(--bad-text); font-weight: 600; font-size: .88rem; margin: .3rem 0 0; }
.field-warning { color: var(--unused-text); font-size: .85rem; margin: .25rem 0 0; }
.field-warning:empty { display: none; }
[aria-invalid="true"] { border-color: var(--danger); }
p.no-roll { max-width: 16rem; margin: 0; }
.switch { margin-top: 1rem; color: var(--muted); }
pre:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
/* Settings > Domains */
.records { display: grid; gap: .75rem; margin: .75rem 0; padding: 0; list-style: none; }
.record { border: 1px solid var(--line); border-radius: 8px; padding: .6rem .75rem; min-width: 0; }
.record dl { display: grid; grid-template-columns: 5.5rem minmax(0, 1fr); gap: .25rem .75rem; margin: 0; }
.record dt { color: var(--muted); font-size: .85rem; }
.record dd { margin: 0; min-width: 0; }
.copyline { display: flex; gap: .5rem; align-items: center; min-width: 0; }
.copyline code {
  flex: 1 1 auto; min-width: 0; overflow-wrap: anywhere; user-select: all; padding: .2rem .4rem;
  background: var(--bg); border: 1px solid var(--line); border-radius: 4px;
}
.copyline button { padding: .2rem .6rem; font-size: .85rem; }
.pager { display: flex; gap: 1rem; justify-content: space-between; align-items: center; margin-top: 1rem; }
td .domain-name { overflow-wrap: anywhere; white-space: normal; }
/* Phones: no sideways scrolling. Tables become one card per row (same markup). */
@media (max-width: 700px) {
  header.top { padding: .6rem 1rem; }
  main { padding: 1rem; }
  main.narrow { padding-top: 1.5rem; }
  .card { padding: 1rem; }
  .card table, .card thead, .card tbody, .card tr, .card td, .card caption { display: block; width: 100%; }
  .card thead, .card caption.visually-hidden {
    position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
    white-space: nowrap;
  }
  .card tbody tr {
    border: 1px solid var(--line); border-radius: 8px; padding: .5rem .75rem; margin-bottom: .75rem;
  }
  .card td { border-top: none; padding: .3rem 0; min-width: 0; overflow-wrap: anywhere; }
  .card td::before {
    display: block; font-size: .75rem; text-transform: uppercase; letter-spacing: .03em;
    color: var(--muted); font-weight: 600;
  }
  .card td[data-label]::before { content: attr(data-label); }
  .card tr[data-key-id] td:nth-child(2)::before { content: "Key"; }
  .card tr[data-key-id] td:nth-child(3)::before { content: "Created"; }
  .card tr[data-key-id] td:nth-child(4)::before { content: "Last used"; }
  .card tr[data-key-id] td:nth-child(5)::before { content: "Expires"; }
  .card tr[data-key-id] td.advice-cell::before { content: "Best practice"; }
  td.advice-cell { min-width: 0; }
  td time { white-space: normal; }
  details { position: static; }
  details .panel { position: static; width: auto; box-shadow: none; }
  .newkey .keyline { flex-wrap: wrap; }
  /* Snippets scroll sideways, never break mid-word (dashboard.js makes them focusable). */
  pre { white-space: pre; overflow-wrap: normal; overflow-x: auto; }
  .record dl { grid-template-columns: minmax(0, 1fr); gap: 0; }
  .record dd { margin-bottom: .35rem; }
}
`;

export const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">
<rect width="32" height="32" rx="7" fill="#3547d4"/>
<path d="M7 11l9 6 9-6M7 10h18v13H7z" fill="none" stroke="#fff" stroke-width="2.4" stroke-linejoin="round"/>
</svg>
`;
