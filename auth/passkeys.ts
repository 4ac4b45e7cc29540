/**
 * Passkey ceremonies (WebAuthn, @simplewebauthn/server): registration options and verification
 * for a signed-in account, authentication options and verification for a sign-in (a passkey
 * alone, discoverable credentials), a pending sign-in's second step, or a re-authentication.
 *
 * The relying party is the site (lib/client.ts): rpID its host name, the expected origin its
 * origin (PUBLIC_URL's when set). Each ceremony's challenge is stored in KV (store/passkeys.ts),
 * named by a short-lived HttpOnly cookie, bound to the session or account it was issued for, and
 * taken (read and deleted) before the response is verified, so it is used at most once.
 *
 * User verification (the authenticator's PIN, biometric or screen lock, the UV flag) is required
 * in every ceremony: asked for as "required" in the options (USER_VERIFICATION) and checked on
 * every response (requireUserVerified), here and nowhere else. A passkey stands in for both the
 * password and the second factor, so user presence alone (a security key touched without its PIN,
 * in anyone's hand) proves nothing about who holds it. One rule for sign-in, the second step of a
 * pending sign-in and re-authentication alike: registration demands UV too, so every stored
 * passkey can give it, and a rule per purpose would buy nothing but a place to get it wrong.
 */
import {
  type AuthenticationResponseJSON,
  type AuthenticatorTransport,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from "@simplewebauthn/server";
import { decodeBase64Url } from "hono/utils/encode";
import { clientOf, type Site } from "../lib/client.ts";
import { HttpError } from "../lib/errors.ts";
import type { AuditContext } from "../store/audit_log/events.ts";
import {
  addPasskey,
  CHALLENGE_TTL_MS,
  findPasskeyByCredential,
  listPasskeys,
  PasskeyLimitError,
  type PasskeyRecord,
  PasskeyUseConflict,
  putChallenge,
  recordPasskeyUse,
  takeChallenge,
  type WebAuthnChallenge,
} from "../store/passkeys.ts";
import { CHALLENGE_COOKIE, cookieHeader, readCookie } from "./cookies.ts";

export const RP_NAME = "Inbound";
export const PASSKEY_FAILED_MESSAGE = "The passkey could not be verified. Try again.";

/** What every ceremony's options ask of the authenticator (WebAuthn `userVerification`). */
export const USER_VERIFICATION = "required";
export const USER_VERIFICATION_REQUIRED_CODE = "PASSKEY_USER_VERIFICATION_REQUIRED";

/** The relying party of the request's site. */
export function relyingParty(req: Request): { rpID: string; origin: string } {
  const site: Site = clientOf(req).site;
  return { rpID: new URL(site.origin).hostname, origin: site.origin };
}

/** `Set-Cookie` naming the ceremony's challenge (empty value and max-age 0 clears it). */
export function challengeCookieHeader(req: Request, id: string, maxAgeSeconds: number): string {
  return cookieHeader(CHALLENGE_COOKIE, req, id, maxAgeSeconds);
}

export function newChallengeCookie(req: Request, id: string): string {
  return challengeCookieHeader(req, id, Math.floor(CHALLENGE_TTL_MS / 1000));
}

export function clearChallengeCookie(req: Request): string {
  return challengeCookieHeader(req, "", 0);
}

function failed(): HttpError {
  return new HttpError(401, PASSKEY_FAILED_MESSAGE, { code: "PASSKEY_VERIFICATION_FAILED" });
}

/**
 * The passkey policy's one check: the response, its signature verified, carried the UV flag.
 * Checked here rather than by the library's `requireUserVerification` so that the refusal has
 * its own code and message: the library only throws, like for any other mismatch. `status`: 400
 * for a registration (as its other failures), 401 for an assertion.
 */
function requireUserVerified(userVerified: boolean, status: 400 | 401): void {
  if (userVerified) return;
  throw new HttpError(
    status,
    "The passkey was used without its PIN, fingerprint or screen lock, which passkeys here " +
      "need. Try again and confirm it on your device.",
    { code: USER_VERIFICATION_REQUIRED_CODE },
  );
}

/**
 * The request's challenge for `purpose`, taken (deleted) from KV; 400 when there is none (never
 * issued, used, expired) or it was issued for another purpose.
 */
async function takeRequestChallenge(
  kv: Deno.Kv,
  req: Request,
  purpose: WebAuthnChallenge["purpose"],
  nowMs: number,
): Promise<WebAuthnChallenge> {
  const id = readCookie(req, CHALLENGE_COOKIE);
  const challenge = id ? await takeChallenge(kv, id, nowMs) : null;
  if (!challenge || challenge.purpose !== purpose) {
    throw new HttpError(
      400,
      "The passkey challenge is missing, used or expired. Start again.",
      { code: "CHALLENGE_EXPIRED" },
    );
  }
  return challenge;
}

const userHandleBytes = (userId: string) => new TextEncoder().encode(userId);

function asTransports(list: string[]): AuthenticatorTransport[] {
  return list as AuthenticatorTransport[];
}

/** Options for registering a new passkey of the signed-in account (its session binds them). */
export async function registrationOptions(
  kv: Deno.Kv,
  req: Request,
  who: { userId: string; sessionId: string; email: string; name: string | null },
  nowMs: number,
): Promise<{ options: PublicKeyCredentialCreationOptionsJSON; challengeId: string }> {
  const { rpID } = relyingParty(req);
  const existing = await listPasskeys(kv, who.userId);
  const options = await generateRegistrationOptions({
    rpName: RP_NAME,
    rpID,
    userID: userHandleBytes(who.userId),
    userName: who.email,
    userDisplayName: who.name ?? who.email,
    attestationType: "none",
    excludeCredentials: existing.map((p) => ({
      id: p.credentialId,
      transports: asTransports(p.transports),
    })),
    authenticatorSelection: { residentKey: "required", userVerification: USER_VERIFICATION },
  });
  const challengeId = await putChallenge(kv, {
    challenge: options.challenge,
    purpose: "register",
    userId: who.userId,
    sessionId: who.sessionId,
  }, nowMs);
  return { options, challengeId };
}

/**
 * Verifies a registration response against the request's challenge (issued to this session)
 * and stores the passkey with its audit event. 400 for a response that does not verify or was
 * made without user verification.
 */
export async function verifyRegistration(
  kv: Deno.Kv,
  req: Request,
  who: { userId: string; sessionId: string },
  response: RegistrationResponseJSON,
  name: string,
  ctx: AuditContext,
  nowMs: number,
): Promise<PasskeyRecord> {
  const challenge = await takeRequestChallenge(kv, req, "register", nowMs);
  if (challenge.userId !== who.userId || challenge.sessionId !== who.sessionId) {
    throw new HttpError(400, "The passkey challenge was issued to another session. Start again.", {
      code: "CHALLENGE_EXPIRED",
    });
  }
  const { rpID, origin } = relyingParty(req);
  let verified;
  try {
    verified = await verifyRegistrationResponse({
      response,
      expectedChallenge: challenge.challenge,
      expectedOrigin: origin,
      expectedRPID: rpID,
      // Checked below by requireUserVerified, with its own code.
      requireUserVerification: false,
    });
  } catch {
    throw new HttpError(400, "The passkey registration could not be verified.", {
      code: "PASSKEY_REGISTRATION_FAILED",
    });
  }
  if (!verified.verified || !verified.registrationInfo) {
    throw new HttpError(400, "The passkey registration could not be verified.", {
      code: "PASSKEY_REGISTRATION_FAILED",
    });
  }
  const info = verified.registrationInfo;
  requireUserVerified(info.userVerified, 400);
  try {
    return await addPasskey(
      kv,
      {
        userId: who.userId,
        name,
        credentialId: info.credential.id,
        publicKey: new Uint8Array(info.credential.publicKey),
        counter: info.credential.counter,
        transports: info.credential.transports ?? response.response.transports ?? [],
        deviceType: info.credentialDeviceType,
        backedUp: info.credentialBackedUp,
      },
      ctx,
      nowMs,
    );
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) {
      throw new HttpError(409, "This passkey is registered already.", {
        code: "PASSKEY_EXISTS",
      });
    }
    if (err instanceof PasskeyLimitError) {
      throw new HttpError(409, err.message, { code: "PASSKEY_LIMIT" });
    }
    throw err;
  }
}

/**
 * Options for an assertion. With `bound` (a pending sign-in's or a session's account), only that
 * account's passkeys are allowed; without, any discoverable passkey of this site may answer.
 */
export async function authenticationOptions(
  kv: Deno.Kv,
  req: Request,
  bound: { userId: string; sessionId: string | null } | null,
  nowMs: number,
): Promise<{ options: PublicKeyCredentialRequestOptionsJSON; challengeId: string }> {
  const { rpID } = relyingParty(req);
  const allow = bound ? await listPasskeys(kv, bound.userId) : [];
  const options = await generateAuthenticationOptions({
    rpID,
    userVerification: USER_VERIFICATION,
    ...(bound
      ? {
        allowCredentials: allow.map((p) => ({
          id: p.credentialId,
          transports: asTransports(p.transports),
        })),
      }
      : {}),
  });
  const challengeId = await putChallenge(kv, {
    challenge: options.challenge,
    purpose: "authenticate",
    userId: bound?.userId ?? null,
    sessionId: bound?.sessionId ?? null,
  }, nowMs);
  return { options, challengeId };
}

/** The user id a discoverable credential carries as its user handle (base64url), or null. */
function userIdFromHandle(handle: string | undefined): string | null {
  if (!handle) return null;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(decodeBase64Url(handle));
    return /^usr_[A-Za-z0-9]{1,64}$/.test(text) ? text : null;
  } catch {
    return null;
  }
}

/**
 * Verifies an assertion against the request's challenge and records the use (counter and
 * lastUsedAt, in a checked commit). `expectUserId`: the account the passkey must belong to (a
 * pending sign-in's, a session's); the challenge must have been issued for it too. Returns the
 * account whose passkey answered. 401 for anything that does not verify, and for an assertion
 * without user verification (PASSKEY_USER_VERIFICATION_REQUIRED, its use not recorded): every
 * caller (sign-in, second step, re-authentication) comes through here.
 */
export async function verifyAuthentication(
  kv: Deno.Kv,
  req: Request,
  response: AuthenticationResponseJSON,
  expect: { userId: string; sessionId: string | null } | null,
  nowMs: number,
): Promise<{ userId: string; passkey: PasskeyRecord }> {
  const challenge = await takeRequestChallenge(kv, req, "authenticate", nowMs);
  if (expect) {
    if (challenge.userId !== expect.userId || challenge.sessionId !== expect.sessionId) {
      throw failed();
    }
  } else if (challenge.userId !== null) throw failed();
  const userId = expect?.userId ?? userIdFromHandle(response.response.userHandle);
  if (!userId) throw failed();
  // A discoverable credential's user handle must name the account that holds it.
  const handleUser = userIdFromHandle(response.response.userHandle);
  if (response.response.userHandle && handleUser !== userId) throw failed();
  const entry = await findPasskeyByCredential(kv, userId, response.id);
  if (!entry) throw failed();
  const { rpID, origin } = relyingParty(req);
  let verified;
  try {
    verified = await verifyAuthenticationResponse({
      response,
      expectedChallenge: challenge.challenge,
      expectedOrigin: origin,
      expectedRPID: rpID,
      credential: {
        id: entry.value.credentialId,
        publicKey: new Uint8Array(entry.value.publicKey),
        counter: entry.value.counter,
        transports: entry.value.transports,
      },
      // Checked below by requireUserVerified (after the signature that covers the flag).
      requireUserVerification: false,
    });
  } catch {
    // Includes a counter that did not grow: a cloned authenticator.
    throw failed();
  }
  if (!verified.verified) throw failed();
  requireUserVerified(verified.authenticationInfo.userVerified, 401);
  try {
    await recordPasskeyUse(kv, entry, verified.authenticationInfo.newCounter, nowMs);
  } catch (err) {
    if (err instanceof PasskeyUseConflict) throw failed();
    throw err;
  }
  return { userId, passkey: entry.value };
}
