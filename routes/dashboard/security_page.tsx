/**
 * Settings > Security: the display name, a password change, and the account's sessions (this
 * device marked) with "Sign out" per session and "Sign out everywhere else", and account deletion
 * (with the password, saying what goes). Every form posts
 * back and redirects (Post/Redirect/Get); no script is needed.
 */
import type { AccountSession } from "../../auth/accounts.ts";
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from "../../auth/password.ts";
import { MAX_NAME_LENGTH } from "../../store/users.ts";
import { formatDate, relative } from "./api_keys_page.tsx";
import { NewPasswordField } from "./auth_pages.tsx";
import { Banner, Layout } from "./layout.tsx";
import { PasskeysSection } from "./passkeys_section.tsx";
import { TwoFactorSection, type TwoFactorView } from "./two_factor_pages.tsx";

export const SECURITY_PATH = "/settings/security";

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
      <td>
        {s.userAgent ?? "Unknown browser"}
        {s.current ? <strong class="flag ok">This device</strong> : null}
      </td>
      <td>{s.ip ?? <span class="muted">Unknown</span>}</td>
      <td>
        <time datetime={s.createdAt} title={formatDate(s.createdAt)}>
          {formatDate(s.createdAt).slice(0, 10)}
        </time>
      </td>
      <td>
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

export function SecurityPage(props: SecurityPageProps) {
  const others = props.sessions.filter((s) => !s.current).length;
  return (
    <Layout title="Security" email={props.email}>
      <nav class="crumbs" aria-label="Breadcrumb">Settings › Security</nav>
      <h1>Security</h1>
      {props.error ? <Banner kind="error" id="form-error">{props.error}</Banner> : null}
      {props.notice ? <Banner kind="ok">{props.notice}</Banner> : null}

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

      {props.twoFactor ? <TwoFactorSection {...props.twoFactor} /> : null}

      <PasskeysSection />

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

      <section class="card" aria-labelledby="delete-title">
        <h2 id="delete-title">Delete account</h2>
        <p id="delete-what">
          Deleting the account deletes, at once and for good: every API key (they stop working
          immediately), every session (every device is signed out), and every domain with its DNS
          records; its verified domain names become free for any account to verify. The email
          address can sign up again. This cannot be undone.
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
    </Layout>
  );
}
