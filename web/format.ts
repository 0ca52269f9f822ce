// Runs on the page's main thread; uses no DOM (unit-tested in Node).
//
// Small pure helpers for the status bar and the progress bar.
import type { Progress, RunState, Status } from '../worker/api';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** 0..1 for a determinate bar, or null for an indeterminate one. */
export function progressFraction(p: Progress): number | null {
  if (p.phase === 'done') return 1;
  if (p.phase === 'download' && p.total > 0) return Math.min(1, p.loaded / p.total);
  return null;
}

export function progressText(p: Progress): string {
  if (p.phase === 'download') {
    return p.total > 0
      ? `${p.label} — ${formatBytes(p.loaded)} of ${formatBytes(p.total)}`
      : `${p.label} — ${formatBytes(p.loaded)}`;
  }
  return p.label;
}

/** Quotes an argv for display the way a shell would need it. */
export function formatArgv(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export const STATE_LABEL: Record<RunState, string> = {
  idle: 'idle',
  loading: 'downloading',
  starting: 'starting QEMU',
  booting: 'booting the guest',
  running: 'running',
  paused: 'paused',
  updating: 'live update',
  stopping: 'stopping',
  stopped: 'stopped',
  error: 'error',
};

/** Which controls make sense in a state. */
export function controlsFor(state: RunState): { boot: boolean; reset: boolean; stop: boolean } {
  const busy = state === 'loading' || state === 'starting' || state === 'stopping' || state === 'updating';
  const up = state === 'booting' || state === 'running' || state === 'paused';
  return { boot: !busy, reset: up, stop: up || state === 'loading' || state === 'starting' };
}

export function statusSummary(s: Status): string {
  const parts = [STATE_LABEL[s.state]];
  if (s.build) parts.push(s.build);
  if (s.ramMiB) parts.push(`${s.ramMiB} MiB RAM`);
  return parts.join(' · ');
}

/** "qemu-system-arm@v1 → qemu-system-arm@v2: guest paused 512 ms". */
export function liveUpdateText(r: { from: string; to: string; pauseMs: number; route: string }): string {
  return `${r.from} → ${r.to}: guest paused ${r.pauseMs} ms${r.route === 'copy' ? ' (copy route)' : ''}`;
}
