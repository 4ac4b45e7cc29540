/**
 * Passkeys in the dashboard: the Settings › Security section (add with a name, list, rename,
 * remove), "Sign in with a passkey" on the sign-in page, and "Use a passkey" on the second-step
 * page. WebAuthn needs script, so these parts are driven by /assets/passkeys.js (PASSKEYS_JS,
 * served from this origin: the CSP allows no inline script) calling /api/auth/passkey/*; they
 * stay hidden where the browser has no WebAuthn.
 */
import { MAX_PASSKEY_NAME } from "../../store/passkeys.ts";

export const PASSKEYS_JS_PATH = "/assets/passkeys.js";

function Script() {
  return <script src={PASSKEYS_JS_PATH} defer></script>;
}

/** Settings › Security: the account's passkeys. Rows are filled in by passkeys.js. */
export function PasskeysSection() {
  return (
    <section class="card" aria-labelledby="passkeys-title" id="passkeys" data-passkeys>
      <h2 id="passkeys-title">Passkeys</h2>
      <p class="hint">
        A passkey signs you in with your device's screen lock, or a security key and its PIN,
        instead of a password, and counts as a second factor on its own. A touch alone is not
        enough.
      </p>
      <p class="muted" data-passkeys-unsupported>
        Passkeys need JavaScript and a browser that supports them.
      </p>
      <div hidden data-passkeys-ui>
        <table>
          <caption class="visually-hidden">This account's passkeys</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Added</th>
              <th scope="col">Last used</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody id="passkey-rows"></tbody>
        </table>
        <p class="muted" id="passkeys-empty" hidden>No passkeys yet.</p>
        <form id="passkey-register">
          <div class="row">
            <div class="field grow">
              <label for="passkey-name">Passkey name</label>
              <input
                id="passkey-name"
                name="name"
                type="text"
                required
                maxlength={MAX_PASSKEY_NAME}
                placeholder="e.g. Work laptop"
              />
            </div>
            <div class="field">
              <button type="submit">Add a passkey</button>
            </div>
          </div>
        </form>
      </div>
      <p role="status" id="passkey-status"></p>
      <Script />
    </section>
  );
}

/** The sign-in page's "Sign in with a passkey". */
export function PasskeySignIn() {
  return (
    <div class="card" hidden data-passkey-sign-in>
      <button type="button" class="secondary" id="passkey-sign-in">
        Sign in with a passkey
      </button>
      <p role="status" id="passkey-status"></p>
      <Script />
    </div>
  );
}

/** The second-step page's "Use a passkey" (after the password). */
export function PasskeySecondStep() {
  return (
    <div class="card" hidden data-passkey-sign-in>
      <button type="button" class="secondary" id="passkey-second-step">Use a passkey</button>
      <p role="status" id="passkey-status"></p>
      <Script />
    </div>
  );
}

/** The sudo prompt's "Use a passkey instead": re-authenticates, then sends the form. */
export function PasskeySudo() {
  return (
    <div class="card" hidden data-passkey-sign-in>
      <button type="button" class="secondary" id="passkey-sudo">Use a passkey instead</button>
      <p role="status" id="passkey-status"></p>
      <Script />
    </div>
  );
}

export const PASSKEYS_JS =
  `// Inbound dashboard: passkeys (WebAuthn). Served from this origin; no inline script.
"use strict";
(function () {
  var API = "/api/auth/passkey/";
  var supported = !!(window.PublicKeyCredential &&
    PublicKeyCredential.parseCreationOptionsFromJSON &&
    PublicKeyCredential.parseRequestOptionsFromJSON && window.isSecureContext);

  function status(text) {
    var el = document.getElementById("passkey-status");
    if (el) el.textContent = text;
  }

  function call(path, body) {
    var init = { method: body === undefined ? "GET" : "POST", credentials: "same-origin",
      headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(API + path, init).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (json) {
        if (!res.ok) {
          var err = new Error((json && json.message) || ("Request failed (" + res.status + ")."));
          err.code = json && json.code;
          throw err;
        }
        return json;
      });
    });
  }

  function assertion(optionsPath, verifyPath, optionsBody) {
    return call(optionsPath, optionsBody).then(function (options) {
      var publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
      return navigator.credentials.get({ publicKey: publicKey });
    }).then(function (credential) {
      if (!credential) throw new Error("No passkey was chosen.");
      return call(verifyPath, { response: credential.toJSON() });
    });
  }

  /** A passkey of this account as the fresh proof sudo mode asks for, then \`retry\`. */
  function withReauthentication(work) {
    return work().catch(function (err) {
      if (err.code !== "REAUTHENTICATION_REQUIRED") throw err;
      status("Confirm it is you with one of your passkeys…");
      return assertion("generate-reauthenticate-options", "reauthenticate", {}).then(work);
    });
  }

  function failure(err) {
    if (err && err.name === "NotAllowedError") return "The passkey prompt was closed or timed out.";
    return (err && err.message) || "Something went wrong.";
  }

  // --- Sign-in page and second step ---------------------------------------------------------
  var signIn = document.getElementById("passkey-sign-in") ||
    document.getElementById("passkey-second-step");
  if (signIn && supported) {
    var box = document.querySelector("[data-passkey-sign-in]");
    if (box) box.hidden = false;
    signIn.addEventListener("click", function () {
      signIn.disabled = true;
      status("Waiting for your passkey…");
      assertion("generate-authenticate-options", "verify-authentication").then(function () {
        status("Signed in.");
        // The page's \`next\` field, already checked by the server that rendered it.
        var next = document.querySelector("input[name=next]");
        window.location.assign((next && next.value) || "/settings/api-keys");
      }, function (err) {
        signIn.disabled = false;
        status(failure(err));
      });
    });
  }

  // --- The sudo prompt: a passkey instead of the password, then the original form -------------
  var sudo = document.getElementById("passkey-sudo");
  var sudoForm = document.getElementById("sudo-form");
  if (sudo && sudoForm && supported) {
    document.querySelector("[data-passkey-sign-in]").hidden = false;
    sudo.addEventListener("click", function () {
      sudo.disabled = true;
      status("Waiting for your passkey…");
      assertion("generate-reauthenticate-options", "reauthenticate", {}).then(function () {
        status("Confirmed. Continuing…");
        // The session is in sudo mode now: the form goes through without the password.
        HTMLFormElement.prototype.submit.call(sudoForm);
      }, function (err) {
        sudo.disabled = false;
        status(failure(err));
      });
    });
  }

  // --- Settings › Security -----------------------------------------------------------------
  var section = document.querySelector("[data-passkeys]");
  if (!section || !supported) return;
  section.querySelector("[data-passkeys-ui]").hidden = false;
  section.querySelector("[data-passkeys-unsupported]").hidden = true;
  var rows = document.getElementById("passkey-rows");

  function day(iso) { return iso ? String(iso).slice(0, 10) : "Never"; }

  function button(text, cls, label) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = cls;
    b.textContent = text;
    var hidden = document.createElement("span");
    hidden.className = "visually-hidden";
    hidden.textContent = " " + label;
    b.appendChild(hidden);
    return b;
  }

  function render(list) {
    rows.textContent = "";
    document.getElementById("passkeys-empty").hidden = list.length > 0;
    list.forEach(function (p) {
      var tr = document.createElement("tr");
      var name = document.createElement("td");
      var input = document.createElement("input");
      input.type = "text";
      input.value = p.name;
      input.maxLength = ${MAX_PASSKEY_NAME};
      input.setAttribute("aria-label", "Name of passkey " + p.name);
      name.appendChild(input);
      var added = document.createElement("td");
      added.textContent = day(p.createdAt);
      var used = document.createElement("td");
      used.textContent = day(p.lastUsedAt);
      var actions = document.createElement("td");
      var rename = button("Rename", "secondary", p.name);
      var remove = button("Remove", "danger", p.name);
      rename.addEventListener("click", function () {
        call("update-passkey", { id: p.id, name: input.value }).then(function () {
          status("Passkey renamed.");
          return refresh();
        }, function (err) { status(failure(err)); });
      });
      remove.addEventListener("click", function () {
        withReauthentication(function () {
          return call("delete-passkey", { id: p.id });
        }).then(function () {
          status("Passkey “" + p.name + "” removed.");
          return refresh();
        }, function (err) { status(failure(err)); });
      });
      actions.appendChild(rename);
      actions.appendChild(document.createTextNode(" "));
      actions.appendChild(remove);
      tr.appendChild(name);
      tr.appendChild(added);
      tr.appendChild(used);
      tr.appendChild(actions);
      rows.appendChild(tr);
    });
  }

  function refresh() {
    return call("list-user-passkeys").then(render, function (err) { status(failure(err)); });
  }

  document.getElementById("passkey-register").addEventListener("submit", function (event) {
    event.preventDefault();
    var name = document.getElementById("passkey-name").value.trim();
    if (!name) { status("Give the passkey a name first."); return; }
    status("Follow your browser's prompt to create the passkey…");
    withReauthentication(function () {
      return call("generate-register-options");
    }).then(function (options) {
      var publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options);
      return navigator.credentials.create({ publicKey: publicKey });
    }).then(function (credential) {
      if (!credential) throw new Error("No passkey was created.");
      return call("verify-registration", { response: credential.toJSON(), name: name });
    }).then(function () {
      document.getElementById("passkey-name").value = "";
      status("Passkey “" + name + "” added.");
      return refresh();
    }, function (err) { status(failure(err)); });
  });

  refresh();
})();
`;
