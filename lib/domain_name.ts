/**
 * Domain names as the domains resource accepts them: normalised (trimmed, a pasted address
 * reduced to its host name, lower case, one trailing dot dropped, internationalised labels
 * converted to punycode) and then validated against the
 * DNS hostname rules, with the Public Suffix List (npm `tldts`, pinned in deno.json) deciding what
 * a bare public suffix is and where the registrable domain starts.
 */
import { domainToASCII } from "node:url";
import { parse } from "tldts";

/**
 * How deep a name may sit below its registrable domain. Every create checks each ancestor's
 * reversed-name entry and name pointer in its commit (store/domains/store.ts I5, I7): 4 + 2 x depth
 * + 1 checks, and denokv (Deno Deploy, KV Connect) refuses a commit with more than 10 checks, so
 * depth 2 (9 checks) is the deepest every backend accepts (tests/kv_connect/kv_connect_limits_test.ts).
 */
export const MAX_LABELS_BELOW_REGISTRABLE = 2;

export const MAX_NAME_LENGTH = 253;
export const MAX_LABEL_LENGTH = 63;

const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
const IPV4_LIKE = /^\d{1,3}(?:\.\d{1,3}){3}$/;

export type DomainName = {
  /** The normalised ASCII name, e.g. "mail.xn--bcher-kva.example". */
  name: string;
  /** The registrable domain (one label under the public suffix), e.g. "example.co.uk". */
  registrable: string;
  /**
   * The names between `name` and its registrable domain, nearest first, registrable included
   * ("a.b.example.com" -> ["b.example.com", "example.com"]). Empty for a registrable domain.
   */
  ancestors: string[];
};

export type DomainNameResult = { ok: true; value: DomainName } | { ok: false; problem: string };

const fail = (problem: string): DomainNameResult => ({ ok: false, problem });

/** An http(s) scheme as an address bar shows it; other schemes are not a place a domain is named. */
const WEB_SCHEME = /^https?:\/\//i;
/** ":8080" after a name (not inside an IPv6 address, whose host part holds colons itself). */
const TRAILING_PORT = /^([^:]+):\d{1,5}$/;
/** Any other scheme ("ftp://", "mailto://"): named back rather than guessed at. */
const OTHER_SCHEME = /^([a-z][a-z0-9+.-]*:\/\/)/i;
/** What an IPv6 address may consist of; any other name with a colon is not an address at all. */
const IPV6_LIKE = /^[0-9a-f:.]+$/i;

/**
 * The host name of something pasted from an address bar or a link ("https://Example.com/path?q",
 * "example.com:8080/", "example.com/"): the scheme, port, path, query and fragment are dropped.
 * A new user copies the site's address far more often than they type a bare name, and refusing
 * it (it used to read as "an IP address", because of the colon) teaches nothing; the name that
 * is kept is shown back in every answer, so nothing is stored that the user did not see.
 */
function hostOfPastedAddress(input: string): string {
  let host = input.replace(WEB_SCHEME, "");
  const end = host.search(/[/?#]/);
  if (end !== -1) host = host.slice(0, end);
  const port = TRAILING_PORT.exec(host);
  return port ? port[1] : host;
}

/** Normalises and validates `input`; on failure `problem` is a sentence naming what is wrong. */
export function parseDomainName(input: string): DomainNameResult {
  let name = input.trim();
  if (name === "") return fail("must not be empty");
  const scheme = OTHER_SCHEME.exec(name);
  if (scheme && !WEB_SCHEME.test(name)) {
    return fail(`must be the name only (e.g. example.com), without "${scheme[1]}"`);
  }
  name = hostOfPastedAddress(name);
  if (name === "") return fail("must name a domain, e.g. example.com");
  if (name.endsWith(".")) name = name.slice(0, -1);
  if (name.includes(":") && !IPV6_LIKE.test(name) && !name.startsWith("[")) {
    return fail("must be the name only (e.g. example.com), without a user name, password or port");
  }
  if (name.includes(":") || IPV4_LIKE.test(name) || /^\[.*\]$/.test(name)) {
    return fail("must be a domain name, not an IP address");
  }
  if (/[^\x21-\x7e]/.test(name)) {
    if (/\s/.test(name)) return fail("must not contain spaces");
    // Internationalised name: UTS #46 mapping to punycode ("" when it cannot be mapped).
    const ascii = domainToASCII(name);
    if (!ascii) return fail("is not a valid internationalised domain name");
    name = ascii;
  }
  name = name.toLowerCase();
  if (name.length > MAX_NAME_LENGTH) {
    return fail(`must be at most ${MAX_NAME_LENGTH} characters long`);
  }
  const labels = name.split(".");
  for (const label of labels) {
    if (label === "") return fail("must not contain empty labels (two dots in a row)");
    if (label.length > MAX_LABEL_LENGTH) {
      return fail(`label "${label}" is longer than ${MAX_LABEL_LENGTH} characters`);
    }
    if (!LDH_LABEL.test(label)) {
      return fail(
        `label "${label}" may contain only letters, digits and hyphens, ` +
          "and must not start or end with a hyphen",
      );
    }
  }
  if (labels[labels.length - 1] === "localhost") return fail("must not be localhost");
  if (labels.length < 2) {
    const listed = parse(name, { allowPrivateDomains: true });
    if (listed.isIcann || listed.isPrivate) {
      return fail(`"${name}" is a public suffix; add a domain registered under it`);
    }
    return fail("must have at least two labels (e.g. example.com)");
  }
  if (/^\d+$/.test(labels[labels.length - 1])) {
    return fail("must be a domain name, not an IP address");
  }
  const parsed = parse(name, { allowPrivateDomains: true });
  if (parsed.isIp) return fail("must be a domain name, not an IP address");
  if (!parsed.domain || !parsed.publicSuffix) {
    return fail(`"${name}" is a public suffix; add a domain registered under it`);
  }
  const registrable = parsed.domain;
  const ancestors: string[] = [];
  for (let i = 1; i < labels.length; i++) {
    const candidate = labels.slice(i).join(".");
    if (candidate.length < registrable.length) break;
    ancestors.push(candidate);
  }
  if (ancestors.length > MAX_LABELS_BELOW_REGISTRABLE) {
    return fail(
      `may be at most ${MAX_LABELS_BELOW_REGISTRABLE} labels below its registrable domain ` +
        `${registrable} (e.g. mail.eu.${registrable})`,
    );
  }
  return { ok: true, value: { name, registrable, ancestors } };
}
