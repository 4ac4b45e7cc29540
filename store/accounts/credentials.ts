/**
 * What a credential change revokes: the one place that says it. A credential change is any
 * change to how the account proves who it is, or that ends its sign-ins wholesale: a password
 * change or reset, TOTP enabled or disabled, recovery codes regenerated, a passkey added or
 * removed, signing out everywhere (every session, or every other one; suspension does it too).
 * Each of those commits calls `revokeOnCredentialChange` on its own atomic operation, so the
 * revocation commits with the change, or neither does.
 *
 * It revokes the account's outstanding password-reset links (store/accounts/password_reset.ts): a link
 * mailed before the change must not undo it afterwards (set another password and sign the owner
 * out). A reset checks the link's record in its own commit, so one racing the change either
 * commits first (and the change then applies on top of it) or finds the link gone.
 *
 * This module imports nothing but the key layout, so every store module may call it without an
 * import circle.
 */
import { passwordResetKey } from "../keys.ts";

/** Adds the revocations of a credential change of `userId` to `op`; returns `op`. */
export function revokeOnCredentialChange(
  op: Deno.AtomicOperation,
  userId: string,
): Deno.AtomicOperation {
  return op.delete(passwordResetKey(userId));
}
