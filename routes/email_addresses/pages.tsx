/**
 * A domain's e-mail addresses on its page (Settings › Domains › a domain, issue 23): the list with
 * each address's routing, state and whether it receives (`isReceiptRuleConfigured`: active on a
 * verified domain), adding one (the local part, the domain's name shown as its suffix, an
 * endpoint of this account or none), changing its routing or state, deleting it, and the
 * domain's catch-all endpoint.
 *
 * routes/domains/pages.tsx renders the section (`AddressesSection`, loaded by
 * `loadAddressSection`); this module registers its forms, which re-render that page through the
 * `domainPage` the domain pages hand over (so neither module imports the other both ways). Each
 * form calls the action its API operation calls (createEmailAddress, updateEmailAddress,
 * deleteEmailAddress, updateDomain: routes/email_addresses/actions.ts; FORM_OPERATIONS in
 * routes/two_factor/pages.tsx): the API's schemas check the body, the action applies the rules
 * and maps the store's refusals once, and the form shows them on the field they name.
 */
import type { Context, Hono } from "hono";
import type { AppEnv } from "../../auth/middleware.ts";
import { HttpError, validationError } from "../../lib/errors.ts";
import type { DomainRecord } from "../../store/domains/record.ts";
import {
  type EmailAddressRecord,
  type EndpointRecord,
  routedEndpointId,
} from "../../store/endpoints/record.ts";
import type { TenantStore } from "../../store/tenant.ts";
import type { DashboardKit } from "../dashboard/kit.ts";
import { updateDomainBody } from "../domains/schemas.ts";
import {
  createAddress,
  deleteAddress as removeAddress,
  setCatchAll as changeCatchAll,
  updateAddress,
} from "./actions.ts";
import { createEmailAddressBody, updateEmailAddressBody } from "./schemas.ts";
import {
  AddressesSection,
  type AddressFormState,
  type AddressSectionProps,
} from "./page_views.tsx";

export { AddressesSection };
export type { AddressFormState, AddressSectionProps };

/** Settings › Domains (routes/domains/pages.tsx DOMAINS_PATH; not imported: no import cycle). */
const DOMAINS = "/settings/domains";
const DOMAIN_ID = /^dom_[0-9A-Za-z_-]{1,64}$/;
const ADDRESS_ID = /^ea_[0-9A-Za-z_-]{1,64}$/;

/** The section's data for `domain`'s page, with a refused form's state if any. */
export async function loadAddressSection(
  tenant: TenantStore,
  domain: DomainRecord,
  form?: AddressFormState,
): Promise<AddressSectionProps> {
  const [addresses, endpoints] = await Promise.all([
    tenant.emailAddresses.all(domain.id),
    tenant.endpoints.all(),
  ]);
  addresses.sort((a, b) => a.address.localeCompare(b.address));
  endpoints.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  return { domain, addresses, endpoints, ...(form ? { form } : {}) };
}

/** Renders the domain's page (or the list's 404) with a notice, an error or a refused form. */
export type DomainPageRenderer = (
  c: Context<AppEnv>,
  domainId: string,
  extra: { notice?: string; error?: string; addressForm?: AddressFormState },
  status?: number,
  headers?: HeadersInit,
) => Promise<Response>;

export type AddressPagesDeps = { kit: DashboardKit; domainPage: DomainPageRenderer };

const store = (c: Context<AppEnv>): TenantStore => c.get("store");

function domainIdOf(raw: string | undefined): string {
  if (!raw || !DOMAIN_ID.test(raw)) throw new Deno.errors.NotFound("No such domain");
  return raw;
}

/** The address `rawId` of domain `domainId`; NotFound for one of another domain or account. */
async function addressOf(
  c: Context<AppEnv>,
  domainId: string,
  rawId: string | undefined,
): Promise<EmailAddressRecord> {
  const gone = new Deno.errors.NotFound(NO_ADDRESS);
  if (!rawId || !ADDRESS_ID.test(rawId)) throw gone;
  const a = await store(c).emailAddresses.get(rawId).catch((err) => {
    throw err instanceof Deno.errors.NotFound ? gone : err;
  });
  if (a.domainId !== domainId) throw gone;
  return a;
}

/** A refusal as the form shows it: a 400's first detail names the field, else the message. */
function shownError(
  kit: DashboardKit,
  err: unknown,
): { field?: string; message: string; status: number; headers: HeadersInit } {
  if (err instanceof HttpError && err.status === 400 && Array.isArray(err.extra.details)) {
    const first = err.extra.details[0] as { path?: unknown; message?: unknown } | undefined;
    if (first) {
      const field = String(first.path ?? "");
      const label = FIELD_LABELS[field] ?? "This field";
      return { field, message: `${label} ${String(first.message)}.`, status: 400, headers: {} };
    }
  }
  const e = kit.errorInfo(err);
  return { message: e.message, status: e.status, headers: e.headers };
}

const FIELD_LABELS: Record<string, string> = {
  address: "The address",
  endpointId: "The endpoint",
  webhookId: "The endpoint",
  catchAllEndpointId: "The catch-all endpoint",
  isActive: "Active",
};

/** Registers the address and catch-all forms of a domain's page. */
export function registerAddressPages(app: Hono<AppEnv>, deps: AddressPagesDeps): void {
  const { kit } = deps;
  const form = [kit.sameOrigin, kit.formLimit] as const;
  app.post(`${DOMAINS}/:id/addresses`, ...form, (c) => addAddress(c, deps));
  app.post(`${DOMAINS}/:id/addresses/:addressId/edit`, ...form, (c) => editAddress(c, deps));
  app.post(`${DOMAINS}/:id/addresses/:addressId/delete`, ...form, (c) => deleteAddress(c, deps));
  app.post(`${DOMAINS}/:id/catch-all`, ...form, (c) => setCatchAll(c, deps));
}

async function redirectWithNotice(
  c: Context<AppEnv>,
  kit: DashboardKit,
  domainId: string,
  notice: string,
): Promise<Response> {
  const id = await store(c).flash.put({ notice });
  return kit.redirect(`${DOMAINS}/${domainId}?flash=${id}#addresses`);
}

const NO_ADDRESS = "No such address";

/**
 * A form naming a domain or address that is not this account's (or an address of another
 * domain): a 404, the domain's page saying so, or the domains' list when the domain is missing.
 */
function missing(c: Context<AppEnv>, deps: AddressPagesDeps, err: Error): Promise<Response> {
  const error = err.message === NO_ADDRESS ? "No such email address on this domain." : undefined;
  return deps.domainPage(c, c.req.param("id") ?? "", error ? { error } : {}, 404);
}

/** `POST /api/e2/email-addresses` for `local@<the domain>`. */
async function addAddress(c: Context<AppEnv>, deps: AddressPagesDeps): Promise<Response> {
  const { kit } = deps;
  const form = await kit.formFields(c);
  const local = (form.local ?? "").trim();
  const endpointId = form.endpointId ?? "";
  const isActive = form.isActive === "on";
  const state = (error: AddressFormState["error"]): AddressFormState => ({
    kind: "add",
    local,
    endpointId,
    isActive,
    error,
  });
  try {
    const domainId = domainIdOf(c.req.param("id"));
    const domain = await store(c).domains.get(domainId);
    const parsed = createEmailAddressBody.safeParse({
      address: `${local}@${domain.domain}`,
      domainId,
      ...(endpointId === "" ? {} : { endpointId }),
      isActive,
    });
    if (!parsed.success) {
      throw validationError(parsed.error.issues.map((i) => ({
        path: i.path.map(String).join("."),
        message: i.message,
      })));
    }
    const record = await createAddress(c, parsed.data);
    return await redirectWithNotice(c, kit, domainId, `Added ${record.address}.`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return await missing(c, deps, err);
    const e = shownError(kit, err);
    const error = { field: e.field === "address" ? "local" : e.field, message: e.message };
    return await deps.domainPage(
      c,
      c.req.param("id")!,
      { addressForm: state(error) },
      e.status,
      e.headers,
    );
  }
}

/** `PUT /api/e2/email-addresses/{id}`: routing (none = store only) and the active state. */
async function editAddress(c: Context<AppEnv>, deps: AddressPagesDeps): Promise<Response> {
  const { kit } = deps;
  const form = await kit.formFields(c);
  const endpointId = form.endpointId ?? "";
  const isActive = form.isActive === "on";
  const addressId = c.req.param("addressId") ?? "";
  try {
    const domainId = domainIdOf(c.req.param("id"));
    await addressOf(c, domainId, addressId);
    const parsed = updateEmailAddressBody.safeParse(
      endpointId === ""
        ? { endpointId: null, webhookId: null, isActive }
        : { endpointId, isActive },
    );
    if (!parsed.success) {
      throw validationError([{ path: "endpointId", message: parsed.error.issues[0].message }]);
    }
    const r = await updateAddress(c, addressId, parsed.data);
    return await redirectWithNotice(c, kit, domainId, `Saved ${r.address}.`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return await missing(c, deps, err);
    const e = shownError(kit, err);
    const addressForm: AddressFormState = {
      kind: "edit",
      addressId,
      endpointId,
      isActive,
      error: { message: e.message },
    };
    return await deps.domainPage(c, c.req.param("id")!, { addressForm }, e.status, e.headers);
  }
}

/** `DELETE /api/e2/email-addresses/{id}`. */
async function deleteAddress(c: Context<AppEnv>, deps: AddressPagesDeps): Promise<Response> {
  const { kit } = deps;
  await kit.formFields(c);
  try {
    const domainId = domainIdOf(c.req.param("id"));
    const a = await addressOf(c, domainId, c.req.param("addressId"));
    const r = await removeAddress(c, a.id);
    return await redirectWithNotice(c, kit, domainId, `Deleted ${r.address}.`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return await missing(c, deps, err);
    const e = kit.errorInfo(err);
    return await deps.domainPage(c, c.req.param("id")!, { error: e.message }, e.status, e.headers);
  }
}

/** `PATCH /api/e2/domains/{id}` with `catchAllEndpointId`: an endpoint of this account, or off. */
async function setCatchAll(c: Context<AppEnv>, deps: AddressPagesDeps): Promise<Response> {
  const { kit } = deps;
  const form = await kit.formFields(c);
  const endpointId = form.catchAllEndpointId ?? "";
  try {
    const domainId = domainIdOf(c.req.param("id"));
    const parsed = updateDomainBody.safeParse(
      endpointId === ""
        ? { isCatchAllEnabled: false, catchAllEndpointId: null }
        : { isCatchAllEnabled: true, catchAllEndpointId: endpointId },
    );
    if (!parsed.success) {
      throw validationError([{
        path: "catchAllEndpointId",
        message: parsed.error.issues[0].message,
      }]);
    }
    const r = await changeCatchAll(c, domainId, parsed.data);
    const notice = r.isCatchAllEnabled
      ? `Catch-all on: mail to any other address at ${r.domain} goes to the chosen endpoint.`
      : `Catch-all off for ${r.domain}.`;
    return await redirectWithNotice(c, kit, domainId, notice);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return await missing(c, deps, err);
    const e = shownError(kit, err);
    const addressForm: AddressFormState = {
      kind: "catchAll",
      endpointId,
      error: { message: e.message },
    };
    return await deps.domainPage(c, c.req.param("id")!, { addressForm }, e.status, e.headers);
  }
}

export type { EmailAddressRecord, EndpointRecord };
export { routedEndpointId };
