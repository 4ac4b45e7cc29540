/** Accounts: the user record under its own prefix and the email -> userId pointer index. */
import { newId } from "../lib/crypto.ts";
import { RETRY, withRetries } from "./errors.ts";
import { emailIndexKey, revocationCounterKey, userKey } from "./keys.ts";

export type UserStatus = "active" | "suspended";

export type UserRecord = {
  id: string;
  email: string;
  /** Encoded KDF output (see auth/password.ts); never leaves the server. */
  passwordHash: string;
  status: UserStatus;
  createdAt: string;
};

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** Creates the account; throws `Deno.errors.AlreadyExists` when the email is taken. */
export async function createUser(
  kv: Deno.Kv,
  input: { email: string; passwordHash: string; nowMs: number },
): Promise<UserRecord> {
  const email = normaliseEmail(input.email);
  const user: UserRecord = {
    id: newId("usr"),
    email,
    passwordHash: input.passwordHash,
    status: "active",
    createdAt: new Date(input.nowMs).toISOString(),
  };
  const res = await kv.atomic()
    .check({ key: emailIndexKey(email), versionstamp: null })
    .check({ key: userKey(user.id), versionstamp: null })
    .set(userKey(user.id), user)
    .set(emailIndexKey(email), { userId: user.id })
    .commit();
  if (!res.ok) throw new Deno.errors.AlreadyExists("An account with that email already exists");
  return user;
}

export async function findUserIdByEmail(kv: Deno.Kv, email: string): Promise<string | null> {
  const entry = await kv.get<{ userId: string }>(emailIndexKey(normaliseEmail(email)));
  return entry.value?.userId ?? null;
}

export async function getUser(kv: Deno.Kv, userId: string): Promise<UserRecord | null> {
  return (await kv.get<UserRecord>(userKey(userId))).value;
}

/** Like `getUser`, but throws `Deno.errors.NotFound`. */
export async function getUserOrThrow(kv: Deno.Kv, userId: string): Promise<UserRecord> {
  const user = await getUser(kv, userId);
  if (!user) throw new Deno.errors.NotFound("No such account");
  return user;
}

export async function findUserByEmail(kv: Deno.Kv, email: string): Promise<UserRecord | null> {
  const userId = await findUserIdByEmail(kv, email);
  return userId ? await getUser(kv, userId) : null;
}

/**
 * Suspends or reactivates an account. The revocation counter moves in the same commit, so every
 * process's cache of verified keys is dropped within a second and the next request re-reads the
 * account. Throws `Deno.errors.NotFound` for an unknown account.
 */
export async function setUserStatus(
  kv: Deno.Kv,
  userId: string,
  status: UserStatus,
): Promise<UserRecord> {
  return await withRetries(async () => {
    const entry = await kv.get<UserRecord>(userKey(userId));
    if (!entry.value) throw new Deno.errors.NotFound("No such account");
    const updated = { ...entry.value, status };
    const res = await kv.atomic()
      .check(entry)
      .set(entry.key, updated)
      .sum(revocationCounterKey(), 1n)
      .commit();
    return res.ok ? updated : RETRY;
  });
}
