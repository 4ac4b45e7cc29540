/**
 * Form fields more than one page shares: the email field (sign-up, sign-in, forgot password),
 * a new password's input with its rules (sign-up, reset, password change), and a select's option
 * (Endpoints, a domain's addresses).
 */
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from "../../auth/passwords/hash.ts";

/**
 * The email field both forms share; `username` lets password managers pair it on sign-in.
 * `problem` is this field's own error: marked `aria-invalid` and said beside it; `focus` puts
 * the cursor there (the first field in error of the form).
 */
export function EmailField(
  props: {
    email?: string;
    error?: string;
    problem?: string;
    focus?: boolean;
    autocomplete: "email" | "username";
    children?: unknown;
  },
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
        aria-invalid={props.problem ? "true" : undefined}
        autofocus={props.problem && props.focus ? true : undefined}
        aria-describedby={props.problem ? "email-problem" : props.error ? "form-error" : undefined}
      />
      {props.problem ? <p class="field-error" id="email-problem">{props.problem}</p> : null}
      {props.children}
    </div>
  );
}

/**
 * A new password's input with its length rules and a hint (sign-up, reset, password change);
 * `problem` and `focus` as for EmailField.
 */
export function NewPasswordField(
  props: {
    id: string;
    name: string;
    label: string;
    problem?: string;
    focus?: boolean;
    children: unknown;
  },
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
        aria-invalid={props.problem ? "true" : undefined}
        autofocus={props.problem && props.focus ? true : undefined}
        aria-describedby={`${props.id}-hint${props.problem ? ` ${props.id}-problem` : ""}`}
      />
      <p class="hint" id={`${props.id}-hint`}>{props.children}</p>
      {props.problem ? <p class="field-error" id={`${props.id}-problem`}>{props.problem}</p> : null}
    </div>
  );
}

/** One `<option>` of a select, `selected` when it is the current value. */
export function Option(props: { value: string; label: string; selected?: boolean }) {
  return <option value={props.value} selected={props.selected}>{props.label}</option>;
}
