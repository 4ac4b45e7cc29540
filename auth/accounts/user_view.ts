/**
 * The account as its owner and the better-auth client see it: never the password hash, the
 * status or other internals of the stored record (store/accounts/users.ts).
 */
import type { UserRecord } from "../../store/accounts/users.ts";

export type PublicUser = {
  id: string;
  email: string;
  /** Display name; null for accounts made before names existed. */
  name: string | null;
  createdAt: string;
  updatedAt: string;
  /** Whether the owner proved the address (auth/email_verification.ts). */
  emailVerified: boolean;
};

export function publicUser(u: UserRecord): PublicUser {
  return {
    id: u.id,
    email: u.email,
    name: u.name ?? null,
    emailVerified: u.emailVerified === true,
    createdAt: u.createdAt,
    updatedAt: u.updatedAt ?? u.createdAt,
  };
}

/** better-auth's user object, as its client expects it (routes/accounts/operations.ts, two-factor, passkeys). */
export function betterAuthUser(u: PublicUser) {
  return {
    id: u.id,
    email: u.email,
    name: u.name ?? "",
    emailVerified: u.emailVerified,
    image: null,
    createdAt: u.createdAt,
    updatedAt: u.updatedAt,
  };
}
