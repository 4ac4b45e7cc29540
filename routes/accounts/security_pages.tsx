/**
 * Settings > Security: the display name, a password change, and the account's sessions (this
 * device marked) with "Sign out" per session and "Sign out everywhere else", and account deletion
 * (with the password, saying what goes). Two-factor (two_factor_pages.tsx) and passkeys
 * (passkeys_section.tsx) have their sections here too. Every form posts back and redirects
 * (Post/Redirect/Get) through the same account operations and body schemas as `/api/auth/*`;
 * no script is needed.
 */
import type { Context, Hono } from "hono";
import {
  type AccountService,
  type AccountSession,
  type Caller,
  clientAddress,
} from "../../auth/accounts/service.ts";
import { auditContextOf } from "../../auth/audit_context.ts";
import type { AppEnv } from "../../auth/middleware.ts";
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from "../../auth/passwords/hash.ts";
import { clearSessionCookieHeader } from "../../auth/sessions/manager.ts";
import type { SudoMode } from "../../auth/sudo.ts";
import type { TwoFactorService } from "../../auth/two_factor.ts";
import type { Clock } from "../../lib/clock.ts";
import { HttpError } from "../../lib/errors.ts";
import { MAX_NAME_LENGTH } from "../../store/accounts/users.ts";
import { changePasswordBody, deleteUserBody, updateUserBody } from "./schemas.ts";
import { NewPasswordField } from "../dashboard/fields.tsx";
import { formatDate, relative } from "../dashboard/format.ts";
import type { DashboardKit } from "../dashboard/kit.ts";
import { Banner, Layout } from "../dashboard/layout.tsx";
import { PasskeysSection } from "../passkeys/pages.tsx";
import {
  registerTwoFactorPages,
  TWO_FACTOR_NOTICES,
  type TwoFactorPagesKit,
  TwoFactorSection,
  type TwoFactorView,
  twoFactorView,
} from "../two_factor/pages.tsx";

export const SECURITY_PATH = "/settings/security";

/** The banners a redirect after a Security form names (`?notice=`). */
export const SECURITY_NOTICES: Record<string, string> = {
  "name-saved": "Name saved.",
  "password-changed": "Password changed. Every other session was signed out.",
  "session-ended": "That session was signed out.",
  "others-ended": "Every other session was signed out.",
  "account-deleted": "Your account was deleted: its API keys, sessions and domains are gone, " +
    "and its domain names are free.",
};

export type SecurityPageProps = {
  email: string;
  name: string | null;
  sessions: AccountSession[];
  nowMs: number;
  /** Two-factor status and enrolment (two_factor_pages.tsx). */
  twoFactor?: TwoFactorView;
  error?: string;
  notice?: string;
};

function SessionRow(props: { s: AccountSession; nowMs: number }) {
  const { s } = props;
  return (
    <tr>
      <td data-label="Browser">
        {s.userAgent ?? "Unknown browser"}
        {s.current ? <strong class="flag ok">This device</strong> : null}
      </td>
      <td data-label="Address">{s.ip ?? <span class="muted">Unknown</span>}</td>
      <td data-label="Signed in">
        <time datetime={s.createdAt} title={formatDate(s.createdAt)}>
          {formatDate(s.createdAt).slice(0, 10)}
        </time>
      </td>
      <td data-label="Last seen">
        <time datetime={s.lastSeenAt} title={formatDate(s.lastSeenAt)}>
          {relative(s.lastSeenAt, props.nowMs)}
        </time>
      </td>
      <td>
        <form method="post" action={`${SECURITY_PATH}/sessions/${s.id}/revoke`}>
          <button type="submit" class="secondary">
            Sign out<span class="visually-hidden">
              {s.current ? " this device" : " this session"}
            </span>
          </button>
        </form>
      </td>
    </tr>
  );
}

function NameSection(props: { name: string | null }) {
  return (
    <section class="card" aria-labelledby="name-title">
      <h2 id="name-title">Name</h2>
      <form method="post" action={`${SECURITY_PATH}/name`}>
        <div class="row">
          <div class="field grow">
            <label for="display-name">Display name</label>
            <input
              id="display-name"
              name="name"
              type="text"
              required
              maxlength={MAX_NAME_LENGTH}
              autocomplete="name"
              value={props.name ?? ""}
            />
          </div>
          <div class="field">
            <button type="submit">Save name</button>
          </div>
        </div>
      </form>
    </section>
  );
}

function PasswordSection(props: { email: string }) {
  return (
    <section class="card" aria-labelledby="password-title">
      <h2 id="password-title">Change password</h2>
      <form method="post" action={`${SECURITY_PATH}/password`}>
        <input type="hidden" name="username" autocomplete="username" value={props.email} />
        <div class="field">
          <label for="current-password">Current password</label>
          <input
            id="current-password"
            name="currentPassword"
            type="password"
            required
            maxlength={MAX_PASSWORD_LENGTH}
            autocomplete="current-password"
          />
        </div>
        <NewPasswordField id="new-password" name="newPassword" label="New password">
          At least {MIN_PASSWORD_LENGTH}{" "}
          characters. Changing it signs out every other session; this one stays.
        </NewPasswordField>
        <button type="submit">Change password</button>
      </form>
    </section>
  );
}

function SessionsSection(props: { sessions: AccountSession[]; nowMs: number }) {
  const others = props.sessions.filter((s) => !s.current).length;
  return (
    <section class="card" aria-labelledby="sessions-title">
      <h2 id="sessions-title">Sessions</h2>
      <table>
        <caption class="visually-hidden">Where this account is signed in</caption>
        <thead>
          <tr>
            <th scope="col">Browser</th>
            <th scope="col">Address</th>
            <th scope="col">Signed in</th>
            <th scope="col">Last seen</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {props.sessions.map((s) => <SessionRow key={s.id} s={s} nowMs={props.nowMs} />)}
        </tbody>
      </table>
      <form method="post" action={`${SECURITY_PATH}/other-sessions/revoke`}>
        <button type="submit" class="danger" disabled={others === 0}>
          Sign out everywhere else
        </button>
      </form>
    </section>
  );
}

function DeleteAccountSection(props: { email: string }) {
  return (
    <section class="card" aria-labelledby="delete-title">
      <h2 id="delete-title">Delete account</h2>
      <p id="delete-what">
        Deleting the account deletes, at once and for good: every API key (they stop working
        immediately), every session (every device is signed out), and every domain with its DNS
        records; its verified domain names become free for any account to verify. The email address
        can sign up again. This cannot be undone.
      </p>
      <form method="post" action={`${SECURITY_PATH}/delete`}>
        <input type="hidden" name="username" autocomplete="username" value={props.email} />
        <div class="field">
          <label for="delete-password">Password</label>
          <input
            id="delete-password"
            name="password"
            type="password"
            required
            maxlength={MAX_PASSWORD_LENGTH}
            autocomplete="current-password"
            aria-describedby="delete-what"
          />
        </div>
        <button type="submit" class="danger">Delete account</button>
      </form>
    </section>
  );
}

export function SecurityPage(props: SecurityPageProps) {
  return (
    <Layout title="Security" email={props.email}>
      <nav class="crumbs" aria-label="Breadcrumb">Settings › Security</nav>
      <h1>Security</h1>
      {props.error ? <Banner kind="error" id="form-error">{props.error}</Banner> : null}
      {props.notice ? <Banner kind="ok">{props.notice}</Banner> : null}

      <NameSection name={props.name} />
      <PasswordSection email={props.email} />

      {props.twoFactor ? <TwoFactorSection {...props.twoFactor} /> : null}

      <PasskeysSection />

      <SessionsSection sessions={props.sessions} nowMs={props.nowMs} />
      <DeleteAccountSection email={props.email} />
    </Layout>
  );
}

// --- Routes ----------------------------------------------------------------------------------

export type SecurityPagesDeps = {
  kit: DashboardKit;
  accounts: AccountService;
  clock: Clock;
  /** Second factors: the page's two-factor section. */
  twoFactor: TwoFactorService;
};

/** The signed-in caller the account operations take: a session, never an API key. */
export function callerOf(c: Context<AppEnv>): Caller {
  const p = c.get("principal");
  if (p.method !== "session" || !p.sessionId) throw new HttpError(401, "Sign in to continue.");
  return { userId: p.userId, sessionId: p.sessionId, audit: auditContextOf(c.req.raw, p) };
}

/** Settings > Security for the caller, with `extra` (a notice or an error) and `status`. */
async function securityPage(
  c: Context<AppEnv>,
  deps: SecurityPagesDeps,
  extra: Partial<SecurityPageProps>,
  status = 200,
  headers: HeadersInit = {},
): Promise<Response> {
  const [user, list] = await Promise.all([
    c.get("store").user(),
    deps.accounts.listSessions(callerOf(c)),
  ]);
  return deps.kit.page(
    <SecurityPage
      email={user.email}
      name={user.name ?? null}
      twoFactor={await twoFactorView(deps.twoFactor, c, user.id)}
      sessions={list}
      nowMs={deps.clock()}
      {...extra}
    />,
    status,
    headers,
  );
}

/** A refused Security form: the page again with the error's message and status. */
function securityError(c: Context<AppEnv>, deps: SecurityPagesDeps, err: unknown) {
  const e = deps.kit.errorInfo(err);
  return securityPage(c, deps, { error: e.message }, e.status, e.headers);
}

/**
 * What the two-factor pages and the sudo guard (two_factor_pages.tsx) need: the kit, the account
 * and two-factor operations, sudo mode, the caller, and the Security page to re-render after a
 * refused two-factor form.
 */
export function twoFactorPagesKit(
  deps: SecurityPagesDeps & {
    sudo: SudoMode;
    /** The operations whose declaration asks for sudo mode (routes/registry.ts). */
    sudoOperations: ReadonlyMap<string, true | "session">;
  },
): TwoFactorPagesKit {
  return {
    ...deps.kit,
    accounts: deps.accounts,
    callerOf,
    securityError: (c, err) => securityError(c, deps, err),
    twoFactor: deps.twoFactor,
    sudo: deps.sudo,
    sudoOperations: deps.sudoOperations,
  };
}

/**
 * Registers Settings > Security, its two-factor pages (with sign-in's second step) and its
 * account forms, after the session and sudo middleware.
 */
export function registerSecurityPages(
  app: Hono<AppEnv>,
  deps: SecurityPagesDeps & { twoFactorPages: TwoFactorPagesKit },
): void {
  const { kit } = deps;
  app.get(SECURITY_PATH, (c) => {
    const key = c.req.query("notice") ?? "";
    return securityPage(c, deps, { notice: kit.notice(key) ?? TWO_FACTOR_NOTICES[key] });
  });
  registerTwoFactorPages(app, deps.twoFactorPages);
  app.post(`${SECURITY_PATH}/name`, kit.sameOrigin, kit.formLimit, (c) => saveName(c, deps));
  app.post(
    `${SECURITY_PATH}/password`,
    kit.sameOrigin,
    kit.formLimit,
    (c) => changePassword(c, deps),
  );
  app.post(
    `${SECURITY_PATH}/delete`,
    kit.sameOrigin,
    kit.formLimit,
    (c) => deleteAccount(c, deps),
  );
  app.post(`${SECURITY_PATH}/other-sessions/revoke`, kit.sameOrigin, kit.formLimit, async (c) => {
    try {
      await deps.accounts.revokeOtherSessions(callerOf(c));
      return kit.redirect(`${SECURITY_PATH}?notice=others-ended`);
    } catch (err) {
      return securityError(c, deps, err);
    }
  });
  app.post(
    `${SECURITY_PATH}/sessions/:id/revoke`,
    kit.sameOrigin,
    kit.formLimit,
    (c) => revokeSession(c, deps, c.req.param("id")),
  );
}

// Each form reads and validates its fields first (a refused body is the kit's "Form not
// accepted" page, a field problem a 400 on this page), then acts inside the try.

async function saveName(c: Context<AppEnv>, deps: SecurityPagesDeps): Promise<Response> {
  const { kit } = deps;
  const form = await kit.formFields(c);
  const parsed = updateUserBody.safeParse({ name: form.name ?? "" });
  if (!parsed.success) {
    return securityPage(c, deps, { error: kit.firstProblem(parsed.error, { name: "Name" }) }, 400);
  }
  try {
    await deps.accounts.updateName(callerOf(c), parsed.data.name);
    return kit.redirect(`${SECURITY_PATH}?notice=name-saved`);
  } catch (err) {
    return securityError(c, deps, err);
  }
}

async function changePassword(c: Context<AppEnv>, deps: SecurityPagesDeps): Promise<Response> {
  const { kit } = deps;
  const form = await kit.formFields(c);
  const parsed = changePasswordBody.safeParse({
    currentPassword: form.currentPassword ?? "",
    newPassword: form.newPassword ?? "",
  });
  if (!parsed.success) {
    const labels = { currentPassword: "Current password", newPassword: "New password" };
    return securityPage(c, deps, { error: kit.firstProblem(parsed.error, labels) }, 400);
  }
  try {
    await deps.accounts.changePassword(callerOf(c), parsed.data, clientAddress(c));
    return kit.redirect(`${SECURITY_PATH}?notice=password-changed`);
  } catch (err) {
    return securityError(c, deps, err);
  }
}

async function deleteAccount(c: Context<AppEnv>, deps: SecurityPagesDeps): Promise<Response> {
  const { kit } = deps;
  const form = await kit.formFields(c);
  const parsed = deleteUserBody.safeParse({ password: form.password ?? "" });
  if (!parsed.success) {
    const error = kit.firstProblem(parsed.error, { password: "Password" });
    return securityPage(c, deps, { error }, 400);
  }
  try {
    await deps.accounts.deleteUser(callerOf(c), parsed.data, clientAddress(c));
    return kit.redirect("/sign-in?notice=account-deleted", [[
      "Set-Cookie",
      clearSessionCookieHeader(c.req.raw),
    ]]);
  } catch (err) {
    return securityError(c, deps, err);
  }
}

/** Signs out session `id`; the caller's own session goes back to the sign-in page. */
async function revokeSession(
  c: Context<AppEnv>,
  deps: SecurityPagesDeps,
  id: string,
): Promise<Response> {
  const { kit } = deps;
  try {
    const caller = callerOf(c);
    if (!/^ses_[A-Za-z0-9_-]{1,64}$/.test(id)) throw new HttpError(404, "No such session.");
    await deps.accounts.revokeSession(caller, id);
    if (id === caller.sessionId) {
      return kit.redirect("/sign-in?notice=signed-out", [[
        "Set-Cookie",
        clearSessionCookieHeader(c.req.raw),
      ]]);
    }
    return kit.redirect(`${SECURITY_PATH}?notice=session-ended`);
  } catch (err) {
    return securityError(c, deps, err);
  }
}
