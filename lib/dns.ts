/**
 * DNS for domain verification: which records a domain must publish, an injectable resolver
 * (the real one wraps `Deno.resolveDns` with a timeout; tests hand in a fake), and the check
 * that compares what is published with what is expected, one result per record.
 *
 * Resolver contract: an answer with no matching records (NXDOMAIN, NODATA) resolves to `[]`;
 * anything that is not an answer (timeout, SERVFAIL, no network) rejects. The check reports a
 * rejection on the record it concerns and never lets it escape.
 */
import { TimeoutError, withTimeout } from "./async.ts";

export type MxAnswer = { preference: number; exchange: string };

export interface DnsResolver {
  /** TXT records at `name`, each one's character strings joined. */
  txt(name: string): Promise<string[]>;
  mx(name: string): Promise<MxAnswer[]>;
}

export const DEFAULT_DNS_TIMEOUT_MS = 5000;

/** The real resolver. Needs `--allow-net` (the server has it). */
export function denoResolver(
  opts: { timeoutMs?: number; nameServer?: { ipAddr: string; port?: number } } = {},
): DnsResolver {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_DNS_TIMEOUT_MS;
  async function lookup<T>(query: (signal: AbortSignal) => Promise<T[]>): Promise<T[]> {
    try {
      return await withTimeout(query(AbortSignal.timeout(timeoutMs)), timeoutMs + 100);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      if (err instanceof DOMException && err.name === "TimeoutError") {
        throw new TimeoutError(timeoutMs);
      }
      throw err;
    }
  }
  const ns = opts.nameServer ? { nameServer: opts.nameServer } : {};
  return {
    async txt(name) {
      const records = await lookup((signal) => Deno.resolveDns(name, "TXT", { signal, ...ns }));
      return records.map((chunks) => chunks.join(""));
    },
    async mx(name) {
      return await lookup((signal) => Deno.resolveDns(name, "MX", { signal, ...ns }));
    },
  };
}

/** Where mail for verified domains is delivered, and what SPF should include. */
export type MailSettings = { mxHost: string; mxPriority: number; spfInclude: string };

/** The public Inbound service's values, so a domain set up for it checks out here too. */
export const DEFAULT_MAIL_SETTINGS: MailSettings = {
  mxHost: "inbound-smtp.us-east-2.amazonaws.com",
  mxPriority: 10,
  spfInclude: "amazonses.com",
};

export type DnsRecordKind = "verification" | "mx" | "spf" | "dmarc";

export type DnsRecordSpec = {
  kind: DnsRecordKind;
  type: "TXT" | "MX";
  name: string;
  value: string;
  isRequired: boolean;
  description: string;
};

export const VERIFICATION_LABEL = "_inbound";
export const VERIFICATION_PREFIX = "inbound-verification=";

/**
 * The records `domain` should publish. `inherited`: the domain is verified through a parent,
 * so it needs no verification TXT of its own.
 */
export function dnsPlan(
  domain: string,
  token: string,
  inherited: boolean,
  mail: MailSettings = DEFAULT_MAIL_SETTINGS,
): DnsRecordSpec[] {
  const records: DnsRecordSpec[] = [];
  if (!inherited) {
    records.push({
      kind: "verification",
      type: "TXT",
      name: `${VERIFICATION_LABEL}.${domain}`,
      value: `${VERIFICATION_PREFIX}${token}`,
      isRequired: true,
      description: "Proves you control the domain. Verification succeeds once it is published.",
    });
  }
  records.push(
    {
      kind: "mx",
      type: "MX",
      name: domain,
      value: `${mail.mxPriority} ${mail.mxHost}`,
      isRequired: true,
      description: "Routes mail for the domain to this service; required to receive email.",
    },
    {
      kind: "spf",
      type: "TXT",
      name: domain,
      value: `v=spf1 include:${mail.spfInclude} ~all`,
      isRequired: false,
      description: "Recommended SPF record, so mail sent for the domain passes SPF.",
    },
    {
      kind: "dmarc",
      type: "TXT",
      name: `_dmarc.${domain}`,
      value: "v=DMARC1; p=none;",
      isRequired: false,
      description: "Recommended DMARC policy; start with p=none and tighten it later.",
    },
  );
  return records;
}

export type RecordCheck = { kind: DnsRecordKind; isVerified: boolean; error?: string };

const normHost = (h: string) => h.toLowerCase().replace(/\.$/, "");

function describeFailure(err: unknown): string {
  if (err instanceof TimeoutError) return `DNS lookup ${err.message}`;
  const msg = err instanceof Error ? err.message : String(err);
  return `DNS lookup failed: ${msg.slice(0, 200)}`;
}

/**
 * Looks every record up (each distinct name and type once, concurrently) and reports, per
 * record, whether the expected value is published. `error` is set when the record is absent or
 * wrong (`lookupFailed` false) or when the lookup itself failed (`lookupFailed` true).
 */
export async function checkDnsRecords(
  resolver: DnsResolver,
  records: Pick<DnsRecordSpec, "kind" | "type" | "name" | "value">[],
): Promise<(RecordCheck & { lookupFailed: boolean })[]> {
  const lookups = new Map<string, Promise<string[] | MxAnswer[]>>();
  const lookup = (type: "TXT" | "MX", name: string) => {
    const k = `${type} ${name}`;
    let p = lookups.get(k);
    if (!p) {
      p = type === "TXT" ? resolver.txt(name) : resolver.mx(name);
      // Rejections are read below; this keeps an unread one from being reported as unhandled.
      p.catch(() => {});
      lookups.set(k, p);
    }
    return p;
  };
  return await Promise.all(records.map(async (r) => {
    let answers: string[] | MxAnswer[];
    try {
      answers = await lookup(r.type, r.name);
    } catch (err) {
      return { kind: r.kind, isVerified: false, error: describeFailure(err), lookupFailed: true };
    }
    const ok = matches(r, answers);
    return ok
      ? { kind: r.kind, isVerified: true, lookupFailed: false }
      : { kind: r.kind, isVerified: false, error: missing(r, answers), lookupFailed: false };
  }));
}

function matches(r: Pick<DnsRecordSpec, "kind" | "value">, answers: string[] | MxAnswer[]) {
  switch (r.kind) {
    case "verification":
      return (answers as string[]).some((t) => t.trim() === r.value);
    case "mx": {
      const host = normHost(r.value.split(" ").pop() ?? "");
      return (answers as MxAnswer[]).some((a) => normHost(a.exchange) === host);
    }
    case "spf": {
      const include = r.value.split(" ").find((p) => p.startsWith("include:"));
      return (answers as string[]).some((t) =>
        /^v=spf1(\s|$)/i.test(t.trim()) &&
        (!include || t.toLowerCase().split(/\s+/).includes(include.toLowerCase()))
      );
    }
    case "dmarc":
      return (answers as string[]).some((t) => /^v=DMARC1\s*(;|$)/i.test(t.trim()));
  }
}

function missing(r: Pick<DnsRecordSpec, "type" | "name">, answers: unknown[]): string {
  return answers.length === 0
    ? `No ${r.type} record found at ${r.name}.`
    : `The ${r.type} records at ${r.name} do not include the expected value.`;
}
