/**
 * Settings > API Keys > Edit (issue 22, item 16): rename a key, change its scopes and
 * restrictions, disable or enable it. The page posts to `/settings/api-keys/:id/edit`, which
 * FORM_OPERATIONS (routes/two_factor/pages.tsx) names "updateApiKey", so sudo mode applies as it
 * does to PATCH /api/e2/api-keys/{id}; the form validates with the same `updateKeyBody` and
 * `checkKeyGrant` and calls the same store update, so the two surfaces cannot drift apart.
 *
 * The form is the whole key: a field left empty clears that restriction (the API's `null`), so
 * what the page shows is what the key becomes. The fields are the create form's (key_form.tsx),
 * with its refusal handling: every value survives, the bad field is marked and focused.
 */
import type { Context, Hono } from "hono";
import type { AppEnv } from "../../auth/middleware.ts";
import { auditContextOf } from "../../auth/audit_context.ts";
import { HttpError } from "../../lib/errors.ts";
import type { ApiKeyRecord } from "../../store/api_keys.ts";
import type { DashboardKit } from "../dashboard/kit.ts";
import { Banner, Layout } from "../dashboard/layout.tsx";
import { checkKeyGrant, keyBodies, keyErrors, keyIdParam } from "./operations.ts";
import type { ScopeVocabulary } from "../../lib/scopes.ts";
import {
  type DomainChoice,
  fieldOfPath,
  grantFromForm,
  type KeyFormError,
  type KeyFormValues,
  keyFormValues,
  KeyNameField,
  RestrictionFields,
  ScopeFields,
  scopeFields,
} from "./key_form.tsx";

export const editPath = (id: string) => `/settings/api-keys/${id}/edit`;

/** The key's current settings as the form shows them (the restrictions panel open when set). */
export function recordFormValues(r: ApiKeyRecord, vocab: ScopeVocabulary): KeyFormValues {
  const scopes = Object.fromEntries(
    scopeFields(vocab).map((f) => [f.field, (r.scopes ?? []).includes(f.scope)]),
  );
  const values: KeyFormValues = {
    name: r.name,
    expiresInDays: "",
    scopes,
    allowedIps: (r.allowedIps ?? []).join(", "),
    domainIds: r.domainIds ?? [],
    rateLimitMax: r.rateLimit ? String(r.rateLimit.max) : "",
    rateLimitWindowSeconds: r.rateLimit ? String(r.rateLimit.windowMs / 1000) : "",
    restrictionsOpen: false,
  };
  values.restrictionsOpen = values.allowedIps !== "" || values.domainIds.length > 0 ||
    values.rateLimitMax !== "";
  return values;
}

/**
 * The posted form as a complete `updateKeyBody`: unlike creation, an empty restriction is sent
 * as `null` (cleared), since the form shows every setting and the key becomes what it shows.
 */
export function updateFromForm(
  form: Record<string, string>,
  vocab: ScopeVocabulary,
): Record<string, unknown> {
  const grant = grantFromForm({ ...form, scopes_present: "1" }, vocab);
  return {
    name: form.name ?? "",
    scopes: grant.scopes,
    domainIds: grant.domainIds ?? null,
    allowedIps: grant.allowedIps ?? null,
    rateLimit: grant.rateLimit ?? null,
    disabled: Boolean(form.disabled),
  };
}

export type EditKeyPageProps = {
  email: string;
  keyRef: { id: string; name: string; start: string };
  values: KeyFormValues;
  disabled: boolean;
  error?: KeyFormError;
  /** The banner sentence of a refusal. */
  message?: string;
  domains: DomainChoice[];
  domainsTotal: number;
  /** The other keys' names: a repeated name is noted, not refused (as on creation). */
  takenNames: string[];
  /** The scopes offered (the built-in ones and the operator's). */
  vocab: ScopeVocabulary;
};

/** Disabling is reversible, so it is a checkbox here rather than a confirmation like deletion. */
function DisabledField(props: { disabled: boolean }) {
  return (
    <fieldset class="box">
      <legend>State</legend>
      <label class="check">
        <input
          type="checkbox"
          name="disabled"
          value="on"
          checked={props.disabled}
          aria-describedby="key-disabled-hint"
        />{" "}
        Disabled
      </label>
      <p class="hint" id="key-disabled-hint">
        A disabled key is refused (401) until enabled again; nothing else about it changes.
      </p>
    </fieldset>
  );
}

export function EditKeyPage(props: EditKeyPageProps) {
  const { values, error } = props;
  return (
    <Layout title={`Edit API key ${props.keyRef.name}`} email={props.email}>
      <nav class="crumbs" aria-label="Breadcrumb">
        Settings › <a href="/settings/api-keys">API Keys</a> › Edit
      </nav>
      <h1>Edit API key</h1>
      {props.message ? <Banner kind="error" id="form-error">{props.message}</Banner> : null}
      <section class="card" aria-labelledby="edit-title">
        <h2 id="edit-title">
          {props.keyRef.name} <code>{props.keyRef.start}…</code>
        </h2>
        <form method="post" action={editPath(props.keyRef.id)} class="key-form">
          <div class="row">
            <KeyNameField values={values} error={error} takenNames={props.takenNames} />
          </div>
          <p class="hint" id="key-name-hint">
            A distinct name per application tells keys apart in Usage and the Security log.
          </p>
          <ScopeFields values={values} error={error} vocab={props.vocab} />
          <RestrictionFields
            values={values}
            error={error}
            domains={props.domains}
            domainsTotal={props.domainsTotal}
          />
          <DisabledField disabled={props.disabled} />
          <div class="submit actions">
            <button type="submit">Save changes</button>
            <a href="/settings/api-keys" class="button secondary">Cancel</a>
          </div>
        </form>
      </section>
    </Layout>
  );
}

export type KeyEditDeps = {
  kit: DashboardKit;
  /** The account rate limit: a key's own limit may not exceed it (`checkKeyGrant`). */
  rateLimit: { max: number; windowMs: number };
  /** The picker's domains (the keys page lists the same ones). */
  pickerDomains: number;
  /** The scopes offered (the built-in ones and the operator's; lib/scopes.ts). */
  scopes: ScopeVocabulary;
};

/** The field labels for the sentence a refusal shows. */
const EDIT_LABELS = {
  name: "Name",
  scopes: "Scopes",
  domainIds: "Domains",
  allowedIps: "Allowed addresses",
  rateLimit: "Rate limit",
  disabled: "Disabled",
};

/** Registers the edit page and its form (after the session and sudo middleware). */
export function registerKeyEditPage(app: Hono<AppEnv>, deps: KeyEditDeps): void {
  const { kit } = deps;
  app.get(editPath(":id"), async (c) => {
    try {
      const record = await keyErrors(() =>
        c.get("store").apiKeys.get(keyIdParam(c.req.param("id") ?? ""))
      );
      return await editPage(c, deps, record, {
        values: recordFormValues(record, deps.scopes),
        disabled: record.disabled ?? false,
      });
    } catch (err) {
      return notFound(c, kit, err);
    }
  });
  app.post(editPath(":id"), kit.sameOrigin, kit.formLimit, (c) => saveKey(c, deps));
}

/** A missing or malformed key id: the dashboard's error page, as for any refusal. */
async function notFound(c: Context<AppEnv>, kit: DashboardKit, err: unknown): Promise<Response> {
  const e = kit.errorInfo(err);
  const user = await c.get("store").user();
  return kit.page(
    <Layout title="API key not found" email={user.email}>
      <h1>API key not found</h1>
      <Banner kind="error">{e.message}</Banner>
      <p>
        <a href="/settings/api-keys">Back to API Keys</a>
      </p>
    </Layout>,
    e.status,
    e.headers,
  );
}

type EditState = Pick<EditKeyPageProps, "values" | "disabled" | "error" | "message">;

async function editPage(
  c: Context<AppEnv>,
  deps: KeyEditDeps,
  record: ApiKeyRecord,
  state: EditState,
  status = 200,
  headers: HeadersInit = {},
): Promise<Response> {
  const store = c.get("store");
  const [user, keys, domains] = await Promise.all([
    store.user(),
    store.apiKeys.list(),
    store.domains.list({}, { limit: deps.pickerDomains, offset: 0 }),
  ]);
  const others = keys.filter((k) => k.id !== record.id).map((k) => k.name);
  return deps.kit.page(
    <EditKeyPage
      email={user.email}
      keyRef={{ id: record.id, name: record.name, start: record.start }}
      domains={domains.data.map((d) => ({ id: d.id, name: d.domain }))
        .sort((a, b) => a.name.localeCompare(b.name))}
      domainsTotal={domains.total}
      takenNames={[...new Set(others)]}
      vocab={deps.scopes}
      {...state}
    />,
    status,
    headers,
  );
}

/** The same checks and store update as PATCH /api/e2/api-keys/{id} (routes/api_keys/operations.ts). */
async function saveKey(c: Context<AppEnv>, deps: KeyEditDeps): Promise<Response> {
  const { kit } = deps;
  let record: ApiKeyRecord;
  try {
    record = await keyErrors(() => c.get("store").apiKeys.get(keyIdParam(c.req.param("id") ?? "")));
  } catch (err) {
    return notFound(c, kit, err);
  }
  const form = await kit.formFields(c);
  const refused = (message: string, path: readonly PropertyKey[] | string | undefined) => ({
    values: {
      ...keyFormValues({ ...form, scopes_present: "1" }, deps.scopes),
      expiresInDays: "",
    },
    disabled: Boolean(form.disabled),
    message,
    error: path === undefined ? undefined : { field: fieldOfPath(path), message },
  });
  const parsed = keyBodies(deps.scopes).update.safeParse(updateFromForm(form, deps.scopes));
  if (!parsed.success) {
    const message = kit.firstProblem(parsed.error, EDIT_LABELS);
    return editPage(c, deps, record, refused(message, parsed.error.issues[0]?.path ?? []), 400);
  }
  try {
    const body = parsed.data;
    const grant = await checkKeyGrant(c, body, deps.rateLimit);
    const ctx = auditContextOf(c.req.raw, c.get("principal"));
    await keyErrors(() =>
      c.get("store").apiKeys.update(record.id, {
        ...grant,
        ...(body.name !== undefined ? { name: body.name } : {}),
        ...(body.disabled !== undefined ? { disabled: body.disabled } : {}),
      }, ctx)
    );
    return kit.redirect("/settings/api-keys?notice=updated");
  } catch (err) {
    const e = kit.errorInfo(err);
    const field = err instanceof HttpError && typeof err.extra.field === "string"
      ? err.extra.field
      : undefined;
    return editPage(c, deps, record, refused(e.message, field), e.status, e.headers);
  }
}
