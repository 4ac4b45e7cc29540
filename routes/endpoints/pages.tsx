/**
 * Settings › Endpoints (issue 23): the account's endpoints with their type, target, state and
 * delivery counts; create (a webhook's URL, headers and timeout; a forward's address; a group's
 * addresses), an endpoint's page with its signing secret shown once after create or roll (Post/
 * Redirect/Get through the one-time flash, store/flash.ts, like a new API key), a test with its
 * result, edit, roll and delete (saying what the delete detaches).
 *
 * Every form calls the action its API operation calls (routes/endpoints/actions.ts
 * `EndpointActions`; FORM_OPERATIONS in routes/two_factor/pages.tsx names the operation, so sudo
 * mode applies as declared): the body is checked by the API's schemas, the config, quota, test
 * throttle, URL rules, delivery and records are the action's, and its refusals (the API's
 * HttpErrors) come back on the field they name (page_form.tsx `fieldRefusal`) or as the form's
 * message, with every value kept. The test form may name another URL (`overrideUrl`).
 */
import type { Context, Hono } from "hono";
import type { AppEnv } from "../../auth/middleware.ts";
import { HttpError } from "../../lib/errors.ts";
import type { EndpointRecord, EndpointType } from "../../store/endpoints/record.ts";
import type { TenantStore } from "../../store/tenant.ts";
import type { DashboardKit } from "../dashboard/kit.ts";
import { type EndpointActions, endpointActions, type EndpointRouteOptions } from "./actions.ts";
import { SECRET_ROLLED } from "./operations.ts";
import {
  configOf,
  emptyValues,
  type EndpointFormError,
  type EndpointFormValues,
  fieldRefusal,
  formValues,
  valuesOf,
  zodRefusal,
} from "./page_form.tsx";
import {
  EndpointDetailPage,
  type EndpointDetailProps,
  ENDPOINTS_PATH,
  EndpointsPage,
  type EndpointsPageProps,
  type EndpointUsers,
  type TestShown,
} from "./page_views.tsx";
import { createEndpointBody, testEndpointBody, updateEndpointBody } from "./schemas.ts";

export { ENDPOINTS_PATH };

const ENDPOINT_ID = /^ep_[0-9A-Za-z_-]{1,64}$/;
const NO_SUCH = "No such endpoint in this account.";

/** What an endpoint POST hands to the page after its redirect (once). */
type EndpointFlash = { notice?: string; secret?: string; test?: TestShown };

export type EndpointPagesDeps = {
  kit: DashboardKit;
  /** The options the API's endpoint operations run with (app.ts): URL rules, resolver, clock. */
  endpoints: EndpointRouteOptions;
};

/** The deps with the actions the API's operations run (routes/endpoints/actions.ts). */
type PageDeps = EndpointPagesDeps & { actions: EndpointActions };

const store = (c: Context<AppEnv>): TenantStore => c.get("store");

function endpointId(raw: string): string {
  if (!ENDPOINT_ID.test(raw)) throw new Deno.errors.NotFound("No such endpoint");
  return raw;
}

function typeOf(raw: string | undefined): EndpointType {
  return raw === "email" || raw === "email_group" ? raw : "webhook";
}

/** Registers Settings › Endpoints (after the session and sudo middleware). */
export function registerEndpointPages(app: Hono<AppEnv>, pageDeps: EndpointPagesDeps): void {
  const deps: PageDeps = { ...pageDeps, actions: endpointActions(pageDeps.endpoints) };
  const { kit } = deps;
  const form = [kit.sameOrigin, kit.formLimit] as const;
  app.get(ENDPOINTS_PATH, async (c) => {
    const flash = await takeFlash(c);
    return listPage(c, deps, { notice: flash?.notice });
  });
  app.post(ENDPOINTS_PATH, ...form, (c) => createEndpoint(c, deps));
  app.get(`${ENDPOINTS_PATH}/:id`, async (c) => {
    const flash = await takeFlash(c);
    return detailOr404(c, deps, c.req.param("id"), {
      ...(flash?.notice ? { notice: flash.notice } : {}),
      ...(flash?.secret ? { secret: flash.secret } : {}),
      ...(flash?.test ? { test: flash.test } : {}),
    });
  });
  app.post(`${ENDPOINTS_PATH}/:id/edit`, ...form, (c) => editEndpoint(c, deps));
  app.post(`${ENDPOINTS_PATH}/:id/test`, ...form, (c) => testEndpoint(c, deps));
  app.post(`${ENDPOINTS_PATH}/:id/roll`, ...form, (c) => rollSecret(c, deps));
  app.post(`${ENDPOINTS_PATH}/:id/delete`, ...form, (c) => deleteEndpoint(c, deps));
}

async function takeFlash(c: Context<AppEnv>): Promise<EndpointFlash | null> {
  const id = c.req.query("flash");
  return id ? await store(c).flash.take<EndpointFlash>(id) : null;
}

async function redirectWithFlash(
  c: Context<AppEnv>,
  kit: DashboardKit,
  to: string,
  flash: EndpointFlash,
): Promise<Response> {
  const id = await store(c).flash.put(flash);
  return kit.redirect(`${to}?flash=${id}`);
}

/** The list with the create form (`?type=` picks its fields), and `extra`. */
async function listPage(
  c: Context<AppEnv>,
  deps: PageDeps,
  extra: Partial<EndpointsPageProps>,
  status = 200,
  headers: HeadersInit = {},
): Promise<Response> {
  const tenant = store(c);
  const [user, all] = await Promise.all([tenant.user(), tenant.endpoints.all()]);
  all.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
  return deps.kit.page(
    <EndpointsPage
      email={user.email}
      endpoints={all}
      max={tenant.endpoints.maxEndpoints}
      type={typeOf(c.req.query("type"))}
      values={emptyValues()}
      {...extra}
    />,
    status,
    headers,
  );
}

/** The addresses and catch-all domains routed to the endpoint (what a delete detaches). */
async function usersOf(tenant: TenantStore, id: string): Promise<EndpointUsers> {
  const refs = await tenant.endpoints.references(id);
  const [addresses, domains] = await Promise.all([
    tenant.emailAddresses.getMany(refs.addressIds),
    tenant.emailAddresses.domains(refs.domainIds),
  ]);
  return {
    addresses: addresses.sort((a, b) => a.address.localeCompare(b.address)),
    domains: [...domains.values()].sort((a, b) => a.domain.localeCompare(b.domain)),
  };
}

/** The endpoint's page; the list with a 404 when the account has no such endpoint. */
async function detailOr404(
  c: Context<AppEnv>,
  deps: PageDeps,
  rawId: string,
  extra: Partial<EndpointDetailProps>,
  status = 200,
  headers: HeadersInit = {},
): Promise<Response> {
  const tenant = store(c);
  let r: EndpointRecord;
  try {
    r = await tenant.endpoints.get(endpointId(rawId));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return listPage(c, deps, { banner: NO_SUCH }, 404);
    throw err;
  }
  const [user, users] = await Promise.all([tenant.user(), usersOf(tenant, r.id)]);
  return deps.kit.page(
    <EndpointDetailPage email={user.email} r={r} users={users} values={valuesOf(r)} {...extra} />,
    status,
    headers,
  );
}

type Again = (error: EndpointFormError, status: number, headers?: HeadersInit) => Promise<Response>;

/** A refused create or edit form: on the field the refusal names, else with its message. */
function refusedForm(
  kit: DashboardKit,
  err: unknown,
  values: EndpointFormValues,
  again: Again,
): Promise<Response> {
  const shown = fieldRefusal(err, values);
  if (shown) return again(shown, 400);
  const e = kit.errorInfo(err);
  return again({ message: e.message }, e.status, e.headers);
}

/** `POST /api/e2/endpoints`, from the create form. */
async function createEndpoint(c: Context<AppEnv>, deps: PageDeps): Promise<Response> {
  const { kit } = deps;
  const form = await kit.formFields(c);
  const type = typeOf(form.type);
  const values = formValues(form);
  const again = (error: EndpointFormError, status: number, headers: HeadersInit = {}) =>
    listPage(c, deps, { type, values, error }, status, headers);
  try {
    const parsed = createEndpointBody.safeParse({
      name: values.name,
      type,
      ...(values.description.trim() === "" ? {} : { description: values.description }),
      config: configOf(type, values),
    });
    if (!parsed.success) return await again(zodRefusal(parsed.error, values), 400);
    const { record: r, secret } = await deps.actions.create(store(c), parsed.data);
    return await redirectWithFlash(c, kit, `${ENDPOINTS_PATH}/${r.id}`, {
      notice: `Created endpoint ${r.name}.` +
        (secret ? " Copy its signing secret now: it is shown this once." : ""),
      ...(secret ? { secret } : {}),
    });
  } catch (err) {
    return await refusedForm(kit, err, values, again);
  }
}

/** `PUT /api/e2/endpoints/{id}`, from the edit form. */
async function editEndpoint(c: Context<AppEnv>, deps: PageDeps): Promise<Response> {
  const { kit } = deps;
  const rawId = c.req.param("id") ?? "";
  const form = await kit.formFields(c);
  const values = formValues(form);
  const again = (error: EndpointFormError, status: number, headers: HeadersInit = {}) =>
    detailOr404(c, deps, rawId, { values, error }, status, headers);
  try {
    const current = await store(c).endpoints.get(endpointId(rawId));
    const webhook = current.type === "webhook";
    const parsed = updateEndpointBody.safeParse({
      name: values.name,
      description: values.description,
      isActive: values.isActive,
      ...(webhook ? { webhookFormat: values.webhookFormat } : {}),
      config: configOf(current.type, values),
    });
    if (!parsed.success) return await again(zodRefusal(parsed.error, values), 400);
    const r = await deps.actions.update(store(c), current.id, parsed.data);
    return await redirectWithFlash(c, kit, `${ENDPOINTS_PATH}/${r.id}`, {
      notice: `Saved endpoint ${r.name}.`,
    });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      return await listPage(c, deps, { banner: NO_SUCH }, 404);
    }
    return await refusedForm(kit, err, values, again);
  }
}

async function testEndpoint(c: Context<AppEnv>, deps: PageDeps): Promise<Response> {
  const { kit } = deps;
  const rawId = c.req.param("id") ?? "";
  const form = await kit.formFields(c);
  try {
    const r = await store(c).endpoints.get(endpointId(rawId));
    const overrideUrl = (form.overrideUrl ?? "").trim();
    const body = testEndpointBody.safeParse({
      webhookFormat: form.webhookFormat ?? r.webhookFormat,
      ...(overrideUrl === "" || r.type !== "webhook" ? {} : { overrideUrl }),
    });
    if (!body.success) {
      throw new HttpError(
        400,
        body.error.issues[0].path[0] === "overrideUrl"
          ? "The test URL must be at most 2048 characters."
          : "Payload format must be inbound, discord or slack.",
      );
    }
    const { testPayload: _payload, ...test } = await deps.actions.test(c, r, body.data);
    return await redirectWithFlash(c, kit, `${ENDPOINTS_PATH}/${r.id}`, { test });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      return await listPage(c, deps, { banner: NO_SUCH }, 404);
    }
    const e = kit.errorInfo(err);
    return await detailOr404(c, deps, rawId, { testError: e.message }, e.status, e.headers);
  }
}

/** `POST /api/e2/endpoints/{id}/secret/roll` (sudo mode, as declared): the new secret once. */
async function rollSecret(c: Context<AppEnv>, deps: PageDeps): Promise<Response> {
  const { kit } = deps;
  const rawId = c.req.param("id") ?? "";
  await kit.formFields(c);
  try {
    const { record: r, secret } = await deps.actions.rollSecret(store(c), endpointId(rawId));
    return await redirectWithFlash(c, kit, `${ENDPOINTS_PATH}/${r.id}`, {
      notice: SECRET_ROLLED,
      secret,
    });
  } catch (err) {
    return await actionRefused(c, deps, rawId, err);
  }
}

/** `DELETE /api/e2/endpoints/{id}`: the notice says what was detached. */
async function deleteEndpoint(c: Context<AppEnv>, deps: PageDeps): Promise<Response> {
  const { kit } = deps;
  const rawId = c.req.param("id") ?? "";
  await kit.formFields(c);
  try {
    const out = await deps.actions.remove(store(c), endpointId(rawId));
    const a = out.addresses.length, d = out.domains.length;
    const notice = `Endpoint ${out.record.name} deleted.` +
      (a > 0 ? ` ${a} address(es) are now store-only.` : "") +
      (d > 0
        ? ` ${d} domain(s) lost their catch-all (${out.domains.map((x) => x.domain).join(", ")}).`
        : "");
    return await redirectWithFlash(c, kit, ENDPOINTS_PATH, { notice });
  } catch (err) {
    return await actionRefused(c, deps, rawId, err);
  }
}

/** A roll or delete refused: the list (404) for an endpoint gone, else its page with the error. */
function actionRefused(
  c: Context<AppEnv>,
  deps: PageDeps,
  rawId: string,
  err: unknown,
): Promise<Response> {
  if (err instanceof Deno.errors.NotFound) return listPage(c, deps, { banner: NO_SUCH }, 404);
  const e = deps.kit.errorInfo(err);
  return detailOr404(c, deps, rawId, { actionError: e.message }, e.status, e.headers);
}
