/**
 * What the e-mail-address operations (and a domain's catch-all change) do, once: the JSON API
 * (routes/email_addresses/operations.ts, `PATCH /api/e2/domains/{id}` in
 * routes/domains/operations.ts) and the forms of a domain's page (routes/email_addresses/
 * pages.tsx) both call these, so the rules (one route, the address's form, the key's domains,
 * the quota, the duplicate, a verified domain for catch-all) and their messages have one copy.
 * Refusals are the API's HttpErrors (400s name the field: `details[0].path`), which the form
 * shows on that field.
 */
import type { Context } from "hono";
import { visibleDomainIds } from "../../auth/api_keys/policy.ts";
import type { AppEnv } from "../../auth/middleware.ts";
import { HttpError, validationError } from "../../lib/errors.ts";
import { NO_RETRY, quotaReached } from "../refusals.ts";
import type { DomainRecord } from "../../store/domains/record.ts";
import { DomainNotVerifiedError } from "../../store/domains/store.ts";
import {
  AddressDomainMismatchError,
  EmailAddressExistsError,
  type EmailAddressRecord,
  NotAWebhookError,
  QuotaError,
  ReferenceNotFoundError,
} from "../../store/endpoints/record.ts";
import type { TenantStore } from "../../store/tenant.ts";
import { normaliseAddress } from "./schemas.ts";

/** The SDK retries 409s (and 403s of a limit) unless told not to. */

const store = (c: Context<AppEnv>): TenantStore => c.get("store");

/** The store's refusals as the API's answers (the dashboard shows the same message). */
export function addressRefusal(err: unknown): unknown {
  if (err instanceof ReferenceNotFoundError) {
    return validationError([{ path: err.field, message: `names no ${err.kind} of this account` }]);
  }
  if (err instanceof NotAWebhookError) {
    return validationError([{
      path: err.field,
      message: "names an endpoint that is not a webhook",
    }]);
  }
  if (err instanceof AddressDomainMismatchError) {
    return validationError([{ path: "address", message: `must be an address at ${err.domain}` }]);
  }
  if (err instanceof EmailAddressExistsError) {
    const message = `The address ${err.address} is already in your account. (Letter case ` +
      "does not make another address.)";
    return new HttpError(409, message, {
      code: "EMAIL_ADDRESS_EXISTS",
    }, NO_RETRY);
  }
  if (err instanceof QuotaError) {
    return quotaReached("email addresses", err.max);
  }
  if (err instanceof DomainNotVerifiedError) {
    return new HttpError(
      400,
      `The domain must be verified before catch-all can be changed (status: ${err.status}).`,
      { code: "DOMAIN_NOT_VERIFIED" },
    );
  }
  return err;
}

function oneRoute(body: { endpointId?: string | null; webhookId?: string | null }): void {
  if (body.endpointId && body.webhookId) {
    throw validationError([{
      path: "webhookId",
      message: "give endpointId or webhookId, not both",
    }]);
  }
}

/** The address, as 404 when it does not exist or the principal may not see its domain. */
export async function visibleAddress(c: Context<AppEnv>, id: string): Promise<EmailAddressRecord> {
  const a = await store(c).emailAddresses.get(id);
  const ids = visibleDomainIds(c.get("principal"));
  if (ids && !ids.has(a.domainId)) throw new Deno.errors.NotFound("No such email address");
  return a;
}

/** A create body (createEmailAddressBody). */
export type AddressInput = {
  address: string;
  domainId: string;
  endpointId?: string | null;
  webhookId?: string | null;
  isActive?: boolean;
};

/** An update body (updateEmailAddressBody). */
export type AddressChanges = {
  endpointId?: string | null;
  webhookId?: string | null;
  isActive?: boolean;
};

/** A catch-all change (updateDomainBody). */
export type CatchAllInput = { isCatchAllEnabled: boolean; catchAllEndpointId?: string | null };

/** Adds an address (`POST /api/e2/email-addresses`). */
export async function createAddress(
  c: Context<AppEnv>,
  body: AddressInput,
): Promise<EmailAddressRecord> {
  oneRoute(body);
  const parsed = normaliseAddress(body.address);
  if (!parsed.ok) throw validationError([{ path: "address", message: parsed.problem }]);
  const ids = visibleDomainIds(c.get("principal"));
  try {
    if (ids && !ids.has(body.domainId)) throw new ReferenceNotFoundError("domainId", "domain");
    const { record } = await store(c).emailAddresses.create({
      address: parsed.address,
      domainId: body.domainId,
      endpointId: body.endpointId ?? null,
      webhookId: body.webhookId ?? null,
      isActive: body.isActive ?? true,
    });
    return record;
  } catch (err) {
    throw addressRefusal(err);
  }
}

/** Changes an address's routing or state (`PUT /api/e2/email-addresses/{id}`). */
export async function updateAddress(
  c: Context<AppEnv>,
  id: string,
  body: AddressChanges,
): Promise<EmailAddressRecord> {
  oneRoute(body);
  await visibleAddress(c, id);
  return await store(c).emailAddresses.update(id, body).catch((err) => {
    throw addressRefusal(err);
  });
}

/** Deletes an address (`DELETE /api/e2/email-addresses/{id}`). */
export async function deleteAddress(c: Context<AppEnv>, id: string): Promise<EmailAddressRecord> {
  await visibleAddress(c, id);
  return await store(c).emailAddresses.delete(id);
}

/** Turns a domain's catch-all on (to an endpoint of this account) or off (`PATCH …/domains/{id}`). */
export async function setCatchAll(
  c: Context<AppEnv>,
  domainId: string,
  body: CatchAllInput,
): Promise<DomainRecord> {
  return await store(c).domains.updateCatchAll(domainId, {
    isCatchAllEnabled: body.isCatchAllEnabled,
    catchAllEndpointId: body.isCatchAllEnabled ? body.catchAllEndpointId ?? null : null,
  }).catch((err) => {
    throw addressRefusal(err);
  });
}
