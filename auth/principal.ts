/** Who a request acts for, once a credential has been verified. */
export type Principal = {
  userId: string;
  method: "api_key" | "session";
  /** The API key that authenticated the request (method "api_key"). */
  keyId?: string;
  /** The session that authenticated the request (method "session"). */
  sessionId?: string;
};
