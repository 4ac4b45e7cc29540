/**
 * The endpoint form of Settings › Endpoints (routes/endpoints/pages.tsx): its fields for each
 * type, what a posted form becomes (the JSON body `POST`/`PUT /api/e2/endpoints` take, checked by
 * the same schemas: routes/endpoints/schemas.ts and `parseEndpointConfig`), and which field a
 * refusal names, so the form comes back with every value kept and the field at fault marked.
 */
import type { z } from "zod";
import { HttpError } from "../../lib/errors.ts";
import type {
  EmailConfig,
  EmailGroupConfig,
  EndpointRecord,
  EndpointType,
  WebhookConfig,
} from "../../store/endpoints/record.ts";
import { Option } from "../dashboard/fields.tsx";
import { MAX_HEADERS } from "./schemas.ts";

export const TYPE_LABEL: Record<EndpointType, string> = {
  webhook: "Webhook",
  email: "Forward to an address",
  email_group: "Email group",
};

export const FORMAT_LABEL = { inbound: "Inbound (JSON)", discord: "Discord", slack: "Slack" };

/** Empty header rows the form offers beside the endpoint's own (up to MAX_HEADERS). */
const SPARE_HEADER_ROWS = 2;

/** The form's fields as posted (strings), kept to re-fill a refused form. */
export type EndpointFormValues = {
  name: string;
  description: string;
  url: string;
  timeout: string;
  retryAttempts: string;
  headers: { name: string; value: string }[];
  forwardTo: string;
  emails: string;
  preserveHeaders: boolean;
  isActive: boolean;
  webhookFormat: string;
};

/** A refusal as the form shows it: the message, and the form field it names (if one). */
export type EndpointFormError = { field?: string; message: string };

export function emptyValues(): EndpointFormValues {
  return {
    name: "",
    description: "",
    url: "",
    timeout: "30",
    retryAttempts: "3",
    headers: [],
    forwardTo: "",
    emails: "",
    preserveHeaders: false,
    isActive: true,
    webhookFormat: "inbound",
  };
}

/** The values an existing endpoint's edit form starts with. */
export function valuesOf(r: EndpointRecord): EndpointFormValues {
  const v = { ...emptyValues(), name: r.name, description: r.description ?? "" };
  v.isActive = r.isActive;
  v.webhookFormat = r.webhookFormat;
  if (r.type === "webhook") {
    const w = r.config as WebhookConfig;
    v.url = w.url;
    v.timeout = String(w.timeout);
    v.retryAttempts = String(w.retryAttempts);
    v.headers = Object.entries(w.headers).map(([name, value]) => ({ name, value }));
  } else if (r.type === "email") {
    const e = r.config as EmailConfig;
    v.forwardTo = e.forwardTo;
    v.preserveHeaders = e.preserveHeaders;
  } else {
    const g = r.config as EmailGroupConfig;
    v.emails = g.emails.join(", ");
    v.preserveHeaders = g.preserveHeaders;
  }
  return v;
}

/** The posted form's values (header rows `header_name_N` / `header_value_N`). */
export function formValues(form: Record<string, string>): EndpointFormValues {
  const headers: { name: string; value: string }[] = [];
  for (let i = 0; i < MAX_HEADERS + SPARE_HEADER_ROWS; i++) {
    const name = (form[`header_name_${i}`] ?? "").trim();
    const value = form[`header_value_${i}`] ?? "";
    if (name !== "" || value !== "") headers.push({ name, value });
  }
  return {
    name: form.name ?? "",
    description: form.description ?? "",
    url: (form.url ?? "").trim(),
    timeout: (form.timeout ?? "").trim(),
    retryAttempts: (form.retryAttempts ?? "").trim(),
    headers,
    forwardTo: (form.forwardTo ?? "").trim(),
    emails: form.emails ?? "",
    preserveHeaders: form.preserveHeaders === "on",
    isActive: form.isActive === "on",
    webhookFormat: form.webhookFormat ?? "inbound",
  };
}

/** A whole number typed in a field, or a 400 naming that field. */
function wholeNumber(raw: string, field: string): number | undefined {
  if (raw === "") return undefined;
  if (!/^-?\d{1,9}$/.test(raw)) {
    throw new HttpError(400, "must be a whole number", { field, formProblem: true });
  }
  return Number(raw);
}

/**
 * The `config` object of the JSON body for `type`, from the form. Checked afterwards by the API's
 * own rules (`parseEndpointConfig`); only what a form cannot say in JSON is decided here (numbers
 * typed as text, header rows, a list of addresses in one field).
 */
export function configOf(type: EndpointType, v: EndpointFormValues): Record<string, unknown> {
  if (type === "webhook") {
    const headers: Record<string, string> = {};
    v.headers.forEach((h, i) => {
      if (h.name === "") {
        throw new HttpError(400, "is required when a value is given", {
          field: `header_name_${i}`,
          formProblem: true,
        });
      }
      headers[h.name] = h.value;
    });
    const timeout = wholeNumber(v.timeout, "timeout");
    const retryAttempts = wholeNumber(v.retryAttempts, "retryAttempts");
    return {
      url: v.url,
      headers,
      ...(timeout === undefined ? {} : { timeout }),
      ...(retryAttempts === undefined ? {} : { retryAttempts }),
    };
  }
  if (type === "email") return { forwardTo: v.forwardTo, preserveHeaders: v.preserveHeaders };
  const emails = v.emails.split(/[\s,;]+/).filter((e) => e !== "");
  return { emails, preserveHeaders: v.preserveHeaders };
}

/** The label each form field is named by in a refusal's sentence. */
const LABELS: Record<string, string> = {
  name: "Name",
  description: "Description",
  type: "Type",
  url: "Webhook URL",
  timeout: "Timeout",
  retryAttempts: "Retry attempts",
  headers: "Headers",
  forwardTo: "Forward to",
  emails: "Addresses",
  preserveHeaders: "Keep original headers",
  webhookFormat: "Payload format",
  isActive: "Active",
};

/** The form field an API path names ("config.url" → "url", "config.headers.X-Id" → its row). */
export function fieldOfPath(path: string, v: EndpointFormValues): string {
  const parts = path.split(".");
  if (parts[0] !== "config") return parts[0];
  const field = parts[1] ?? "";
  if (field === "headers") {
    const name = parts.slice(2).join(".");
    const row = v.headers.findIndex((h) => h.name === name);
    return row >= 0 ? `header_name_${row}` : "headers";
  }
  return field;
}

/** A header problem that is about the value (schemas.ts webhookHeaders) marks the value's input. */
function onValue(field: string, message: string): string {
  return /^header_name_\d+$/.test(field) && message.includes("no CR, LF")
    ? field.replace("name", "value")
    : field;
}

function labelOf(field: string): string {
  const row = /^header_(name|value)_(\d+)$/.exec(field);
  if (row) return `Header ${Number(row[2]) + 1} ${row[1]}`;
  return LABELS[field] ?? "A field";
}

/** "Name must not be empty." / "Webhook URL: URL must use https." */
export function sentence(field: string, message: string): string {
  const label = labelOf(field);
  const text = /^[a-z]/.test(message) ? `${label} ${message}` : `${label}: ${message}`;
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/** A zod refusal of the body: its first issue, as a field and a sentence. */
export function zodRefusal(error: z.ZodError, v: EndpointFormValues): EndpointFormError {
  const issue = error.issues[0];
  const message = issue?.message ?? "is not valid";
  const field = onValue(fieldOfPath(issue?.path.map(String).join(".") ?? "", v), message);
  return { field, message: sentence(field, message) };
}

/**
 * A refusal thrown while checking the form (a 400 naming a field, from `configOf` or the API's
 * `parseEndpointConfig`) as the form shows it; null for any other error.
 */
export function fieldRefusal(err: unknown, v: EndpointFormValues): EndpointFormError | null {
  if (!(err instanceof HttpError) || err.status !== 400) return null;
  if (err.extra.formProblem === true && typeof err.extra.field === "string") {
    return { field: err.extra.field, message: sentence(err.extra.field, err.message) };
  }
  const details = err.extra.details;
  if (!Array.isArray(details) || details.length === 0) return null;
  const first = details[0] as { path?: unknown; message?: unknown };
  const message = String(first.message ?? "is not valid");
  const field = onValue(fieldOfPath(String(first.path ?? ""), v), message);
  return { field, message: sentence(field, message) };
}

/** Header rows to show: the endpoint's own and a few empty ones, at most MAX_HEADERS. */
export function headerRows(v: EndpointFormValues): { name: string; value: string }[] {
  const spare = Math.max(0, Math.min(SPARE_HEADER_ROWS, MAX_HEADERS - v.headers.length));
  return [...v.headers, ...Array.from({ length: spare }, () => ({ name: "", value: "" }))];
}

// --- Fields ----------------------------------------------------------------------------------

type FieldProps = {
  /** The form's id prefix: several forms on one page keep their ids apart. */
  form: string;
  name: string;
  label: string;
  value: string;
  error?: EndpointFormError;
  hint?: string;
  /** "url": a text input with the URL keyboard (the stylesheet styles text inputs). */
  type?: "text" | "url" | "email" | "number";
  required?: boolean;
  maxlength?: number;
  min?: number;
  max?: number;
  placeholder?: string;
  grow?: boolean;
};

/** One input with its label, hint and (when the refusal names it) its error, focused. */
export function TextField(props: FieldProps) {
  const id = `${props.form}-${props.name}`;
  const bad = props.error?.field === props.name;
  const described = [props.hint ? `${id}-hint` : "", bad ? `${id}-problem` : ""]
    .filter((s) => s !== "").join(" ");
  return (
    <div class={props.grow ? "field grow" : "field"}>
      <label for={id}>{props.label}</label>
      <input
        type={props.type === "url" ? "text" : props.type ?? "text"}
        inputmode={props.type === "url" ? "url" : undefined}
        id={id}
        name={props.name}
        value={props.value}
        required={props.required}
        maxlength={props.maxlength}
        min={props.min}
        max={props.max}
        placeholder={props.placeholder}
        autocomplete="off"
        spellcheck={false}
        aria-invalid={bad ? "true" : undefined}
        autofocus={bad ? true : undefined}
        aria-describedby={described || undefined}
      />
      {props.hint ? <p class="hint" id={`${id}-hint`}>{props.hint}</p> : null}
      {bad ? <p class="field-error" id={`${id}-problem`}>{props.error!.message}</p> : null}
    </div>
  );
}

export function CheckField(
  props: { form: string; name: string; label: string; checked: boolean; hint?: string },
) {
  const id = `${props.form}-${props.name}`;
  return (
    <div class="field">
      <label class="check" for={id}>
        <input
          type="checkbox"
          id={id}
          name={props.name}
          checked={props.checked}
          aria-describedby={props.hint ? `${id}-hint` : undefined}
        />
        {props.label}
      </label>
      {props.hint ? <p class="hint" id={`${id}-hint`}>{props.hint}</p> : null}
    </div>
  );
}

function HeaderRow(
  props: { form: string; i: number; h: { name: string; value: string }; error?: EndpointFormError },
) {
  const { form, i, h, error } = props;
  const field = `header_name_${i}`;
  return (
    <div class="row" data-header-row={i}>
      <TextField
        form={form}
        name={field}
        label={`Header ${i + 1} name`}
        value={h.name}
        error={error}
        maxlength={100}
        placeholder="X-Api-Token"
        grow
      />
      <TextField
        form={form}
        name={`header_value_${i}`}
        label={`Header ${i + 1} value`}
        value={h.value}
        error={error}
        maxlength={2048}
        grow
      />
    </div>
  );
}

/** The webhook's own fields: URL, headers, timeout, retries. */
function WebhookFields(props: { form: string; v: EndpointFormValues; error?: EndpointFormError }) {
  const { form, v, error } = props;
  const rows = headerRows(v);
  const headersBad = error?.field === "headers";
  return (
    <>
      <TextField
        form={form}
        name="url"
        label="Webhook URL"
        type="url"
        value={v.url}
        error={error}
        required
        maxlength={2048}
        placeholder="https://example.com/webhooks/inbound"
        hint="Must be https://. Each delivery is a signed POST (Standard Webhooks)."
      />
      <fieldset class="box">
        <legend>Extra headers (optional)</legend>
        <p class="hint" id={`${form}-headers-hint`}>
          Sent with every delivery, e.g. a token your receiver checks. Host, Authorization,
          Content-Type and webhook-* headers are set by the delivery and cannot be overridden. Leave
          a row empty to remove it.
        </p>
        {headersBad ? <p class="field-error">{error!.message}</p> : null}
        {rows.map((h, i) => <HeaderRow key={i} form={form} i={i} h={h} error={error} />)}
      </fieldset>
      <div class="row">
        <TextField
          form={form}
          name="timeout"
          label="Timeout (seconds)"
          type="number"
          min={1}
          max={60}
          value={v.timeout}
          error={error}
        />
        <TextField
          form={form}
          name="retryAttempts"
          label="Retry attempts"
          type="number"
          min={0}
          max={10}
          value={v.retryAttempts}
          error={error}
        />
      </div>
    </>
  );
}

/** Name and description, the fields every endpoint has (create and edit). */
export function NameFields(
  props: { form: string; v: EndpointFormValues; error?: EndpointFormError; placeholder?: string },
) {
  const { form, v, error } = props;
  return (
    <>
      <TextField
        form={form}
        name="name"
        label="Name"
        value={v.name}
        error={error}
        required
        maxlength={100}
        placeholder={props.placeholder}
      />
      <TextField
        form={form}
        name="description"
        label="Description (optional)"
        value={v.description}
        error={error}
        maxlength={500}
      />
    </>
  );
}

/** A webhook's payload format (name `webhookFormat`), `selected` chosen. */
export function FormatSelect(props: { id: string; selected: string }) {
  return (
    <div class="field">
      <label for={props.id}>Payload format</label>
      <select id={props.id} name="webhookFormat">
        {Object.entries(FORMAT_LABEL).map(([value, label]) => (
          <Option key={value} value={value} label={label} selected={value === props.selected} />
        ))}
      </select>
    </div>
  );
}

/** The fields of `type`'s config. */
export function ConfigFields(
  props: { form: string; type: EndpointType; v: EndpointFormValues; error?: EndpointFormError },
) {
  const { form, type, v, error } = props;
  if (type === "webhook") return <WebhookFields form={form} v={v} error={error} />;
  const keep = (
    <CheckField
      form={form}
      name="preserveHeaders"
      label="Keep the original headers"
      checked={v.preserveHeaders}
    />
  );
  if (type === "email") {
    return (
      <>
        <TextField
          form={form}
          name="forwardTo"
          label="Forward to"
          type="email"
          value={v.forwardTo}
          error={error}
          required
          maxlength={254}
          placeholder="team@example.com"
          hint="Mail to the addresses routed here would be forwarded to this address."
        />
        {keep}
      </>
    );
  }
  return (
    <>
      <TextField
        form={form}
        name="emails"
        label="Addresses"
        value={v.emails}
        error={error}
        required
        maxlength={13_000}
        placeholder="ada@example.com, grace@example.com"
        hint="Up to 50 addresses, separated by commas or spaces."
      />
      {keep}
    </>
  );
}
