/**
 * Request and response examples for the OpenAPI document, by operationId and status
 * (routes/openapi/document.ts puts them on the media types). Values are realistic and must validate
 * against their own schemas: tests/openapi/openapi_examples_test.ts checks every one of them.
 */

export type OperationExamples = {
  /** The JSON request body. */
  request?: unknown;
  /** Path and query parameters, by name. */
  params?: Record<string, unknown>;
  /** The JSON body of each success status. */
  responses: Record<number, unknown>;
};

const NOW = "2026-03-14T09:26:53.000Z";
const LATER = "2026-03-14T09:31:07.000Z";
const USER_ID = "usr_5Qx8kP2mVt7nLr4WcZa9Hd";
const SESSION_ID = "ses_8Jf3nQ6rTy1uWb5Xk9Lm2P";
const DOMAIN_ID = "dom_3Fh7Kq9Ls2Nd8Vx4Bc6Mp1";
const KEY_ID = "key_7Tn2Wq5Ry8Kx3Ma6Lc9Pd4";
const NEW_KEY_ID = "key_1Bv4Zs7Xe2Gh5Jk8Nq3Rt6";
/** Key-shaped, but its checksum is wrong: no document holds a key that could be real. */
const KEY = "inb_4fK9mQ2xT7vL1pR8wN3cZ6hJ5bY0dS4gA7eU2kM9nP";
const VERIFICATION = "inbound-verification=6d2b1f9a4c8e7305";

const user = {
  id: USER_ID,
  email: "ada@example.com",
  name: "Ada Lovelace",
  createdAt: NOW,
  updatedAt: NOW,
  emailVerified: true,
};
const baUser = { ...user, image: null };
const baSession = {
  id: SESSION_ID,
  token: SESSION_ID,
  userId: USER_ID,
  expiresAt: "2026-04-13T09:26:53.000Z",
  createdAt: NOW,
  updatedAt: LATER,
  lastSeenAt: LATER,
  ipAddress: "203.0.113.7",
  userAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
  current: true,
};
const signedIn = { user, session: { id: SESSION_ID, expiresAt: "2026-04-13T09:26:53.000Z" } };
const baSignedIn = { token: null, redirect: false, user: baUser };

const records = [
  { name: "_inbound.example.com", type: "TXT", value: VERIFICATION },
  { name: "example.com", type: "MX", value: "10 inbound-smtp.us-east-2.amazonaws.com" },
];

const domainBase = {
  id: DOMAIN_ID,
  canReceiveEmails: true,
  catchAllEndpointId: null,
  createdAt: NOW,
  domain: "example.com",
  domainProvider: null,
  hasMxRecords: true,
  isCatchAllEnabled: false,
  lastDnsCheck: LATER,
  lastSesCheck: LATER,
  mailFromDomain: null,
  mailFromDomainStatus: null,
  mailFromDomainVerifiedAt: null,
  providerConfidence: null,
  receiveDmarcEmails: false,
  status: "verified",
  updatedAt: LATER,
  userId: USER_ID,
};

const keyView = {
  id: KEY_ID,
  name: "production-server",
  start: "inb_4fK9mQ",
  createdAt: NOW,
  lastUsedAt: LATER,
  lastUsedIp: "203.0.113.24",
  expiresAt: null,
  scopes: ["domains:read", "domains:write"],
  domainIds: null,
  allowedIps: null,
  rateLimit: null,
  disabled: false,
};

export const EXAMPLES: Record<string, OperationExamples> = {
  getOpenApiDocument: {
    responses: {
      200: { openapi: "3.1.0", info: { title: "Inbound e2 API (self-hosted)", version: "0.20.0" } },
    },
  },
  getDocs: {
    responses: {
      200: '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">' +
        "<title>Inbound e2 API (self-hosted)</title></head><body>…</body></html>",
    },
  },
  getHealth: { responses: { 200: { status: "ok", kv: "ok" } } },
  listDomains: {
    params: { limit: 10, offset: 0, status: "verified", canReceive: "true", check: "false" },
    responses: {
      200: {
        data: [{
          ...domainBase,
          stats: { activeEmailAddresses: 0, hasCatchAll: false, totalEmailAddresses: 0 },
        }],
        pagination: { hasMore: false, limit: 50, offset: 0, total: 1 },
      },
    },
  },
  createDomain: {
    request: { domain: "example.com" },
    responses: {
      201: {
        id: DOMAIN_ID,
        canReceiveEmails: false,
        createdAt: NOW,
        dnsRecords: [
          {
            isRequired: true,
            name: "_inbound.example.com",
            type: "TXT",
            value: VERIFICATION,
            description: "Proves you control the domain. Verification succeeds once it is " +
              "published.",
          },
          {
            isRequired: true,
            name: "example.com",
            type: "MX",
            value: "10 inbound-smtp.us-east-2.amazonaws.com",
            description: "Routes mail for the domain to this service; required to receive email.",
          },
        ],
        domain: "example.com",
        domainProvider: null,
        hasMxRecords: false,
        providerConfidence: null,
        status: "pending",
        updatedAt: NOW,
      },
    },
  },
  retrieveDomain: {
    params: { id: DOMAIN_ID, check: "true" },
    responses: {
      200: {
        ...domainBase,
        dnsRecords: records.map((r, i) => ({
          id: `dns_${i}Kp4Wm7Qz2Xc5Vb8Nr3Ts6`,
          createdAt: NOW,
          domainId: DOMAIN_ID,
          isRequired: true,
          isVerified: true,
          lastChecked: LATER,
          name: r.name,
          recordType: r.type,
          value: r.value,
        })),
        stats: {
          activeEmailAddresses: 0,
          emailsLast24h: 0,
          emailsLast30d: 0,
          emailsLast7d: 0,
          totalEmailAddresses: 0,
        },
        verificationCheck: {
          dnsRecords: records.map((r) => ({ ...r, isVerified: true })),
          isFullyVerified: true,
          lastChecked: LATER,
          sesStatus: "Success",
        },
      },
    },
  },
  updateDomain: {
    params: { id: DOMAIN_ID },
    request: { isCatchAllEnabled: true, catchAllEndpointId: "end_9Rw2Ty5Ui8Op1As4Df7Gh3" },
    responses: {
      200: {
        id: DOMAIN_ID,
        catchAllEndpointId: "end_9Rw2Ty5Ui8Op1As4Df7Gh3",
        domain: "example.com",
        isCatchAllEnabled: true,
        status: "verified",
        updatedAt: LATER,
      },
    },
  },
  deleteDomain: {
    params: { id: DOMAIN_ID },
    responses: {
      200: {
        deletedResources: {
          blockedEmails: 0,
          dnsRecords: 2,
          domain: "example.com",
          emailAddresses: 0,
          sesIdentity: true,
          sesReceiptRules: true,
        },
        message: "Domain example.com deleted.",
        success: true,
      },
    },
  },
  listApiKeys: { responses: { 200: { data: [keyView] } } },
  createApiKey: {
    request: { name: "production-server", expiresInDays: 90 },
    responses: {
      201: {
        ...keyView,
        lastUsedAt: null,
        lastUsedIp: null,
        expiresAt: "2026-06-12T09:26:53.000Z",
        key: KEY,
      },
    },
  },
  updateApiKey: {
    params: { id: KEY_ID },
    request: { scopes: ["domains:read"], allowedIps: ["203.0.113.0/24"] },
    responses: {
      200: { ...keyView, scopes: ["domains:read"], allowedIps: ["203.0.113.0/24"] },
    },
  },
  deleteApiKey: {
    params: { id: KEY_ID },
    responses: {
      200: { success: true, id: KEY_ID, message: "API key deleted. It no longer authenticates." },
    },
  },
  rollApiKey: {
    params: { id: KEY_ID },
    request: { expiresInHours: 24 },
    responses: {
      201: {
        ...keyView,
        id: NEW_KEY_ID,
        start: "inb_8sD3kW",
        createdAt: LATER,
        lastUsedAt: null,
        lastUsedIp: null,
        key: "inb_8sD3kW6yH1qN4tB7mV2xC5zF9gJ0rL3pA6eU8nQ1wT",
        previous: { id: KEY_ID, expiresAt: "2026-03-15T09:31:07.000Z", revoked: false },
      },
    },
  },
  retrieveApiKeyUsage: {
    params: { id: KEY_ID, days: 3 },
    responses: {
      200: {
        data: [
          {
            start: "2026-03-12T00:00:00.000Z",
            requests: 0,
            "2xx": 0,
            "4xx": 0,
            "429": 0,
            "5xx": 0,
          },
          {
            start: "2026-03-13T00:00:00.000Z",
            requests: 1843,
            "2xx": 1790,
            "4xx": 41,
            "429": 12,
            "5xx": 0,
          },
          {
            start: "2026-03-14T00:00:00.000Z",
            requests: 377,
            "2xx": 371,
            "4xx": 6,
            "429": 0,
            "5xx": 0,
          },
        ],
        // Forward auth (issue 25): the same key's answers by rule over the same days.
        rules: [
          { rule: "orders-read", requests: 240, "2xx": 236, "4xx": 4, "429": 0, "5xx": 0 },
          { rule: "orders-write", requests: 3, "2xx": 0, "4xx": 3, "429": 0, "5xx": 0 },
        ],
      },
    },
  },
  listUsage: {
    params: { days: 2, keyId: KEY_ID },
    responses: {
      200: {
        data: [
          {
            keyId: KEY_ID,
            name: "production-server",
            start: "2026-03-13T00:00:00.000Z",
            requests: 1843,
            "2xx": 1790,
            "4xx": 41,
            "429": 12,
            "5xx": 0,
          },
          {
            keyId: NEW_KEY_ID,
            name: null,
            deletedKeys: 1,
            start: "2026-03-13T00:00:00.000Z",
            requests: 25,
            "2xx": 25,
            "4xx": 0,
            "429": 0,
            "5xx": 0,
          },
          {
            keyId: KEY_ID,
            name: "production-server",
            start: "2026-03-14T00:00:00.000Z",
            requests: 377,
            "2xx": 371,
            "4xx": 6,
            "429": 0,
            "5xx": 0,
          },
          {
            keyId: NEW_KEY_ID,
            name: null,
            deletedKeys: 1,
            start: "2026-03-14T00:00:00.000Z",
            requests: 0,
            "2xx": 0,
            "4xx": 0,
            "429": 0,
            "5xx": 0,
          },
        ],
      },
    },
  },
  revokeKey: {
    responses: {
      200: { success: true, id: KEY_ID, message: "API key revoked. It no longer authenticates." },
    },
  },
  signUp: {
    request: { email: "ada@example.com", password: "plum-orchard-7-lantern", name: "Ada" },
    responses: { 201: { ...signedIn, user: { ...user, name: "Ada" } } },
  },
  signIn: {
    request: { email: "ada@example.com", password: "plum-orchard-7-lantern" },
    responses: { 200: signedIn },
  },
  signOut: { responses: { 200: { success: true, message: "Signed out." } } },
  getSession: { responses: { 200: signedIn } },
  signUpEmail: {
    request: {
      name: "Ada Lovelace",
      email: "ada@example.com",
      password: "plum-orchard-7-lantern",
    },
    responses: { 200: baSignedIn },
  },
  signInEmail: {
    request: {
      email: "ada@example.com",
      password: "plum-orchard-7-lantern",
      rememberMe: true,
    },
    responses: { 200: baSignedIn },
  },
  getSessionBetterAuth: { responses: { 200: { session: baSession, user: baUser } } },
  updateUser: { request: { name: "Ada King" }, responses: { 200: { status: true } } },
  changePassword: {
    request: {
      currentPassword: "plum-orchard-7-lantern",
      newPassword: "analytical engine 1843",
      revokeOtherSessions: true,
    },
    responses: { 200: { token: null, user: baUser } },
  },
  listSessions: { responses: { 200: [baSession] } },
  revokeSession: {
    request: { token: "ses_2Hc6Vn9Bq4Wx7Zk1Lt5Rm8" },
    responses: { 200: { status: true } },
  },
  revokeOtherSessions: { responses: { 200: { status: true } } },
  requestPasswordReset: {
    request: { email: "ada@example.com", redirectTo: "https://mail.example.com/reset-password" },
    responses: {
      200: {
        status: true,
        message: "If this email exists in our system, check your email for the reset link",
      },
    },
  },
  sendVerificationEmail: {
    request: { email: "ada@example.com", callbackURL: "/email-verified" },
    responses: { 200: { status: true } },
  },
  verifyEmail: {
    params: {
      token: "usr_5Qx8kP2mVt7nLr4WcZa9Hd.Yx3Tq8Wm1Kp6Vn4Rz9Lb2Hd7Cf5Jg0Sa8Ue2Io6Pw4Lk",
      callbackURL: "/email-verified",
    },
    responses: { 200: { status: true, user: null } },
  },
  resetPassword: {
    request: { newPassword: "analytical engine 1843", token: "Yx3Tq8Wm1Kp6Vn4Rz9Lb2Hd7Cf5" },
    responses: { 200: { status: true } },
  },
  deleteUser: {
    request: { password: "plum-orchard-7-lantern" },
    responses: { 200: { success: true, message: "User deleted" } },
  },
  listAuditLog: {
    params: {
      limit: 50,
      cursor: "WyJhMSIsMTc3MzQ4MDAxMzAwMCwiZXZ0XzJLZDhRbTVWeDFUcjdMbjNXYjlQcTRaIl0",
      action: "domain.created",
      since: "2026-03-01T00:00:00.000Z",
      format: "json",
    },
    responses: {
      200: {
        data: [{
          id: "evt_6Gm2Xc8Vn4Tq1Lw7Rb3Kz5",
          time: NOW,
          action: "domain.created",
          actor: { type: "api_key", id: KEY_ID },
          target: { type: "domain", id: DOMAIN_ID, name: "example.com" },
          ip: "203.0.113.7",
          userAgent: "inbound-sdk/0.20.0",
          outcome: "success",
        }],
        pagination: {
          limit: 50,
          nextCursor: "WyJhMSIsMTc3MzQ4MDAxMzAwMCwiZXZ0XzZHbTJYYzhWbjRUcTFMdzdSYjNLejUiXQ",
          hasMore: true,
        },
      },
    },
  },
};

/** One realistic error body per status (the components' error responses). */
export const ERROR_EXAMPLES: Record<number, Record<string, unknown>> = {
  400: {
    error: "Bad Request",
    message: "limit: must be at most 100",
    statusCode: 400,
    field: "limit",
    details: [{ path: "limit", message: "must be at most 100" }],
  },
  401: {
    error: "Unauthorized",
    message: "Authentication required. Provide a valid session cookie or Bearer token.",
    statusCode: 401,
  },
  403: {
    error: "Forbidden",
    message: "This account is suspended.",
    statusCode: 403,
    code: "ACCOUNT_SUSPENDED",
  },
  404: { error: "Not Found", message: "Domain not found.", statusCode: 404 },
  405: {
    error: "Method Not Allowed",
    message: "Method POST is not allowed here. Allowed: GET.",
    statusCode: 405,
  },
  409: {
    error: "Conflict",
    message: "example.com is already registered to another account.",
    statusCode: 409,
    code: "DOMAIN_ALREADY_REGISTERED",
  },
  413: {
    error: "Payload Too Large",
    message: "Request body must be at most 1048576 bytes.",
    statusCode: 413,
  },
  415: {
    error: "Unsupported Media Type",
    message: "Request body must be JSON (Content-Type: application/json).",
    statusCode: 415,
  },
  429: { error: "Too Many Requests", message: "Rate limit exceeded.", statusCode: 429 },
  500: {
    error: "Internal Server Error",
    message: "An unexpected error occurred. Quote the request id when reporting it.",
    statusCode: 500,
    requestId: "req_6Gm2Xs9Kq4Wd7Vb1Nz3Tp8",
  },
  501: {
    error: "Not Implemented",
    message: "/api/e2/emails is not provided by this server: it serves the Inbound e2 API's " +
      "authentication, API keys and domains, and sends and receives no e-mail. " +
      "See /api/e2/docs for what it serves.",
    statusCode: 501,
  },
  503: {
    error: "Service Unavailable",
    message: "The write conflicted with concurrent changes; try again.",
    statusCode: 503,
    code: "WRITE_CONFLICT",
  },
};
