// Runs in Node: opens the v86 page (bench/v86-page.ts) in a browser. Its
// files come from a small HTTP server of its own on 127.0.0.1, with the
// same COOP/COEP headers as the playground's, so v86 runs in the same kind
// of cross-origin isolated page as our QEMU and gets its files over
// loopback HTTP as our page does; nothing is added to the playground's own
// server. (Playwright's request routing, used before, carried each body
// over the DevTools protocol: a 13 MiB state took seconds.)
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { transform } from 'esbuild';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { REPO } from '../test/e2e/harness';
import { ISOLATION_HEADERS } from '../scripts/vite-artifacts';
import type { V86Assets } from './assets';
import { errorText } from './errors';
import { shell, type ShellResult } from './page-shell';
import type {} from './v86-page';

const TYPES: Record<string, string> = { '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };

let pageScript: string | null = null;
async function script(): Promise<string> {
  pageScript ??= (await transform(readFileSync(`${REPO}bench/v86-page.ts`, 'utf8'), { loader: 'ts', format: 'esm', target: 'es2022' })).code;
  return pageScript;
}

/** Serves `body` (file name → contents) at the server's root. Like the
 * playground's artifacts: Cache-Control no-cache and no validators, so a
 * second load of the page fetches each file again. */
async function serve(body: Record<string, () => Promise<Buffer | string>>): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const name = new URL(req.url ?? '/', 'http://localhost').pathname.slice(1);
    const make = body[name];
    for (const [k, v] of Object.entries(ISOLATION_HEADERS)) res.setHeader(k, v);
    if (!make) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`${name} is not served here`);
      return;
    }
    make().then(
      (data) => {
        // A validator, as the playground's dev server sends: a revisit
        // revalidates (304) and the browser keeps what it cached.
        const etag = `"${createHash('sha256').update(data).digest('hex').slice(0, 16)}"`;
        if (req.headers['if-none-match'] === etag) return void res.writeHead(304, { ETag: etag, 'Cache-Control': 'no-cache' }).end();
        res.writeHead(200, { 'Content-Type': TYPES[name.slice(name.lastIndexOf('.'))] ?? 'application/octet-stream', 'Cache-Control': 'no-cache', ETag: etag }).end(data);
      },
      (e: unknown) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(String(e)),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server };
}

/** A v86 failure as a row's note, with the known cause where it is one. */
export function v86FailureNote(e: unknown, ramMiB: number): string {
  // v86 puts the initrd at physical 64 MiB (facts.md): 64 MiB of RAM cannot hold it.
  const hint = /offset is out of bounds/.test(errorText(e)) && ramMiB <= 64 ? 'v86 loads the initrd at physical 64 MiB, so it does not fit in 64 MiB of RAM: ' : '';
  return hint + errorText(e);
}

export class V86Page {
  private constructor(
    readonly page: Page,
    private readonly assets: V86Assets,
    private readonly server: Server,
    private readonly index: string,
  ) {}

  /** `state`: a state v86 saved, served as ./state.bin for restore(). */
  static async open(browser: Browser, assets: V86Assets, log: (line: string) => void, state?: Buffer): Promise<V86Page> {
    return V86Page.openIn(await browser.newContext(), assets, log, state);
  }

  /** The page in a given context (a profile of its own: launchProfile()). */
  static async openIn(context: BrowserContext, assets: V86Assets, log: (line: string) => void, state?: Buffer): Promise<V86Page> {
    const body: Record<string, () => Promise<Buffer | string>> = {
      'index.html': async () => '<!doctype html><meta charset="utf-8"><title>v86 bench</title><script type="module" src="./page.js"></script>',
      'page.js': script,
      'libv86.mjs': async () => readFileSync(`${REPO}node_modules/v86/build/libv86.mjs`),
      'v86.wasm': async () => readFileSync(`${REPO}node_modules/v86/build/v86.wasm`),
    };
    for (const [name, file] of Object.entries(assets.files)) body[name] = async () => readFileSync(file);
    if (state) body['state.bin'] = async () => state;
    const { url, server } = await serve(body);
    const page = await context.newPage();
    page.on('console', (m) => log(`[v86 page ${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => log(`[v86 page error] ${e.message}`));
    const v = new V86Page(page, assets, server, `${url}index.html`);
    await v.load();
    return v;
  }

  /** Loads the page (again: warm, the same profile). */
  async load(): Promise<void> {
    await this.page.goto(this.index);
    await this.page.waitForFunction(() => typeof window.benchV86 === 'object', null, { timeout: 60_000 });
  }

  boot(memoryMiB: number): Promise<{ constructMs: number; readyMs: number; promptMs: number; sinceNavigationMs: number }> {
    return this.page.evaluate((o) => window.benchV86.boot(o), { memoryMiB, cmdline: this.assets.cmdline });
  }

  /** Starts from the state given to open(); resolves at a fresh prompt. */
  restore(memoryMiB: number): Promise<{ fetchMs: number; constructMs: number; promptMs: number; sinceNavigationMs: number }> {
    return this.page.evaluate((o) => window.benchV86.restore(o), { memoryMiB });
  }

  saveState(): Promise<{ saveMs: number; bytes: number }> {
    return this.page.evaluate(() => window.benchV86.saveState());
  }

  savedGzipBytes(): Promise<number> {
    return this.page.evaluate(() => window.benchV86.savedGzipBytes());
  }

  /** The state of the last saveState(), out of the page. */
  async saved(): Promise<Buffer> {
    return Buffer.from(await this.page.evaluate(() => window.benchV86.savedBase64()), 'base64');
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
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
