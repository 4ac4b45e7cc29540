/**
 * How the dashboard writes a moment: a UTC date and time (keys, sessions, domains, the security
 * log) and its distance from now ("3 days ago", "in 2 hours"). One place, so every page agrees.
 */

const DAY_MS = 86_400_000;

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

export function formatDate(iso: string): string {
  const d = new Date(iso);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}

export function relative(iso: string, nowMs: number): string {
  const diff = Date.parse(iso) - nowMs;
  const abs = Math.abs(diff);
  const [n, unit] = abs < 60_000
    ? [0, ""]
    : abs < 3_600_000
    ? [Math.round(abs / 60_000), "minute"]
    : abs < DAY_MS
    ? [Math.round(abs / 3_600_000), "hour"]
    : [Math.round(abs / DAY_MS), "day"];
  if (n === 0) return "just now";
  const text = `${n} ${unit}${n === 1 ? "" : "s"}`;
  return diff < 0 ? `${text} ago` : `in ${text}`;
}
