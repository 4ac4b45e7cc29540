/**
 * Whether a sign-in comes from a device not seen before: the browser carries no device cookie
 * (auth/sessions/device_cookie.ts) that is valid for this account. Asked before the new cookie is
 * issued, so the answer is about the browser as it came; the owner is told about new devices
 * (auth/accounts/notifications.ts).
 */
import { type DeviceCookies, readDeviceCookie } from "./device_cookie.ts";

export async function isNewDevice(
  devices: DeviceCookies,
  req: Request,
  user: { id: string; email: string },
): Promise<boolean> {
  const claim = await devices.verify(readDeviceCookie(req), user.email);
  return claim?.userId !== user.id;
}
