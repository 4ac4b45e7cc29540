/**
 * Form fields more than one page shares: the email field (sign-up, sign-in, forgot password)
 * and a new password's input with its rules (sign-up, reset, password change).
 */
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from "../../auth/passwords/hash.ts";

/** The email field both forms share; `username` lets password managers pair it on sign-in. */
export function EmailField(
  props: { email?: string; error?: string; autocomplete: "email" | "username"; children?: unknown },
) {
  return (
    <div class="field">
      <label for="email">Email</label>
      <input
        type="email"
        id="email"
        name="email"
        autocomplete={props.autocomplete}
        required
        maxlength={254}
        value={props.email ?? ""}
        aria-describedby={props.error ? "form-error" : undefined}
      />
      {props.children}
    </div>
  );
}

/** A new password's input with its length rules and a hint (sign-up, reset, password change). */
export function NewPasswordField(
  props: { id: string; name: string; label: string; children: unknown },
) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <input
        type="password"
        id={props.id}
        name={props.name}
        autocomplete="new-password"
        required
        minlength={MIN_PASSWORD_LENGTH}
        maxlength={MAX_PASSWORD_LENGTH}
        aria-describedby={`${props.id}-hint`}
      />
      <p class="hint" id={`${props.id}-hint`}>{props.children}</p>
    </div>
  );
}
