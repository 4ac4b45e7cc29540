/** Request and response examples of the two-factor operations (routes/two_factor/operations.ts). */
import type { OperationExamples } from "../openapi/examples.ts";

const EXAMPLE_USER = {
  id: "usr_5Qx8kP2mVt7nLr4WcZa9Hd",
  email: "ada@example.com",
  name: "Ada Lovelace",
  emailVerified: true,
  image: null,
  createdAt: "2026-03-14T09:26:53.000Z",
  updatedAt: "2026-03-14T09:26:53.000Z",
};
const EXAMPLE_CODES = [
  "k7m2p-x9c4t",
  "q3w8z-n5r2h",
  "b6v4j-t8y3k",
  "c9x2m-p7w5q",
  "h4n8r-z3b6v",
  "t2k9w-m5c8x",
  "y7p3q-j4n9b",
  "r5z8c-w2k6m",
  "v3b7t-h9x4p",
  "m8q2n-c5r7z",
];

/** Request and response examples of the two-factor routes (spread into routes/openapi/examples.ts). */
export const TWO_FACTOR_EXAMPLES: Record<string, OperationExamples> = {
  enableTwoFactor: {
    request: { password: "plum-orchard-7-lantern" },
    responses: {
      200: {
        method: "totp",
        totpURI:
          "otpauth://totp/Inbound:ada%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" +
          "&issuer=Inbound&algorithm=SHA1&digits=6&period=30",
        backupCodes: EXAMPLE_CODES,
      },
    },
  },
  verifyTotp: {
    request: { code: "492039" },
    responses: { 200: { token: null, user: EXAMPLE_USER } },
  },
  verifyBackupCode: {
    request: { code: "k7m2p-x9c4t" },
    responses: { 200: { token: null, user: EXAMPLE_USER } },
  },
  disableTwoFactor: {
    request: { password: "plum-orchard-7-lantern" },
    responses: { 200: { status: true } },
  },
  generateBackupCodes: {
    request: { password: "plum-orchard-7-lantern" },
    responses: { 200: { status: true, backupCodes: EXAMPLE_CODES } },
  },
  reauthenticate: {
    request: { password: "plum-orchard-7-lantern" },
    responses: { 200: { status: true, user: EXAMPLE_USER } },
  },
};
