import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCapped } from './capped';

/** Running, or stopped but not yet ended; a zombie (ended, not reaped by
 * whatever init this machine has) is not alive. */
const alive = (pid: number): boolean => {
  const stat = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim();
  return stat !== '' && !stat.startsWith('Z');
};

describe('runCapped', () => {
  it('reports a program that ends by itself, passed or failed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'capped-'));
    writeFileSync(join(dir, 'ok.ts'), 'process.exit(0);\n');
    writeFileSync(join(dir, 'bad.ts'), 'process.exit(3);\n');
    expect((await runCapped('ok', [join(dir, 'ok.ts')], 60_000)).outcome).toBe('passed');
    expect((await runCapped('bad', [join(dir, 'bad.ts')], 60_000)).outcome).toBe('failed');
  }, 60_000);

  it('ends a program that outlives its cap, and what it started in a group of its own', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'capped-'));
    const pidFile = join(dir, 'child.pid');
    // A child in a process group of its own, as Playwright starts a browser.
    writeFileSync(join(dir, 'hang.ts'), [
      "import { spawn } from 'node:child_process';",
      "import { writeFileSync } from 'node:fs';",
      "const c = spawn('sleep', ['600'], { detached: true, stdio: 'ignore' });",
      `writeFileSync(${JSON.stringify(pidFile)}, String(c.pid));`,
      'setInterval(() => undefined, 1000);',
      '',
    ].join('\n'));
    const run = await runCapped('hang', [join(dir, 'hang.ts')], 3_000);
    expect(run.outcome).toBe('over its cap');
    const child = Number(readFileSync(pidFile, 'utf8'));
    await new Promise((r) => setTimeout(r, 200));
    expect(alive(child)).toBe(false);
  }, 60_000);
});
