/**
 * The dashboard's second factors and sudo mode (auth/two_factor.ts, auth/sudo.ts):
 *
 * - Sign-in's second step: `/sign-in/two-factor` asks for the authenticator code (or a recovery
 *   code) after the password, while the pending cookie lives.
 * - Settings > Security: enrol with a QR code rendered here as SVG (npm qrcode; no CDN, no
 *   script); the recovery codes are made and shown once the app's first code is accepted (not
 *   before: codes shown for an enrolment never finished, or lost to a reload before it, would be
 *   codes for nothing), once, with a download (a `data:` link); disable, regenerate.
 * - Sudo mode: a form whose operation needs it (auth/sudo.ts `SUDO_OPERATIONS`) posted from a
 *   session whose last proof of identity is older than SUDO_WINDOW_MS gets a "Confirm it's you"
 *   page instead, whatever its body. The page's form carries the original form's fields as hidden
 *   inputs and posts them, with the password or a code, to the original address: the proof is
 *   checked, the session marked, and the original action runs. Plain forms, Post/Redirect/Get, no
 *   inline script.
 */
import type { Context, Hono, MiddlewareHandler } from "hono";
import { raw } from "hono/html";
import QRCode from "qrcode";
import type { AccountService, Caller } from "../../auth/accounts/service.ts";
import { assertSameOrigin } from "../../auth/csrf.ts";
import type { AppEnv } from "../../auth/middleware.ts";
import { MAX_PASSWORD_LENGTH } from "../../auth/passwords/hash.ts";
import type { SudoMode } from "../../auth/sudo.ts";
import { completedSignInResponse, type TwoFactorService } from "../../auth/two_factor.ts";
import { clientOf } from "../../lib/client.ts";
import { HttpError } from "../../lib/errors.ts";
import { NEXT_PARAM, safeNextPath } from "../accounts/next_path.ts";
import { Banner, Layout } from "../dashboard/layout.tsx";
import { PasskeySecondStep, PasskeySudo } from "../passkeys/pages.tsx";

export const TWO_FACTOR_SIGN_IN_PATH = "/sign-in/two-factor";
export const TWO_FACTOR_PATH = "/settings/security/two-factor";
/** Form fields the sudo prompt adds; handlers ignore them. */
const SUDO_PASSWORD = "_sudo_password";
const SUDO_CODE = "_sudo_code";

/**
 * The operation each of the dashboard's forms under /settings performs, named as the API
 * document names the same operation: whether it needs sudo mode is auth/sudo.ts's to say, not
 * this table's. (tests/dashboard/attack_dashboard_forms_test.ts checks that every form is listed.)
 */
const FORM_OPERATIONS: readonly (readonly [RegExp, string])[] = [
  [/^\/settings\/api-keys$/, "createApiKey"],
  [/^\/settings\/api-keys\/[^/]+\/roll$/, "rollApiKey"],
  [/^\/settings\/api-keys\/[^/]+\/delete$/, "deleteApiKey"],
  [/^\/settings\/api-keys\/[^/]+\/edit$/, "updateApiKey"],
  [/^\/settings\/security\/name$/, "updateUser"],
  [/^\/settings\/security\/password$/, "changePassword"],
  [/^\/settings\/security\/delete$/, "deleteUser"],
  [/^\/settings\/security\/other-sessions\/revoke$/, "revokeOtherSessions"],
  [/^\/settings\/security\/sessions\/[^/]+\/revoke$/, "revokeSession"],
  [/^\/settings\/security\/two-factor\/enable$/, "enableTwoFactor"],
  [/^\/settings\/security\/two-factor\/verify$/, "verifyTotp"],
  [/^\/settings\/security\/two-factor\/disable$/, "disableTwoFactor"],
  [/^\/settings\/security\/two-factor\/backup-codes$/, "generateBackupCodes"],
  [/^\/settings\/domains$/, "createDomain"],
  // The API checks a domain's DNS records with GET /api/e2/domains/:id?check=true.
  [/^\/settings\/domains\/[^/]+\/check$/, "retrieveDomain"],
  [/^\/settings\/domains\/[^/]+\/delete$/, "deleteDomain"],
  [/^\/settings\/domains\/[^/]+\/addresses$/, "createEmailAddress"],
  [/^\/settings\/domains\/[^/]+\/addresses\/[^/]+\/edit$/, "updateEmailAddress"],
  [/^\/settings\/domains\/[^/]+\/addresses\/[^/]+\/delete$/, "deleteEmailAddress"],
  // Catch-all settings are PATCH /api/e2/domains/:id.
  [/^\/settings\/domains\/[^/]+\/catch-all$/, "updateDomain"],
  [/^\/settings\/endpoints$/, "createEndpoint"],
  [/^\/settings\/endpoints\/[^/]+\/edit$/, "updateEndpoint"],
  [/^\/settings\/endpoints\/[^/]+\/test$/, "testEndpoint"],
  [/^\/settings\/endpoints\/[^/]+\/roll$/, "rollEndpointSecret"],
  [/^\/settings\/endpoints\/[^/]+\/delete$/, "deleteEndpoint"],
  [/^\/settings\/verify-email$/, "sendVerificationEmail"],
];

/** The operation the dashboard form at `path` performs; null for an address with no form. */
export function formOperation(path: string): string | null {
  return FORM_OPERATIONS.find(([re]) => re.test(path))?.[1] ?? null;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Whether a request to the dashboard needs sudo mode: a state-changing one whose form's
 * operation needs it, or that names no known form (fail closed: a form added without its
 * operation asks for a proof rather than skipping one).
 */
export function needsSudo(
  method: string,
  path: string,
  sudoOperations: ReadonlyMap<string, true | "session">,
): boolean {
  if (SAFE_METHODS.has(method)) return false;
  const operation = formOperation(path);
  // Every dashboard form is posted by a session: "session" (sudo when signed in) means sudo.
  return operation === null || sudoOperations.has(operation);
}

// --- Components ------------------------------------------------------------------------------

/** `next`: where the sign-in lands (routes/accounts/next_path.ts), carried by both forms. */
export function TwoFactorSignInPage(props: { error?: string; next?: string | null }) {
  const next = props.next ? <input type="hidden" name={NEXT_PARAM} value={props.next} /> : null;
  return (
    <Layout title="Two-factor authentication" narrow>
      <h1>Two-factor authentication</h1>
      {props.error ? <Banner kind="error" id="form-error">{props.error}</Banner> : null}
      <form method="post" action={TWO_FACTOR_SIGN_IN_PATH} class="card" novalidate>
        {next}
        <div class="field">
          <label for="totp-code">Authentication code</label>
          <input
            id="totp-code"
            name="code"
            type="text"
            inputmode="numeric"
            autocomplete="one-time-code"
            pattern="[0-9]{6}"
            maxlength={6}
            required
            autofocus
            aria-describedby="totp-code-hint"
          />
          <p class="hint" id="totp-code-hint">The 6-digit code your authenticator app shows.</p>
        </div>
        <button type="submit">Verify</button>
      </form>
      <PasskeySecondStep />
      <details class="card">
        <summary>Use a recovery code</summary>
        <form method="post" action={TWO_FACTOR_SIGN_IN_PATH} novalidate>
          {next}
          <div class="field">
            <label for="backup-code">Recovery code</label>
            <input
              id="backup-code"
              name="backupCode"
              type="text"
              autocomplete="off"
              maxlength={64}
              required
            />
            <p class="hint">Each recovery code works once.</p>
          </div>
          <button type="submit" class="secondary">Use recovery code</button>
        </form>
      </details>
      <p class="switch">
        <a href="/sign-in">Start over</a>
      </p>
    </Layout>
  );
}

export type TwoFactorView = {
  enabled: boolean;
  pending: boolean;
  backupCodesLeft: number;
  /** While enrolment is pending: the URI, its QR code (SVG markup) and the secret. */
  enrolment?: { uri: string; qrSvg: string; secret: string };
  /** Recovery codes just made (enrolment confirmed, or regenerated): shown this once. */
  newBackupCodes?: string[];
  /** No second factor at all: the page recommends one. */
  recommend: boolean;
};

function PasswordField(props: { id: string; name?: string }) {
  return (
    <div class="field">
      <label for={props.id}>Password</label>
      <input
        id={props.id}
        name={props.name ?? "password"}
        type="password"
        required
        maxlength={MAX_PASSWORD_LENGTH}
        autocomplete="current-password"
      />
    </div>
  );
}

function RecoveryCodes(props: { codes: string[] }) {
  const text = props.codes.join("\n") + "\n";
  return (
    <div class="newkey" id="recovery-codes">
      <h3>Your recovery codes</h3>
      <p class="warning">
        Save these now: they are shown only this once. Each one signs you in once if you lose your
        authenticator.
      </p>
      <ul class="codes">
        {props.codes.map((code) => (
          <li>
            <code>{code}</code>
          </li>
        ))}
      </ul>
      <a
        id="download-recovery-codes"
        class="button secondary"
        download="inbound-recovery-codes.txt"
        href={`data:text/plain;charset=utf-8,${encodeURIComponent(text)}`}
      >
        Download recovery codes
      </a>
    </div>
  );
}

export function TwoFactorSection(props: TwoFactorView) {
  return (
    <section class="card" aria-labelledby="two-factor-title" id="two-factor">
      <h2 id="two-factor-title">Two-factor authentication</h2>
      {props.recommend && !props.pending
        ? (
          <p class="warning" id="two-factor-recommendation">
            Your account is protected by a password alone. Add an authenticator app (or a passkey)
            so that a stolen password is not enough to sign in and mint API keys.
          </p>
        )
        : null}
      {props.newBackupCodes ? <RecoveryCodes codes={props.newBackupCodes} /> : null}
      {props.enabled
        ? (
          <div>
            <p id="two-factor-status">
              <strong class="flag ok">On</strong>{" "}
              Sign-in asks for a code from your authenticator app. Recovery codes left:{" "}
              {props.backupCodesLeft}.
            </p>
            <form method="post" action={`${TWO_FACTOR_PATH}/backup-codes`}>
              <PasswordField id="backup-codes-password" />
              <button type="submit" class="secondary">New recovery codes</button>
            </form>
            <form method="post" action={`${TWO_FACTOR_PATH}/disable`}>
              <PasswordField id="disable-two-factor-password" />
              <button type="submit" class="danger">Turn off two-factor authentication</button>
            </form>
          </div>
        )
        : props.enrolment
        ? (
          <div>
            <p>
              Scan this code with your authenticator app, then enter the 6-digit code it shows.
            </p>
            <div class="qr" id="totp-qr">{raw(props.enrolment.qrSvg)}</div>
            <p>
              Or enter this key by hand: <code id="totp-secret">{props.enrolment.secret}</code>
            </p>
            <p class="hint" id="recovery-codes-next">
              Once the app's first code is accepted, you get ten recovery codes to save: each signs
              you in once if you lose the app.
            </p>
            <form method="post" action={`${TWO_FACTOR_PATH}/verify`}>
              <div class="field">
                <label for="enrol-code">Code from the app</label>
                <input
                  id="enrol-code"
                  name="code"
                  type="text"
                  inputmode="numeric"
                  autocomplete="one-time-code"
                  pattern="[0-9]{6}"
                  maxlength={6}
                  required
                />
              </div>
              <button type="submit">Turn on</button>
            </form>
          </div>
        )
        : (
          <form method="post" action={`${TWO_FACTOR_PATH}/enable`}>
            <p>Use an authenticator app (TOTP) as a second step after your password.</p>
            <PasswordField id="enable-two-factor-password" />
            <button type="submit">Set up an authenticator app</button>
          </form>
        )}
    </section>
  );
}

/** The inline "Confirm it's you" step of sudo mode. */
export function SudoPromptPage(
  props: {
    email: string;
    action: string;
    fields: Record<string, string>;
    totp: boolean;
    error?: string;
  },
) {
  return (
    <Layout title="Confirm it's you" email={props.email} narrow>
      <h1>Confirm it's you</h1>
      {props.error ? <Banner kind="error" id="form-error">{props.error}</Banner> : null}
      <p id="sudo-why">
        This change needs a recent proof of identity. Enter your password
        {props.totp ? " or a code from your authenticator app" : ""}; the change you asked for then
        goes ahead. You will not be asked again for 10 minutes.
      </p>
      <form method="post" action={props.action} class="card" id="sudo-form">
        {Object.entries(props.fields).map(([name, value]) => (
          <input type="hidden" name={name} value={value} />
        ))}
        <input type="hidden" name="username" autocomplete="username" value={props.email} />
        <PasswordField id="sudo-password" name={SUDO_PASSWORD} />
        {props.totp
          ? (
            <div class="field">
              <label for="sudo-code">
                Or authenticator code <span class="muted">(instead of the password)</span>
              </label>
              <input
                id="sudo-code"
                name={SUDO_CODE}
                type="text"
                inputmode="numeric"
                autocomplete="one-time-code"
                maxlength={6}
              />
            </div>
          )
          : null}
        <button type="submit">Confirm and continue</button>
      </form>
      <PasskeySudo />
      <p class="switch">
        <a href="/settings/security">Cancel</a>
      </p>
    </Layout>
  );
}

// --- Routes ----------------------------------------------------------------------------------

type Html = string | Promise<string>;

export type TwoFactorPagesKit = {
  page: (node: Html, status?: number, headers?: HeadersInit) => Promise<Response>;
  redirect: (location: string, headers?: [string, string][]) => Response;
  formFields: (c: Context) => Promise<Record<string, string>>;
  /** The dashboard's one form reader (mod.tsx): throws its 4xx for a body it will not read. */
  readForm: (req: Request) => Promise<Record<string, string>>;
  errorInfo: (err: unknown) => { message: string; status: number; headers: HeadersInit };
  sameOrigin: MiddlewareHandler<AppEnv>;
  formLimit: MiddlewareHandler<AppEnv>;
  accounts: AccountService;
  callerOf: (c: Context<AppEnv>) => Caller;
  /** Renders Settings > Security with an error (status) after a failed form. */
  securityError: (c: Context<AppEnv>, err: unknown) => Promise<Response>;
  twoFactor: TwoFactorService;
  sudo: SudoMode;
  /** The operations whose declaration asks for sudo mode (routes/registry.ts sudoOperations). */
  sudoOperations: ReadonlyMap<string, true | "session">;
};

/** Settings > Security's two-factor view for the caller; takes a recovery-code flash if named. */
export async function twoFactorView(
  tf: TwoFactorService,
  c: Context<AppEnv>,
  userId: string,
): Promise<TwoFactorView> {
  const [status, methods, uri] = await Promise.all([
    tf.status(userId),
    tf.secondFactorMethods(userId),
    // The URI carries the secret: shown only to a session in sudo mode (auth/sudo.ts).
    tf.pendingEnrolmentUri(userId, c.get("principal")?.sessionId),
  ]);
  const flashId = c.req.query("codes");
  const flash = flashId
    ? await c.get("store").flash.take<{ backupCodes: string[] }>(flashId)
    : null;
  const enrolment = uri
    ? {
      uri,
      qrSvg: await QRCode.toString(uri, { type: "svg", margin: 1, errorCorrectionLevel: "M" }),
      secret: new URL(uri).searchParams.get("secret") ?? "",
    }
    : undefined;
  return {
    ...status,
    recommend: methods.length === 0,
    ...(enrolment ? { enrolment } : {}),
    ...(flash ? { newBackupCodes: flash.backupCodes } : {}),
  };
}

/**
 * The sudo check of the dashboard's requests (`needsSudo`), after requireSession and before any
 * route reads the body: a session in sudo mode passes; a stale one's request goes on only when
 * its form carries a proof (the prompt's fields) that is accepted, and the session is marked;
 * otherwise the prompt page answers (403), whatever the body was. The proof is read from a copy
 * of the body by the dashboard's one form reader, so a body it refuses (another type, multipart
 * included, or over the limit) is refused here and never reaches the handler; no body at all is
 * an empty form: the prompt.
 */
export function dashboardSudo(kit: TwoFactorPagesKit): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (!needsSudo(c.req.method, c.req.path, kit.sudoOperations)) return await next();
    assertSameOrigin(c.req.raw);
    const principal = c.get("principal");
    if (principal.method !== "session" || !principal.sessionId) return kit.redirect("/sign-in");
    const tf = kit.twoFactor;
    if (await kit.sudo.isRecent(principal.userId, principal.sessionId)) {
      return await next();
    }
    // A copy: the route's own body limit and form reading still get the original.
    const answer = await decide(await kit.readForm(c.req.raw.clone()));
    return answer ?? await next();

    /** The prompt (or its error) to answer with, or null once the proof was accepted. */
    async function decide(fields: Record<string, string>): Promise<Response | null> {
      const password = fields[SUDO_PASSWORD] ?? "";
      const code = (fields[SUDO_CODE] ?? "").trim();
      const original: Record<string, string> = {};
      for (const [k, v] of Object.entries(fields)) {
        if (k !== SUDO_PASSWORD && k !== SUDO_CODE && k !== "username") original[k] = v;
      }
      const status = await tf.status(principal.userId);
      const user = await c.get("store").user();
      const prompt = (error?: string) =>
        kit.page(
          <SudoPromptPage
            email={user.email}
            action={c.req.path}
            fields={original}
            totp={status.enabled}
            {...(error ? { error } : {})}
          />,
          403,
        );
      if (password === "" && code === "") return await prompt();
      try {
        if (code !== "" && password === "") {
          await tf.reauthenticateWithCode(c.req.raw, principal.userId, principal.sessionId!, code);
        } else {
          await kit.accounts.verifyPassword(
            principal.userId,
            password,
            clientOf(c.req.raw).address,
          );
          await kit.sudo.grant(principal.userId, principal.sessionId!);
        }
      } catch (err) {
        return await prompt(kit.errorInfo(err).message);
      }
      return null;
    }
  };
}

export function registerTwoFactorPages(app: Hono<AppEnv>, kit: TwoFactorPagesKit): void {
  const { page, redirect, formFields, sameOrigin, formLimit } = kit;

  // --- Sign-in's second step -------------------------------------------------------------
  app.get(TWO_FACTOR_SIGN_IN_PATH, async (c) => {
    const pending = await kit.twoFactor.readPending(c.req.raw);
    if (!pending) return redirect("/sign-in");
    return page(<TwoFactorSignInPage next={safeNextPath(c.req.query(NEXT_PARAM))} />);
  });

  app.post(TWO_FACTOR_SIGN_IN_PATH, sameOrigin, formLimit, async (c) => {
    const form = await formFields(c);
    const next = safeNextPath(form[NEXT_PARAM]);
    const tf = kit.twoFactor;
    try {
      const backup = (form.backupCode ?? "").trim();
      const done = backup !== ""
        ? await tf.completeWithBackupCode(c.req.raw, backup)
        : await tf.completeWithTotp(c.req.raw, (form.code ?? "").trim());
      // As a JSON completion would, but a redirect: the same cookies.
      const json = completedSignInResponse(done);
      return redirect(
        next ?? "/settings/api-keys",
        json.headers.getSetCookie().map((v) => ["Set-Cookie", v]),
      );
    } catch (err) {
      const e = kit.errorInfo(err);
      if (
        e.status === 401 && err instanceof HttpError &&
        err.extra.code === "INVALID_TWO_FACTOR_COOKIE"
      ) {
        return redirect("/sign-in");
      }
      return page(<TwoFactorSignInPage error={e.message} next={next} />, e.status, e.headers);
    }
  });

  // --- Settings > Security ---------------------------------------------------------------
  /**
   * A Settings > Security form: the signed-in caller and the posted fields go to `act`, which
   * answers where to go next; a refusal re-renders the page through `securityError`.
   */
  const securityForm = (
    action: string,
    act: (
      c: Context<AppEnv>,
      caller: Caller,
      form: Record<string, string>,
    ) => Promise<string>,
  ) =>
    app.post(`${TWO_FACTOR_PATH}/${action}`, sameOrigin, formLimit, async (c) => {
      try {
        return redirect(await act(c, kit.callerOf(c), await formFields(c)));
      } catch (err) {
        return await kit.securityError(c, err);
      }
    });

  securityForm("enable", async (c, caller, form) => {
    // The recovery codes `enable` answers are not shown: the confirming code replaces them.
    await kit.twoFactor.enable(caller.userId, form.password ?? "", clientOf(c.req.raw).address);
    return "/settings/security#two-factor";
  });

  securityForm("verify", async (c, caller, form) => {
    const r = await kit.twoFactor.verifySignedIn(
      c.req.raw,
      caller.userId,
      caller.sessionId,
      (form.code ?? "").trim(),
      { freshRecoveryCodes: true },
    );
    if (!r.recoveryCodes) return "/settings/security?notice=two-factor-on#two-factor";
    const id = await c.get("store").flash.put({ backupCodes: r.recoveryCodes });
    return `/settings/security?notice=two-factor-on&codes=${id}#two-factor`;
  });

  securityForm("disable", async (c, caller, form) => {
    await kit.twoFactor.disable(c.req.raw, caller.userId, caller.sessionId, form.password ?? "");
    return "/settings/security?notice=two-factor-off#two-factor";
  });

  securityForm("backup-codes", async (c, caller, form) => {
    const codes = await kit.twoFactor.generateBackupCodes(
      c.req.raw,
      caller.userId,
      caller.sessionId,
      form.password ?? "",
    );
    const id = await c.get("store").flash.put({ backupCodes: codes });
    return `/settings/security?codes=${id}#two-factor`;
  });
}

export const TWO_FACTOR_NOTICES: Record<string, string> = {
  "two-factor-on": "Two-factor authentication is on. Sign-in now asks for a code.",
  "two-factor-off": "Two-factor authentication is off.",
};
