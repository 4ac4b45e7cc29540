/** Who a request acts for, once a credential has been verified. */
export type Principal = {
  userId: string;
  method: "api_key" | "session";
  /** The API key that authenticated the request (method "api_key"). */
  keyId?: string;
  /** The session that authenticated the request (method "session"). */
  sessionId?: string;
  /** The credential is valid but its account is suspended: the middleware answers 403. */
  suspended?: boolean;
};
