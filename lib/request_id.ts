/**
 * Request ids: `req_` + 12 random base62 characters fixed per process + a 10-character base36
 * counter. Unique across processes without drawing randomness on every request; they identify,
 * they do not authorise, so they need not be unguessable.
 */
import { randomBase62 } from "./crypto.ts";

const PROCESS_PART = randomBase62(12);
let counter = 0;

export function nextRequestId(): string {
  return `req_${PROCESS_PART}${(counter++).toString(36).padStart(10, "0")}`;
}
