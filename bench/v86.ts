// Runs in Node: opens the v86 page (bench/v86-page.ts) in a browser. Its
// files are answered by Playwright's request routing under the playground
// server's origin, with the same COOP/COEP headers, so v86 runs in the
// same kind of cross-origin isolated page as our QEMU; nothing is added to
// the playground's own server.
import { readFileSync } from 'node:fs';
import { transform } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { REPO } from '../test/e2e/harness';
import { ISOLATION_HEADERS } from '../scripts/vite-artifacts';
import type { V86Assets } from './assets';
import { shell, type ShellResult } from './page-shell';
import type {} from './v86-page';

const PREFIX = '__bench_v86/';
const TYPES: Record<string, string> = { '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };

let pageScript: string | null = null;
async function script(): Promise<string> {
  pageScript ??= (await transform(readFileSync(`${REPO}bench/v86-page.ts`, 'utf8'), { loader: 'ts', format: 'esm', target: 'es2022' })).code;
  return pageScript;
}

export class V86Page {
  private constructor(readonly page: Page, private readonly assets: V86Assets) {}

  static async open(browser: Browser, url: string, assets: V86Assets, log: (line: string) => void): Promise<V86Page> {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('console', (m) => log(`[v86 page ${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => log(`[v86 page error] ${e.message}`));
    const body: Record<string, () => Promise<Buffer | string>> = {
      'index.html': async () => '<!doctype html><meta charset="utf-8"><title>v86 bench</title><script type="module" src="./page.js"></script>',
      'page.js': script,
      'libv86.mjs': async () => readFileSync(`${REPO}node_modules/v86/build/libv86.mjs`),
      'v86.wasm': async () => readFileSync(`${REPO}node_modules/v86/build/v86.wasm`),
    };
    for (const [name, file] of Object.entries(assets.files)) body[name] = async () => readFileSync(file);
    await page.route(`${url}${PREFIX}**`, async (route) => {
      const name = new URL(route.request().url()).pathname.split('/').pop() ?? '';
      const make = body[name];
      if (!make) return route.fulfill({ status: 404, body: `${name} is not served here` });
      const ext = name.slice(name.lastIndexOf('.'));
      await route.fulfill({
        status: 200,
        body: await make(),
        headers: { ...ISOLATION_HEADERS, 'Content-Type': TYPES[ext] ?? 'application/octet-stream' },
      });
    });
    await page.goto(`${url}${PREFIX}index.html`);
    await page.waitForFunction(() => typeof window.benchV86 === 'object', null, { timeout: 60_000 });
    return new V86Page(page, assets);
  }

  boot(memoryMiB: number): Promise<{ constructMs: number; readyMs: number; promptMs: number; sinceNavigationMs: number }> {
    return this.page.evaluate((o) => window.benchV86.boot(o), { memoryMiB, cmdline: this.assets.cmdline });
  }

  saveRestore(): Promise<{ saveMs: number; restoreMs: number; bytes: number }> {
    return this.page.evaluate(() => window.benchV86.saveRestore());
  }

  shell(command: string, timeoutMs = 600_000): Promise<ShellResult> {
    return shell(this.page, 'benchV86', command, timeoutMs);
  }

  async close(): Promise<void> {
    await this.page.evaluate(() => window.benchV86.destroy()).catch(() => undefined);
    await this.page.context().close();
  }
}
