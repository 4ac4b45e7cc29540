/**
 * The e-mail addresses section of a domain's page (routes/email_addresses/pages.tsx has its forms;
 * routes/domains/pages.tsx renders it): the addresses with routing, state and receiving, the add
 * form, each address's edit and delete, and the domain's catch-all endpoint.
 */
import type { DomainRecord } from "../../store/domains/record.ts";
import {
  type EmailAddressRecord,
  type EndpointRecord,
  routedEndpointId,
} from "../../store/endpoints/record.ts";
import { Banner } from "../dashboard/layout.tsx";
import { Option } from "../dashboard/fields.tsx";

const DOMAINS = "/settings/domains";
const ENDPOINTS = "/settings/endpoints";

const TYPE_WORD: Record<EndpointRecord["type"], string> = {
  webhook: "webhook",
  email: "forward",
  email_group: "group",
};

/** A refused address form, re-shown with what was chosen and why it was refused. */
export type AddressFormState =
  | {
    kind: "add";
    local: string;
    endpointId: string;
    isActive: boolean;
    error: { field?: string; message: string };
  }
  | {
    kind: "edit";
    addressId: string;
    endpointId: string;
    isActive: boolean;
    error: { message: string };
  }
  | { kind: "catchAll"; endpointId: string; error: { message: string } };

export type AddressSectionProps = {
  domain: DomainRecord;
  addresses: EmailAddressRecord[];
  endpoints: EndpointRecord[];
  form?: AddressFormState;
};

/** "None (store only)" and the account's endpoints, `chosen` selected. */
function EndpointSelect(
  props: {
    id: string;
    name: string;
    label: string;
    none: string;
    endpoints: EndpointRecord[];
    chosen: string;
    problem?: string;
  },
) {
  const problemId = `${props.id}-problem`;
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <select
        id={props.id}
        name={props.name}
        aria-invalid={props.problem ? "true" : undefined}
        aria-describedby={props.problem ? problemId : undefined}
        autofocus={props.problem ? true : undefined}
      >
        <Option value="" label={props.none} selected={props.chosen === ""} />
        {props.endpoints.map((e) => (
          <Option
            key={e.id}
            value={e.id}
            label={`${e.name} (${TYPE_WORD[e.type]}${e.isActive ? "" : ", inactive"})`}
            selected={e.id === props.chosen}
          />
        ))}
      </select>
      {props.problem ? <p class="field-error" id={problemId}>{props.problem}</p> : null}
    </div>
  );
}

function Receiving(props: { a: EmailAddressRecord; domain: DomainRecord }) {
  if (!props.a.isActive) return <span class="flag off">Inactive</span>;
  if (props.domain.status !== "verified") {
    return <span class="flag pending">Not receiving: domain not verified</span>;
  }
  return <span class="flag good">Receiving</span>;
}

function Routing(props: { a: EmailAddressRecord; byId: Map<string, EndpointRecord> }) {
  const id = routedEndpointId(props.a);
  const e = id ? props.byId.get(id) : undefined;
  if (!e) return <span class="muted">Store only (no endpoint)</span>;
  return (
    <span>
      <a href={`${ENDPOINTS}/${e.id}`}>{e.name}</a> <span class="muted">({TYPE_WORD[e.type]})</span>
      {e.isActive ? null : <span class="flag off">Endpoint inactive</span>}
    </span>
  );
}

function EditAction(
  props: {
    a: EmailAddressRecord;
    domainId: string;
    endpoints: EndpointRecord[];
    form?: AddressFormState;
  },
) {
  const { a } = props;
  const refused = props.form?.kind === "edit" && props.form.addressId === a.id
    ? props.form
    : undefined;
  const chosen = refused ? refused.endpointId : routedEndpointId(a) ?? "";
  const active = refused ? refused.isActive : a.isActive;
  return (
    <details class="roll popover" {...(refused ? { open: true } : {})}>
      <summary aria-label={`Edit ${a.address}`}>Edit…</summary>
      <form
        method="post"
        action={`${DOMAINS}/${props.domainId}/addresses/${a.id}/edit`}
        class="panel"
      >
        <EndpointSelect
          id={`route-${a.id}`}
          name="endpointId"
          label="Deliver to"
          none="Nowhere (store only)"
          endpoints={props.endpoints}
          chosen={chosen}
          problem={refused?.error.message}
        />
        <div class="field">
          <label class="check" for={`active-${a.id}`}>
            <input type="checkbox" id={`active-${a.id}`} name="isActive" checked={active} />
            Active
          </label>
        </div>
        <button type="submit" aria-label={`Save ${a.address}`}>Save</button>
      </form>
    </details>
  );
}

function DeleteAction(props: { a: EmailAddressRecord; domainId: string }) {
  const { a } = props;
  return (
    <details class="delete popover">
      <summary aria-label={`Delete ${a.address}`}>Delete…</summary>
      <form
        method="post"
        action={`${DOMAINS}/${props.domainId}/addresses/${a.id}/delete`}
        class="panel"
      >
        <p>
          Delete{" "}
          <strong>{a.address}</strong>? Mail to it is no longer received (or goes to the catch-all,
          if one is set).
        </p>
        <button type="submit" class="danger" aria-label={`Delete ${a.address} now`}>
          Delete address
        </button>
      </form>
    </details>
  );
}

function AddressRow(
  props: {
    a: EmailAddressRecord;
    domain: DomainRecord;
    endpoints: EndpointRecord[];
    byId: Map<string, EndpointRecord>;
    form?: AddressFormState;
  },
) {
  const { a, domain } = props;
  return (
    <tr data-address-id={a.id}>
      <td data-label="Address">
        <code class="domain-name">{a.address}</code>
      </td>
      <td data-label="Delivered to">
        <Routing a={a} byId={props.byId} />
      </td>
      <td data-label="Receiving">
        <Receiving a={a} domain={domain} />
      </td>
      <td data-label="Actions">
        <div class="actions">
          <EditAction a={a} domainId={domain.id} endpoints={props.endpoints} form={props.form} />
          <DeleteAction a={a} domainId={domain.id} />
        </div>
      </td>
    </tr>
  );
}

function AddAddressForm(props: AddressSectionProps) {
  const { domain } = props;
  const refused = props.form?.kind === "add" ? props.form : undefined;
  const localBad = refused?.error.field === "local";
  const routeBad = refused && refused.error.field?.endsWith("ndpointId");
  return (
    <form method="post" action={`${DOMAINS}/${domain.id}/addresses`} novalidate>
      <h3 id="add-address-title">Add an address</h3>
      {refused && !localBad && !routeBad
        ? <Banner kind="error" id="address-error">{refused.error.message}</Banner>
        : null}
      <div class="row">
        <div class="field grow">
          <label for="address-local">Address</label>
          <div class="copyline">
            <input
              type="text"
              id="address-local"
              name="local"
              required
              maxlength={64}
              autocomplete="off"
              spellcheck={false}
              placeholder="support"
              value={refused?.local ?? ""}
              aria-invalid={localBad ? "true" : undefined}
              autofocus={localBad ? true : undefined}
              aria-describedby={`address-suffix${localBad ? " address-local-problem" : ""}`}
            />
            <span id="address-suffix" class="domain-name">@{domain.domain}</span>
          </div>
          {localBad
            ? <p class="field-error" id="address-local-problem">{refused!.error.message}</p>
            : null}
        </div>
        <EndpointSelect
          id="address-endpoint"
          name="endpointId"
          label="Deliver to"
          none="Nowhere yet (store only)"
          endpoints={props.endpoints}
          chosen={refused?.endpointId ?? ""}
          problem={routeBad ? refused!.error.message : undefined}
        />
      </div>
      <div class="field">
        <label class="check" for="address-active">
          <input
            type="checkbox"
            id="address-active"
            name="isActive"
            checked={refused ? refused.isActive : true}
          />
          Active
        </label>
      </div>
      <button type="submit">Add address</button>
      {props.endpoints.length === 0
        ? (
          <p class="hint">
            No endpoints yet: <a href={ENDPOINTS}>create one in Settings › Endpoints</a>{" "}
            to deliver this address's mail somewhere.
          </p>
        )
        : null}
    </form>
  );
}

function CatchAllForm(props: AddressSectionProps) {
  const { domain } = props;
  const refused = props.form?.kind === "catchAll" ? props.form : undefined;
  if (domain.status !== "verified") {
    return (
      <>
        {refused
          ? <Banner kind="error" id="catch-all-error">{refused.error.message}</Banner>
          : null}
        <p class="hint" id="catch-all">
          Catch-all (mail to any other address at{" "}
          {domain.domain}) can be set once the domain is verified.
        </p>
      </>
    );
  }
  return (
    <form method="post" action={`${DOMAINS}/${domain.id}/catch-all`} id="catch-all">
      <h3>Catch-all</h3>
      <p class="hint">Mail to any address at {domain.domain} not listed above.</p>
      <div class="row">
        <EndpointSelect
          id="catch-all-endpoint"
          name="catchAllEndpointId"
          label="Deliver other addresses to"
          none="Nowhere (catch-all off)"
          endpoints={props.endpoints}
          chosen={refused?.endpointId ??
            (domain.isCatchAllEnabled ? domain.catchAllEndpointId ?? "" : "")}
          problem={refused?.error.message}
        />
        <div class="field">
          <button type="submit" class="secondary">Save catch-all</button>
        </div>
      </div>
    </form>
  );
}

/** The section on the domain's page. */
export function AddressesSection(props: AddressSectionProps) {
  const { domain, addresses } = props;
  const byId = new Map(props.endpoints.map((e) => [e.id, e]));
  return (
    <section class="card" aria-labelledby="addresses-title" id="addresses">
      <h2 id="addresses-title">Email addresses</h2>
      <p class="hint">
        An address receives mail when it is active and {domain.domain}{" "}
        is verified; its mail goes to the endpoint it is routed to.
      </p>
      {addresses.length === 0 ? <p class="empty">No addresses on {domain.domain} yet.</p> : (
        <table>
          <caption>{addresses.length} address(es), by name.</caption>
          <thead>
            <tr>
              <th scope="col">Address</th>
              <th scope="col">Delivered to</th>
              <th scope="col">Receiving</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {addresses.map((a) => (
              <AddressRow
                key={a.id}
                a={a}
                domain={domain}
                endpoints={props.endpoints}
                byId={byId}
                form={props.form}
              />
            ))}
          </tbody>
        </table>
      )}
      <AddAddressForm {...props} />
      <CatchAllForm {...props} />
    </section>
  );
}
