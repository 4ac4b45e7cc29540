/**
 * OpenAPI descriptions and examples of `/api/auth/passkey/*` (routes/passkeys.ts, a plain Hono
 * router), with the request schemas those routes validate with.
 */
import { z } from "zod";
import { USER_VERIFICATION, USER_VERIFICATION_REQUIRED_CODE } from "../auth/passkeys.ts";
import type { OperationExamples } from "./openapi_examples.ts";
import {
  deletePasskeyBody,
  updatePasskeyBody,
  verifyAuthenticationBody,
  verifyRegistrationBody,
} from "./passkeys.ts";
import type { RouteRegistry } from "./registry.ts";

const passkey = z.object({
  id: z.string().describe("The passkey's id (pky_…)."),
  name: z.string(),
  credentialID: z.string().describe("The WebAuthn credential id, base64url."),
  transports: z.array(z.string()),
  deviceType: z.enum(["singleDevice", "multiDevice"]),
  backedUp: z.boolean(),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable(),
});

const descriptor = z.object({ id: z.string(), type: z.literal("public-key") }).loose();

const creationOptions = z.object({
  challenge: z.string(),
  rp: z.object({ name: z.string(), id: z.string() }),
  user: z.object({ id: z.string(), name: z.string(), displayName: z.string() }),
  pubKeyCredParams: z.array(z.object({ alg: z.number(), type: z.literal("public-key") })),
  timeout: z.number().optional(),
  excludeCredentials: z.array(descriptor),
  authenticatorSelection: z.object({
    residentKey: z.literal("required"),
    userVerification: z.literal(USER_VERIFICATION),
  }).loose(),
  attestation: z.string(),
}).loose().describe("PublicKeyCredentialCreationOptionsJSON (WebAuthn Level 3).");

const requestOptions = z.object({
  challenge: z.string(),
  rpId: z.string(),
  allowCredentials: z.array(descriptor).optional(),
  userVerification: z.literal(USER_VERIFICATION),
  timeout: z.number().optional(),
}).loose().describe("PublicKeyCredentialRequestOptionsJSON (WebAuthn Level 3).");

const signedIn = z.object({
  user: z.object({ id: z.string(), email: z.string() }).loose(),
  session: z.object({ id: z.string(), expiresAt: z.string() }).loose().optional(),
  token: z.null().optional(),
});

const status = z.object({ status: z.boolean() });

const SAME_ORIGIN = "Refused with 403 from another origin (CSRF).";
const CHALLENGE = "Sets a short-lived HttpOnly cookie naming the ceremony's single-use challenge.";
const UV = `User verification (the authenticator's PIN, biometric or screen lock) is ` +
  `${USER_VERIFICATION}: a response without the UV flag is refused with ` +
  `${USER_VERIFICATION_REQUIRED_CODE}.`;
const SUDO = "Needs sudo mode: a proof of identity in the last 10 minutes of the session, else " +
  "403 REAUTHENTICATION_REQUIRED.";

export function describePasskeyRoutes(registry: RouteRegistry): void {
  const tags = ["Accounts"];
  const open = { tags, auth: false } as const;
  const session = { tags, security: ["session" as const] };
  registry
    .describe({
      method: "get",
      path: "/api/auth/passkey/generate-register-options",
      operationId: "passkeyGenerateRegisterOptions",
      summary: "Start registering a passkey",
      description: `Options for navigator.credentials.create(): a discoverable credential, ` +
        `userVerification "${USER_VERIFICATION}". ${CHALLENGE} ${SUDO}`,
      ...session,
      responses: { 200: { description: "The options.", schema: creationOptions } },
      errors: [403],
    })
    .describe({
      method: "post",
      path: "/api/auth/passkey/verify-registration",
      operationId: "passkeyVerifyRegistration",
      summary: "Finish registering a passkey",
      description: `The credential's toJSON(), and a name. ${UV} (400) ${SUDO} ${SAME_ORIGIN}`,
      ...session,
      body: verifyRegistrationBody,
      bodyName: "PasskeyRegistrationParams",
      responses: { 200: { description: "Registered.", schema: passkey, name: "Passkey" } },
      errors: [400, 403, 409, 413, 415],
    })
    .describe({
      method: "get",
      path: "/api/auth/passkey/generate-authenticate-options",
      operationId: "passkeyGenerateAuthenticateOptions",
      summary: "Start a passkey sign-in",
      description: "Options for navigator.credentials.get(): any discoverable passkey of this " +
        "site, or with a pending sign-in only that account's passkeys; userVerification " +
        `"${USER_VERIFICATION}". ${CHALLENGE}`,
      ...open,
      responses: { 200: { description: "The options.", schema: requestOptions } },
      errors: [429],
    })
    .describe({
      method: "post",
      path: "/api/auth/passkey/verify-authentication",
      operationId: "passkeyVerifyAuthentication",
      summary: "Sign in with a passkey",
      description: "A passkey alone signs in (sets the session and device cookies); with a " +
        `pending sign-in it completes that one as its second step. ${UV} (401, no session) ` +
        SAME_ORIGIN,
      ...open,
      body: verifyAuthenticationBody,
      bodyName: "PasskeyAuthenticationParams",
      responses: { 200: { description: "Signed in.", schema: signedIn } },
      errors: [400, 401, 403, 413, 415],
    })
    .describe({
      method: "post",
      path: "/api/auth/passkey/generate-reauthenticate-options",
      operationId: "passkeyGenerateReauthenticateOptions",
      summary: "Start a passkey re-authentication",
      description: `Only the signed-in account's passkeys may answer; userVerification ` +
        `"${USER_VERIFICATION}". ${CHALLENGE} ${SAME_ORIGIN}`,
      ...session,
      responses: { 200: { description: "The options.", schema: requestOptions } },
      errors: [403],
    })
    .describe({
      method: "post",
      path: "/api/auth/passkey/reauthenticate",
      operationId: "passkeyReauthenticate",
      summary: "Re-authenticate with a passkey (sudo mode)",
      description: `A fresh proof of identity for this session, standing in for the password. ` +
        `${UV} (401, sudo mode stays off) ${SAME_ORIGIN}`,
      ...session,
      body: verifyAuthenticationBody,
      bodyName: "PasskeyAuthenticationParams",
      responses: { 200: { description: "Re-authenticated.", schema: status } },
      errors: [400, 403, 413, 415],
    })
    .describe({
      method: "get",
      path: "/api/auth/passkey/list-user-passkeys",
      operationId: "passkeyList",
      summary: "List the account's passkeys",
      description: "Never the public key.",
      ...session,
      responses: {
        200: { description: "The passkeys.", schema: z.array(passkey), name: "Passkeys" },
      },
      errors: [403],
    })
    .describe({
      method: "post",
      path: "/api/auth/passkey/update-passkey",
      operationId: "passkeyUpdate",
      summary: "Rename a passkey",
      description: SAME_ORIGIN,
      ...session,
      body: updatePasskeyBody,
      bodyName: "UpdatePasskeyParams",
      responses: {
        200: { description: "Renamed.", schema: z.object({ passkey: passkey.nullable() }) },
      },
      errors: [400, 403, 404, 413, 415],
    })
    .describe({
      method: "post",
      path: "/api/auth/passkey/delete-passkey",
      operationId: "passkeyDelete",
      summary: "Remove a passkey",
      description: `${SUDO} ${SAME_ORIGIN}`,
      ...session,
      body: deletePasskeyBody,
      bodyName: "DeletePasskeyParams",
      responses: { 200: { description: "Removed.", schema: status } },
      errors: [400, 403, 404, 413, 415],
    });
}

const NOW = "2026-03-14T09:26:53.000Z";
const PASSKEY_ID = "pky_2Hd7Lq4Nx9Vb3Kc6Wm1Rt8";
const CREDENTIAL = "q7mJ3vX1cT9pK2wN8dR5fL0hY4sB6gZeAuIoE";
const CHALLENGE_VALUE = "Xk3v9QpL2mN7rT4wY8cB1dF6hJ0sA5gZeUiO";
const view = {
  id: PASSKEY_ID,
  name: "Work laptop",
  credentialID: CREDENTIAL,
  transports: ["internal", "hybrid"],
  deviceType: "multiDevice",
  backedUp: true,
  createdAt: NOW,
  lastUsedAt: null,
};
const assertion = {
  id: CREDENTIAL,
  rawId: CREDENTIAL,
  type: "public-key",
  authenticatorAttachment: "platform",
  clientExtensionResults: {},
  response: {
    clientDataJSON: "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0In0",
    authenticatorData: "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFAAAAAQ",
    signature: "MEUCIQDx9Kf3bQ2yq8f1R6vJ0nqWmL4sT7zXc2aD5eHgP9oK1w",
    userHandle: "dXNyXzVReDhrUDJtVnQ3bkxyNFdjWmE5SGQ",
  },
};
const requestExample = {
  challenge: CHALLENGE_VALUE,
  rpId: "inbound.example.com",
  userVerification: USER_VERIFICATION,
  timeout: 60000,
};

export const PASSKEY_EXAMPLES: Record<string, OperationExamples> = {
  passkeyGenerateRegisterOptions: {
    responses: {
      200: {
        challenge: CHALLENGE_VALUE,
        rp: { name: "Inbound", id: "inbound.example.com" },
        user: {
          id: "dXNyXzVReDhrUDJtVnQ3bkxyNFdjWmE5SGQ",
          name: "ada@example.com",
          displayName: "Ada Lovelace",
        },
        pubKeyCredParams: [{ alg: -8, type: "public-key" }, { alg: -7, type: "public-key" }, {
          alg: -257,
          type: "public-key",
        }],
        timeout: 60000,
        excludeCredentials: [],
        authenticatorSelection: { residentKey: "required", userVerification: USER_VERIFICATION },
        attestation: "none",
      },
    },
  },
  passkeyVerifyRegistration: {
    request: {
      name: "Work laptop",
      response: {
        id: CREDENTIAL,
        rawId: CREDENTIAL,
        type: "public-key",
        authenticatorAttachment: "platform",
        clientExtensionResults: {},
        response: {
          clientDataJSON: "eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIn0",
          attestationObject: "o2NmbXRkbm9uZWdhdHRTdG10oGhhdXRoRGF0YVjF",
          transports: ["internal", "hybrid"],
        },
      },
    },
    responses: { 200: view },
  },
  passkeyGenerateAuthenticateOptions: { responses: { 200: requestExample } },
  passkeyVerifyAuthentication: {
    request: { response: assertion },
    responses: {
      200: {
        session: { id: "ses_8Jf3nQ6rTy1uWb5Xk9Lm2P", expiresAt: "2026-04-13T09:26:53.000Z" },
        user: { id: "usr_5Qx8kP2mVt7nLr4WcZa9Hd", email: "ada@example.com" },
      },
    },
  },
  passkeyGenerateReauthenticateOptions: {
    responses: {
      200: {
        ...requestExample,
        allowCredentials: [{ id: CREDENTIAL, type: "public-key", transports: ["internal"] }],
      },
    },
  },
  passkeyReauthenticate: { request: { response: assertion }, responses: { 200: { status: true } } },
  passkeyList: { responses: { 200: [{ ...view, lastUsedAt: NOW }] } },
  passkeyUpdate: {
    request: { id: PASSKEY_ID, name: "Laptop" },
    responses: { 200: { passkey: { ...view, name: "Laptop" } } },
  },
  passkeyDelete: { request: { id: PASSKEY_ID }, responses: { 200: { status: true } } },
};
