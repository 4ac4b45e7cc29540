/**
 * The passkey operations' schemas (what they take and answer), the sentences their descriptions
 * share, and their examples: routes/passkeys/operations.ts declares each operation with them.
 */
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from "@simplewebauthn/server";
import { z } from "zod";
import { USER_VERIFICATION, USER_VERIFICATION_REQUIRED_CODE } from "../../auth/passkeys.ts";
import { MAX_PASSKEY_NAME } from "../../store/passkeys.ts";
import type { OperationExamples } from "../openapi/examples.ts";

const b64url = z.string().min(1).max(4096).regex(/^[A-Za-z0-9_-]*$/, "must be base64url");

/** A credential as `PublicKeyCredential.toJSON()` gives it; the library checks the rest. */
const credentialBase = {
  id: b64url,
  rawId: b64url,
  type: z.literal("public-key"),
  authenticatorAttachment: z.string().max(32).nullable().optional(),
  clientExtensionResults: z.looseObject({}).optional().default({}),
};

const registrationResponse = z.looseObject({
  ...credentialBase,
  response: z.looseObject({
    clientDataJSON: b64url,
    attestationObject: b64url,
    transports: z.array(z.string().max(32)).max(10).optional(),
  }),
});

const authenticationResponse = z.looseObject({
  ...credentialBase,
  response: z.looseObject({
    clientDataJSON: b64url,
    authenticatorData: b64url,
    signature: b64url,
    userHandle: z.string().max(512).regex(/^[A-Za-z0-9_-]*$/).nullable().optional(),
  }),
});

export const passkeyNameSchema = z.string().trim().min(1, "is required").max(
  MAX_PASSKEY_NAME,
  `must be at most ${MAX_PASSKEY_NAME} characters`,
);

export const verifyRegistrationBody = z.strictObject({
  response: registrationResponse,
  name: passkeyNameSchema.optional(),
});

export const verifyAuthenticationBody = z.strictObject({ response: authenticationResponse });

export const passkeyIdSchema = z.string().regex(/^pky_[A-Za-z0-9]{22}$/, "is not a passkey id");
export const updatePasskeyBody = z.strictObject({ id: passkeyIdSchema, name: passkeyNameSchema });
export const deletePasskeyBody = z.strictObject({ id: passkeyIdSchema });

/** The response's credential as the library types it (the schema checked the shape). */
export function asRegistration(v: z.output<typeof registrationResponse>): RegistrationResponseJSON {
  return v as unknown as RegistrationResponseJSON;
}
export function asAuthentication(
  v: z.output<typeof authenticationResponse>,
): AuthenticationResponseJSON {
  const r = v as unknown as AuthenticationResponseJSON;
  // `null` (what toJSON() gives a credential without one) means none.
  if (r.response.userHandle === null) delete r.response.userHandle;
  return r;
}

export const passkey = z.object({
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

export const creationOptions = z.object({
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

export const requestOptions = z.object({
  challenge: z.string(),
  rpId: z.string(),
  allowCredentials: z.array(descriptor).optional(),
  userVerification: z.literal(USER_VERIFICATION),
  timeout: z.number().optional(),
}).loose().describe("PublicKeyCredentialRequestOptionsJSON (WebAuthn Level 3).");

export const signedIn = z.object({
  user: z.object({ id: z.string(), email: z.string() }).loose(),
  session: z.object({ id: z.string(), expiresAt: z.string() }).loose().optional(),
  token: z.null().optional(),
});

export const status = z.object({ status: z.boolean() });

export const SAME_ORIGIN = "Refused with 403 from another origin (CSRF).";
export const CHALLENGE =
  "Sets a short-lived HttpOnly cookie naming the ceremony's single-use challenge.";
export const UV = `User verification (the authenticator's PIN, biometric or screen lock) is ` +
  `${USER_VERIFICATION}: a response without the UV flag is refused with ` +
  `${USER_VERIFICATION_REQUIRED_CODE}.`;
export const SUDO =
  "Needs sudo mode: a proof of identity in the last 10 minutes of the session, else " +
  "403 REAUTHENTICATION_REQUIRED.";

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
