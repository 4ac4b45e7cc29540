/**
 * How the dashboard names an API key, on every page the same (issue 22 item 8): its name and the
 * first characters of the key, "ci key (inb_xXaAEw…)", the prefix being what its owner sees in
 * their secret manager and on the API Keys page. A record id (`key_…`) is nothing a user has
 * seen, so it appears only for a key that no longer exists, marked "deleted".
 *
 * Pages that show events or usage of keys resolve names at read time from the account's keys
 * (`keyNames`), so a renamed key reads with its current name everywhere.
 */

/** What naming a key needs: its name and the start of the key (never the key). */
export type NamedKey = { name: string; start: string };

/** The account's keys by id (from `store.apiKeys.list()`). */
export type KeyNames = ReadonlyMap<string, NamedKey>;

export function keyNames(keys: readonly (NamedKey & { id: string })[]): KeyNames {
  return new Map(keys.map((k) => [k.id, { name: k.name, start: k.start }]));
}

/** "ci key (inb_xXaAEw…)" as plain text (labels, titles). */
export function keyNameText(k: NamedKey): string {
  return `${k.name} (${k.start}…)`;
}

/**
 * A deleted key as plain text: "ci key (key_Gsms…, deleted)" when its name is known (the event
 * that recorded it kept it), else "key_Gsms… (deleted)".
 */
export function deletedKeyText(id: string, name?: string): string {
  return name ? `${name} (${id}, deleted)` : `${id} (deleted)`;
}

/** A live key: its name, then its prefix in muted code, reading "ci key (inb_xXaAEw…)". */
export function KeyName(props: { k: NamedKey }) {
  return (
    <span class="key-ref">
      {props.k.name}{" "}
      <span class="muted">
        (<code>{props.k.start}…</code>)
      </span>
    </span>
  );
}

/** A key that no longer exists: its id (and name when known), marked deleted. */
export function DeletedKeyName(props: { id: string; name?: string }) {
  return (
    <span class="key-ref">
      {props.name ? `${props.name} ` : null}
      <span class="muted">
        {props.name ? "(" : null}
        <code>{props.id}</code>
        {props.name ? ", deleted)" : " (deleted)"}
      </span>
    </span>
  );
}

/** A key by id: `KeyName` while it exists, `DeletedKeyName` after. */
export function KeyRef(props: { id: string; names: KeyNames; name?: string }) {
  const k = props.names.get(props.id);
  return k ? <KeyName k={k} /> : <DeletedKeyName id={props.id} name={props.name} />;
}
