// Runs in Node: two small SVG chart kinds for docs/bench (no dependency):
// lines with min-max whiskers over a numeric x axis, and horizontal bars.
// Log scales, since the things compared differ by orders of magnitude.

export interface Series {
  name: string;
  color: string;
  points: { x: number; y: number; lo: number; hi: number }[];
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (v: number): string => (v >= 1000 ? `${+(v / 1000).toPrecision(3)} s` : `${+v.toPrecision(3)} ms`);

function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) ticks.push(10 ** e);
  return ticks;
}

export function lineChart(title: string, xLabel: string, series: Series[], xs: number[], unit: (v: number) => string = fmt): string {
  const W = 900, H = 420, L = 70, R = 330, T = 40, B = 50;
  const ys = series.flatMap((s) => s.points.flatMap((p) => [p.lo, p.hi, p.y])).filter((v) => v > 0);
  if (!ys.length) return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="60"><text x="10" y="30" font-family="sans-serif">${esc(title)}: no data</text></svg>\n`;
  const ticks = logTicks(Math.min(...ys), Math.max(...ys));
  const y0 = Math.log10(ticks[0]!), y1 = Math.log10(ticks.at(-1)!);
  const x0 = Math.log2(Math.min(...xs)), x1 = Math.log2(Math.max(...xs));
  const px = (x: number): number => L + ((Math.log2(x) - x0) / (x1 - x0 || 1)) * (W - L - R);
  const py = (y: number): number => T + (1 - (Math.log10(y) - y0) / (y1 - y0 || 1)) * (H - T - B);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>`,
  ];
  for (const t of ticks) out.push(`<line x1="${L}" x2="${W - R}" y1="${py(t)}" y2="${py(t)}" stroke="#ddd"/><text x="${L - 6}" y="${py(t) + 4}" text-anchor="end">${unit(t)}</text>`);
  for (const x of xs) out.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${T}" y2="${H - B}" stroke="#eee"/><text x="${px(x)}" y="${H - B + 16}" text-anchor="middle">${x}</text>`);
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">${esc(xLabel)}</text>`);
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => p.y > 0);
    if (pts.length) out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts.map((p) => `${px(p.x)},${py(p.y)}`).join(' ')}"/>`);
    for (const p of pts) {
      out.push(`<line x1="${px(p.x)}" x2="${px(p.x)}" y1="${py(p.lo)}" y2="${py(p.hi)}" stroke="${s.color}"/>`);
      out.push(`<circle cx="${px(p.x)}" cy="${py(p.y)}" r="3.5" fill="${s.color}"><title>${esc(s.name)} ${p.x}: ${unit(p.y)}</title></circle>`);
    }
    out.push(`<rect x="${W - R + 12}" y="${T + i * 20}" width="12" height="12" fill="${s.color}"/><text x="${W - R + 30}" y="${T + i * 20 + 10}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

export interface Bar {
  label: string;
  value: number;
  color: string;
}

export function barChart(title: string, bars: Bar[], unit: (v: number) => string = fmt): string {
  const W = 720, L = 220, R = 90, T = 40, rowH = 26;
  const H = T + bars.length * rowH + 20;
  const vals = bars.map((b) => b.value).filter((v) => v > 0);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>`,
  ];
  if (vals.length) {
    const ticks = logTicks(Math.min(...vals) / 2, Math.max(...vals));
    const a = Math.log10(ticks[0]!), b = Math.log10(ticks.at(-1)!);
    const px = (v: number): number => L + ((Math.log10(v) - a) / (b - a || 1)) * (W - L - R);
    for (const t of ticks) out.push(`<line x1="${px(t)}" x2="${px(t)}" y1="${T - 4}" y2="${H - 16}" stroke="#eee"/><text x="${px(t)}" y="${H - 4}" text-anchor="middle" fill="#888">${unit(t)}</text>`);
    bars.forEach((bar, i) => {
      const y = T + i * rowH;
      out.push(`<text x="${L - 8}" y="${y + 15}" text-anchor="end">${esc(bar.label)}</text>`);
      if (bar.value > 0) {
        out.push(`<rect x="${L}" y="${y + 3}" width="${Math.max(1, px(bar.value) - L)}" height="${rowH - 8}" fill="${bar.color}"/>`);
        out.push(`<text x="${px(bar.value) + 6}" y="${y + 15}">${unit(bar.value)}</text>`);
      } else out.push(`<text x="${L + 6}" y="${y + 15}" fill="#a00">no result</text>`);
    });
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
