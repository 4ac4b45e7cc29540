/**
 * Structured logs: one JSON object per line on stdout. Callers pass only fields that are safe to
 * log (ids, routes, statuses, durations); nothing in this module inspects values for secrets, so
 * nothing secret may be handed to it.
 */
export type LogEntry = Record<string, unknown>;
export type Logger = (entry: LogEntry) => void;

export const jsonLogger: Logger = (entry) => {
  console.log(JSON.stringify({ time: new Date().toISOString(), ...entry }));
};

export const silentLogger: Logger = () => {};
