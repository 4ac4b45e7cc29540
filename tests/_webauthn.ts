/**
 * A software WebAuthn authenticator (P-256, "none" attestation, written from the WebAuthn spec)
 * and the JSON calls of the passkey routes, shared by tests/passkeys/passkeys_test.ts,
 * tests/passkeys/attack_passkeys_test.ts and tests/passkeys/attack_passkey_uv_test.ts.
 */
import assert from "node:assert/strict";
import { TEST_PASSWORD, type TestApp } from "./_helpers.ts";
import { BASE, freshEmail, Jar, json } from "./sessions_helpers.ts";

// --- A software authenticator ----------------------------------------------------------------

export const enc = new TextEncoder();

export function b64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export type Cbor = number | string | Uint8Array | Map<Cbor, Cbor>;

/** Just enough CBOR (RFC 8949) for an attestation object and a COSE key. */
export function cbor(v: Cbor): Uint8Array {
  const head = (major: number, n: number): Uint8Array => {
    if (n < 24) return new Uint8Array([(major << 5) | n]);
    if (n < 256) return new Uint8Array([(major << 5) | 24, n]);
    return new Uint8Array([(major << 5) | 25, n >> 8, n & 255]);
  };
  if (typeof v === "number") return v >= 0 ? head(0, v) : head(1, -1 - v);
  if (typeof v === "string") {
    const b = enc.encode(v);
    return concat(head(3, b.length), b);
  }
  if (v instanceof Uint8Array) return concat(head(2, v.length), v);
  const parts = [head(5, v.size)];
  for (const [k, val] of v) parts.push(cbor(k), cbor(val));
  return concat(...parts);
}

export async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
}

/** WebCrypto's raw r|s signature as the DER sequence WebAuthn carries. */
export function derSignature(raw: Uint8Array): Uint8Array {
  const int = (b: Uint8Array) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    let v: Uint8Array = b.slice(i);
    if (v[0] & 0x80) v = concat(new Uint8Array([0]), v);
    return concat(new Uint8Array([2, v.length]), v);
  };
  const body = concat(int(raw.slice(0, 32)), int(raw.slice(32)));
  return concat(new Uint8Array([0x30, body.length]), body);
}

export type Options = {
  challenge: string;
  rp?: { id: string };
  rpId?: string;
  user?: { id: string };
};

/** Authenticator data flags (WebAuthn § 6.1): user present, user verified, attested data. */
const UP = 0x01;
const UV = 0x04;
const AT = 0x40;

/**
 * `userVerified: false` answers with the user-presence bit only, as a security key touched
 * without its PIN does (anyone holding it can); the default is a verified user (UP | UV).
 */
export type CeremonyOptions = { userVerified?: boolean };

const flags = (opts: CeremonyOptions, extra = 0) =>
  new Uint8Array([UP | (opts.userVerified === false ? 0 : UV) | extra]);

export class SoftAuthenticator {
  counter = 0;
  readonly credentialId = crypto.getRandomValues(new Uint8Array(32));
  userHandle = "";
  private constructor(private readonly keys: CryptoKeyPair) {}

  static async create(): Promise<SoftAuthenticator> {
    const keys = await crypto.subtle.generateKey(
      { name: "ECDSA", namedCurve: "P-256" },
      false,
      ["sign", "verify"],
    ) as CryptoKeyPair;
    return new SoftAuthenticator(keys);
  }

  get id(): string {
    return b64url(this.credentialId);
  }

  async register(options: Options, origin = BASE, opts: CeremonyOptions = {}) {
    const rpId = options.rp!.id;
    this.userHandle = options.user!.id;
    const raw = new Uint8Array(await crypto.subtle.exportKey("raw", this.keys.publicKey));
    const cose = cbor(
      new Map<Cbor, Cbor>([[1, 2], [3, -7], [-1, 1], [-2, raw.slice(1, 33)], [-3, raw.slice(33)]]),
    );
    const authData = concat(
      await sha256(enc.encode(rpId)),
      flags(opts, AT),
      new Uint8Array(4),
      new Uint8Array(16),
      new Uint8Array([0, this.credentialId.length]),
      this.credentialId,
      cose,
    );
    const attestationObject = cbor(
      new Map<Cbor, Cbor>([["fmt", "none"], ["attStmt", new Map()], ["authData", authData]]),
    );
    const clientData = enc.encode(JSON.stringify({
      type: "webauthn.create",
      challenge: options.challenge,
      origin,
      crossOrigin: false,
    }));
    return {
      id: this.id,
      rawId: this.id,
      type: "public-key",
      authenticatorAttachment: "platform",
      clientExtensionResults: {},
      response: {
        clientDataJSON: b64url(clientData),
        attestationObject: b64url(attestationObject),
        transports: ["internal"],
      },
    };
  }

  async assert(
    options: Options,
    opts: { origin?: string; counter?: number } & CeremonyOptions = {},
  ) {
    this.counter = opts.counter ?? this.counter + 1;
    const count = new Uint8Array(4);
    new DataView(count.buffer).setUint32(0, this.counter);
    const authData = concat(
      await sha256(enc.encode(options.rpId!)),
      flags(opts),
      count,
    );
    const clientData = enc.encode(JSON.stringify({
      type: "webauthn.get",
      challenge: options.challenge,
      origin: opts.origin ?? BASE,
      crossOrigin: false,
    }));
    const signed = concat(authData, await sha256(clientData));
    const sig = new Uint8Array(
      await crypto.subtle.sign(
        { name: "ECDSA", hash: "SHA-256" },
        this.keys.privateKey,
        signed as BufferSource,
      ),
    );
    return {
      id: this.id,
      rawId: this.id,
      type: "public-key",
      authenticatorAttachment: "platform",
      clientExtensionResults: {},
      response: {
        clientDataJSON: b64url(clientData),
        authenticatorData: b64url(authData),
        signature: b64url(derSignature(sig)),
        userHandle: this.userHandle,
      },
    };
  }
}

// --- The browser side: a cookie jar and the JSON routes ---------------------------------------

export const P = `${BASE}/api/auth/passkey`;

export async function call(
  ctx: TestApp,
  jar: Jar,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const init = body === undefined ? {} : json(body);
  const res = jar.take(await ctx.app.request(`${P}/${path}`, jar.init(init)));
  return { status: res.status, body: await res.json() };
}

export async function signedUp(ctx: TestApp): Promise<{ jar: Jar; userId: string; email: string }> {
  const jar = new Jar();
  const email = freshEmail();
  const res = jar.take(
    await ctx.app.request(`${BASE}/api/auth/sign-up`, json({ email, password: TEST_PASSWORD })),
  );
  assert.equal(res.status, 201);
  return { jar, userId: (await res.json()).user.id, email };
}
