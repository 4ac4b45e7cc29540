/**
 * A short, human summary of a User-Agent header ("Chrome on macOS") for the session list. A few
 * ordered patterns, no dependency: it names the browser and the system, nothing finer, and never
 * echoes more than 100 characters of the header. Unknown agents give "Unknown browser".
 */

/** Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari". */
const BROWSERS: [RegExp, string][] = [
  [/\bEdg(?:e|A|iOS)?\//, "Edge"],
  [/\bOPR\/|\bOpera\b/, "Opera"],
  [/\bSamsungBrowser\//, "Samsung Internet"],
  [/\bFirefox\/|\bFxiOS\//, "Firefox"],
  [/\bHeadlessChrome\//, "Headless Chrome"],
  [/\bChrome\/|\bCriOS\/|\bChromium\//, "Chrome"],
  [/\bVersion\/[\d.]+.*\bSafari\//, "Safari"],
  [/^curl\//, "curl"],
  [/^Deno\//, "Deno"],
  [/^node\b|\bundici\b/i, "Node.js"],
  [/\bpython-requests\/|\bpython-httpx\/|\baiohttp\//, "Python"],
  [/^Go-http-client\//, "Go"],
];

const SYSTEMS: [RegExp, string][] = [
  [/\biPhone\b|\biPad\b|\biPod\b/, "iOS"],
  [/\bAndroid\b/, "Android"],
  [/\bCrOS\b/, "ChromeOS"],
  [/\bMac OS X\b|\bMacintosh\b/, "macOS"],
  [/\bWindows\b/, "Windows"],
  [/\bLinux\b|\bX11\b/, "Linux"],
];

export const UNKNOWN_AGENT = "Unknown browser";
const MAX_HEADER = 512;

/** "Chrome on macOS", "Firefox", "curl", or "Unknown browser" for a missing or odd header. */
export function summariseUserAgent(header: string | null | undefined): string {
  const ua = (header ?? "").slice(0, MAX_HEADER);
  if (ua.trim() === "") return UNKNOWN_AGENT;
  const browser = BROWSERS.find(([re]) => re.test(ua))?.[1];
  const system = SYSTEMS.find(([re]) => re.test(ua))?.[1];
  if (browser && system) return `${browser} on ${system}`;
  if (browser) return browser;
  if (system) return `Unknown browser on ${system}`;
  return UNKNOWN_AGENT;
}
