// Runs on the page's main thread; uses no DOM (unit-tested in Node).
//
// The live pause chart: each live update of this page as one stacked bar,
// split by phase, so that an audience sees where the pause goes and that
// it does not grow with guest RAM. SVG markup; every text is escaped.
import type { LiveUpdateResult, PausePhases } from '../worker/api';

export const PHASES: readonly { key: keyof PausePhases; label: string; color: string }[] = [
  { key: 'stateSaveMs', label: 'state save', color: '#58a6ff' },
  { key: 'teardownMs', label: 'teardown', color: '#d29922' },
  { key: 'clearMs', label: 'memory clear', color: '#8b949e' },
  { key: 'instantiateMs', label: 'instantiate', color: '#a371f7' },
  { key: 'qemuInitMs', label: 'QEMU init', color: '#3fb950' },
  { key: 'stateLoadMs', label: 'state load', color: '#f778ba' },
];

/** How many of the latest updates the chart shows. */
export const CHART_BARS = 10;

const ROW = 22;
const LABEL = 190;
const WIDTH = 640;
const LEGEND = 26;

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** SVG of the latest updates' pauses ('' when there are none). */
export function pauseChart(results: readonly LiveUpdateResult[]): string {
  const shown = results.slice(-CHART_BARS);
  if (shown.length === 0) return '';
  const max = Math.max(...shown.map((r) => r.pauseMs), 1);
  const scale = (WIDTH - LABEL - 70) / max;
  const height = LEGEND + shown.length * ROW + 4;
  const parts: string[] = [];
  PHASES.forEach((p, i) => {
    const x = (i * WIDTH) / PHASES.length;
    parts.push(`<rect x="${x}" y="4" width="10" height="10" fill="${p.color}"/><text x="${x + 14}" y="13">${esc(p.label)}</text>`);
  });
  shown.forEach((r, i) => {
    const y = LEGEND + i * ROW;
    const short = (name: string): string => name.replace(/^qemu-system-/, '');
    parts.push(`<text x="0" y="${y + 14}">${esc(`${short(r.from)} → ${short(r.to)}`)}</text>`);
    let x = LABEL;
    for (const p of PHASES) {
      const w = Math.max(0, r.phases[p.key] * scale);
      parts.push(`<rect x="${x.toFixed(1)}" y="${y + 3}" width="${w.toFixed(1)}" height="${ROW - 8}" fill="${p.color}"><title>${esc(`${p.label}: ${r.phases[p.key]} ms`)}</title></rect>`);
      x += w;
    }
    parts.push(`<text x="${(x + 6).toFixed(1)}" y="${y + 14}">${esc(`${r.pauseMs} ms`)}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="Pause of each live update, by phase" font-size="12" fill="currentColor">${parts.join('')}</svg>`;
}
