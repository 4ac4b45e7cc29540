/**
 * A sparkline: a small server-rendered SVG of a series (requests per day), no script, no style
 * attribute (the CSP allows neither inline), colours from `currentColor` so it follows the text
 * colour in light and dark mode. It is an image with a text alternative (`role="img"`, `<title>`
 * and `aria-label` saying the total and the busiest day); the Usage page has the same numbers as a
 * table.
 */

export type SparklineProps = {
  values: number[];
  /** What the series is, e.g. "Requests per day, last 30 days, key production-server". */
  label: string;
  /** The day each value belongs to (ISO), for the text alternative's busiest day. */
  starts?: string[];
  width?: number;
  height?: number;
};

/** The text alternative: total and busiest day, or "no requests". */
export function describeSeries(values: number[], starts?: string[]): string {
  const total = values.reduce((a, b) => a + b, 0);
  if (total === 0) return "no requests";
  let peak = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[peak]) peak = i;
  const day = starts?.[peak]?.slice(0, 10);
  return `${total.toLocaleString("en-US")} requests in total, at most ${
    values[peak].toLocaleString("en-US")
  } a day${day ? ` (${day})` : ""}`;
}

/** The polyline's points, scaled into width x height with a 1.5 px margin for the stroke. */
export function sparklinePoints(values: number[], width: number, height: number): string {
  const max = Math.max(1, ...values);
  const m = 1.5;
  const step = values.length > 1 ? (width - 2 * m) / (values.length - 1) : 0;
  return values.map((v, i) => {
    const x = m + i * step;
    const y = height - m - (v / max) * (height - 2 * m);
    return `${round(x)},${round(y)}`;
  }).join(" ");
}

const round = (n: number) => Math.round(n * 10) / 10;

/**
 * The sparkline, or "no use yet" when every value is 0: a flat line at the baseline read as a
 * stray underline, not as "this key has not been used".
 */
export function Sparkline(props: SparklineProps) {
  if (props.values.every((v) => v === 0)) {
    return <span class="muted sparkline-empty">no use yet</span>;
  }
  const width = props.width ?? 120;
  const height = props.height ?? 24;
  const text = `${props.label}: ${describeSeries(props.values, props.starts)}`;
  return (
    <svg
      class="sparkline"
      xmlns="http://www.w3.org/2000/svg"
      role="img"
      aria-label={text}
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      focusable="false"
    >
      <title>{text}</title>
      <line
        x1="0"
        y1={height - 0.5}
        x2={width}
        y2={height - 0.5}
        stroke="currentColor"
        stroke-opacity="0.25"
      />
      <polyline
        points={sparklinePoints(props.values, width, height)}
        fill="none"
        stroke="currentColor"
        stroke-width="1.5"
        stroke-linejoin="round"
        stroke-linecap="round"
      />
    </svg>
  );
}
