// Runs in Node: where a snapshot save or restore of our page spends its
// time, from what the page and QEMU say (nothing is added to the product
// for the benchmark).
import type { RestorePhases } from './results';

/** One of the page's status or progress events during a restore:
 * `status:<state>` or `progress:<phase>`, ms after restoreSnapshot() was called. */
export type Mark = [name: string, ms: number];

/** A restore's phases from its marks, or null when one of their starts
 * is missing (the page changed how it reports a restore). A new worker
 * checks the file while the running guest goes on (no event), then is
 * made the page's (idle), loads the build (loading), starts QEMU
 * (starting) and has it load the state (progress 'boot') until the VM
 * runs (`totalMs`). The running guest's worker ends between the check and
 * idle (status stopping) or, since the page retires it, in the background
 * after the check (no event: `stopMs` null). */
export function restorePhases(marks: readonly Mark[], totalMs: number): RestorePhases | null {
  let after = 0;
  const next = (name: string): number | null => {
    const m = marks.find(([n, t]) => n === name && t >= after);
    if (!m) return null;
    after = m[1];
    return m[1];
  };
  const stopping = marks.some(([n]) => n === 'status:stopping') ? next('status:stopping') : null;
  const idle = next('status:idle');
  const loading = next('status:loading');
  const starting = next('status:starting');
  const loadingState = next('progress:boot');
  if (idle === null || loading === null || starting === null || loadingState === null) return null;
  return {
    checkMs: stopping ?? idle,
    stopMs: stopping === null ? null : idle - stopping,
    recheckMs: loading - idle,
    buildMs: starting - loading,
    qemuStartMs: loadingState - starting,
    stateLoadMs: totalMs - loadingState,
  };
}

/** QEMU's total time of its last migration, from HMP `info migrate`
 * ("Time (ms): total=12771, ..."), or null. */
export function migrationMs(infoMigrate: string): number | null {
  const m = /\btotal=(\d+)/.exec(infoMigrate) ?? /total time:\s*(\d+)/.exec(infoMigrate);
  return m ? Number(m[1]) : null;
}
