import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import {
  newWebhookSecret,
  secretKeyBytes,
  signWebhook,
  verifyWebhook,
} from "../../lib/webhooks/signature.ts";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TS = new Date(1614265330 * 1000);
const BODY = '{"test": 2432232314}';

function headers(id: string, ts: Date | string, sig: string): Headers {
  const t = typeof ts === "string" ? ts : String(Math.floor(ts.getTime() / 1000));
  return new Headers({ "webhook-id": id, "webhook-timestamp": t, "webhook-signature": sig });
}

Deno.test("Standard Webhooks signatures", async (t) => {
  await t.step("known answer: the Standard Webhooks spec's published vector", async () => {
    assert.equal(
      await signWebhook(SECRET, ID, TS, BODY),
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    );
  });

  await t.step("known answer computed independently with node:crypto", async () => {
    const secret = newWebhookSecret();
    const body = '{"type":"endpoint.test","data":{"subject":"Grüße ✉"}}';
    const ts = new Date(1_700_000_000_500);
    const key = Buffer.from(secret.slice("whsec_".length), "base64");
    const expected = createHmac("sha256", key).update(`msg_1.1700000000.${body}`, "utf8")
      .digest("base64");
    assert.equal(await signWebhook(secret, "msg_1", ts, body), `v1,${expected}`);
  });

  await t.step("new secrets are whsec_ + base64 of 32 random bytes, all different", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const s = newWebhookSecret();
      assert.match(s, /^whsec_[A-Za-z0-9+/]{43}=$/);
      assert.equal(secretKeyBytes(s)?.length, 32);
      seen.add(s);
    }
    assert.equal(seen.size, 50);
  });

  await t.step("verify accepts its own signature, also among several space-separated", async () => {
    const sig = await signWebhook(SECRET, ID, TS, BODY);
    assert.equal(await verifyWebhook(SECRET, headers(ID, TS, sig), BODY, { now: TS }), true);
    const other = await signWebhook(newWebhookSecret(), ID, TS, BODY);
    const several = `v1a,abc ${other} v2,${sig.slice(3)} ${sig}`;
    assert.equal(await verifyWebhook(SECRET, headers(ID, TS, several), BODY, { now: TS }), true);
  });

  await t.step("verify rejects a wrong secret, a tampered body, id or signature", async () => {
    const sig = await signWebhook(SECRET, ID, TS, BODY);
    const h = headers(ID, TS, sig);
    assert.equal(await verifyWebhook(newWebhookSecret(), h, BODY, { now: TS }), false);
    assert.equal(await verifyWebhook(SECRET, h, BODY.replace("2", "3"), { now: TS }), false);
    assert.equal(await verifyWebhook(SECRET, headers("msg_x", TS, sig), BODY, { now: TS }), false);
    const flipped = sig.slice(0, -3) + (sig.at(-3) === "A" ? "B" : "A") + sig.slice(-2);
    assert.equal(await verifyWebhook(SECRET, headers(ID, TS, flipped), BODY, { now: TS }), false);
    assert.equal(
      await verifyWebhook(SECRET, headers(ID, TS, `v2,${sig.slice(3)}`), BODY, { now: TS }),
      false,
    );
  });

  await t.step("verify rejects a timestamp outside the tolerance, either side", async () => {
    const sig = await signWebhook(SECRET, ID, TS, BODY);
    const h = headers(ID, TS, sig);
    const at = (s: number) => new Date(TS.getTime() + s * 1000);
    assert.equal(await verifyWebhook(SECRET, h, BODY, { now: at(300) }), true);
    assert.equal(await verifyWebhook(SECRET, h, BODY, { now: at(301) }), false);
    assert.equal(await verifyWebhook(SECRET, h, BODY, { now: at(-301) }), false);
    assert.equal(await verifyWebhook(SECRET, h, BODY, { now: at(50), toleranceSec: 10 }), false);
    assert.equal(await verifyWebhook(SECRET, h, BODY), false); // today is years after 2021
  });

  await t.step("verify is false (never throws) on missing or malformed input", async () => {
    const sig = await signWebhook(SECRET, ID, TS, BODY);
    const now = { now: TS };
    assert.equal(await verifyWebhook(SECRET, new Headers(), BODY, now), false);
    assert.equal(await verifyWebhook(SECRET, headers(ID, "1614265330.5", sig), BODY, now), false);
    assert.equal(await verifyWebhook(SECRET, headers(ID, "-1", sig), BODY, now), false);
    assert.equal(await verifyWebhook(SECRET, headers(ID, TS, "v1,%%%"), BODY, now), false);
    assert.equal(await verifyWebhook("whsec_!!!", headers(ID, TS, sig), BODY, now), false);
    assert.equal(await verifyWebhook("whsec_", headers(ID, TS, sig), BODY, now), false);
    await assert.rejects(() => signWebhook("whsec_!!!", ID, TS, BODY), /malformed/);
  });
});
