// Runs in Node: shared by the end-to-end tests and the screenshot script.
//
// Starts the playground's own Vite dev server on a free port (COOP/COEP
// included, artifacts at /artifacts/) and Debian's Chromium through
// playwright-core; each returns a close() that the caller must call.
// The helpers that only read and click the page take a PageLike, so that
// the Firefox tests (firefox.ts) share them.
import assert from 'node:assert/strict';
import { createServer as createNetServer } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { build, createServer, preview, type ViteDevServer } from 'vite';
// For the window.playground declaration used inside page.evaluate().
import type {} from '../../web/playground';
import { ARTIFACTS } from '../artifacts';
import { SHELL_PROMPT } from '../shell-prompt';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Booting Linux under TCI in wasm takes 3-60 s here, more on a busy machine. */
export const BOOT_TIMEOUT_MS = 300_000;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface Server {
  url: string;
  close(): Promise<void>;
}

export async function startServer(): Promise<Server> {
  if (!existsSync(`${ARTIFACTS}/manifest.json`)) {
    throw new Error('wasm/out is missing: run `npm run artifacts` first (npm test does)');
  }
  const port = await freePort();
  const server: ViteDevServer = await createServer({
    configFile: `${REPO}vite.config.ts`,
    logLevel: 'warn',
    clearScreen: false,
    server: { port, strictPort: true, host: '127.0.0.1', hmr: false },
  });
  await server.listen();
  return { url: `http://127.0.0.1:${port}/`, close: () => server.close() };
}

/** A server of the static build, and the directory it serves. */
export interface StaticServer extends Server {
  outDir: string;
}

/** The static build (`npm run build`, into a new temporary directory)
 * served by `vite preview` on a free port, as a deployment serves it:
 * precompressed files, brotli where the client takes it. close() stops
 * the server and removes the build. */
export async function startStaticServer(): Promise<StaticServer> {
  const outDir = mkdtempSync(join(tmpdir(), 'cpr-playground-dist-'));
  const common = { configFile: `${REPO}vite.config.ts`, logLevel: 'warn' as const };
  await build({ ...common, build: { outDir, emptyOutDir: true } });
  const port = await freePort();
  const server = await preview({ ...common, build: { outDir }, preview: { port, strictPort: true, host: '127.0.0.1' } });
  return {
    url: `http://127.0.0.1:${port}/`,
    outDir,
    close: async () => {
      await new Promise<void>((resolve) => server.httpServer.close(() => resolve()));
      rmSync(outDir, { recursive: true, force: true });
    },
  };
}

/** How the tests launch Debian's Chromium, headless; `extraArgs` for
 * experiments (e.g. V8 flags). */
function chromiumOptions(extraArgs: readonly string[]): { executablePath: string; headless: true; args: string[] } {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (or set CHROMIUM)`);
  }
  return {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--headless', ...extraArgs],
  };
}

/** Debian's Chromium, headless; `extraArgs` for experiments (e.g. V8 flags). */
export async function launchBrowser(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch(chromiumOptions(extraArgs));
}

/** Debian's Chromium with a profile of its own on disk (a new temporary
 * user-data dir): an HTTP cache and a code cache that a second visit finds,
 * as a person's browser has them (a browser's default contexts keep their
 * cache in memory and drop big entries). close() removes the dir. */
export async function launchProfile(extraArgs: readonly string[] = []): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const options = chromiumOptions(extraArgs);
  const dir = mkdtempSync(join(tmpdir(), 'cpr-profile-'));
  const context = await chromium.launchPersistentContext(dir, { ...options, viewport: { width: 1280, height: 800 } });
  return {
    context,
    close: async () => {
      await context.close();
      // Chromium may still be writing its cache as it goes.
      rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    },
  };
}

/** Progress lines of the e2e tests, printed with E2E_VERBOSE=1. */
export function e2eLog(line: string): void {
  if (process.env.E2E_VERBOSE === '1') console.log(line);
}

/** A browser, or one of its contexts: anything the tests must close. */
export interface Closable {
  close(): Promise<unknown>;
}

/** One dev server and one browser for a test file: started before its
 * tests, closed after them. Debian's Chromium unless `launch` starts
 * another browser for the server (firefox.e2e.ts: launchFirefox). */
export function sharedBrowser(): { readonly server: Server; readonly browser: Browser };
export function sharedBrowser<B extends Closable>(launch: (server: Server) => Promise<B>): { readonly server: Server; readonly browser: B };
export function sharedBrowser(launch: (server: Server) => Promise<Closable> = () => launchBrowser()): { readonly server: Server; readonly browser: Closable } {
  const shared = {} as { server: Server; browser: Closable };
  before(async () => {
    shared.server = await startServer();
    shared.browser = await launch(shared.server);
  });
  // Printed as each test starts, so that a run cut short by its cap
  // (run.ts) names the test that was running.
  beforeEach((t) => console.log(`# started: ${t.name} (${new Date().toISOString()})`));
  // A test's pages end with it: each runs a QEMU, and guests left running
  // took the CPU from the tests after them.
  afterEach(async () => {
    for (const c of [...openContexts]) await c.close().catch(() => undefined);
    openContexts.clear();
  });
  after(async () => {
    await shared.browser?.close();
    await shared.server?.close();
  });
  return shared;
}

const openContexts = new Set<Closable>();

/** Closes `context` (and the QEMU its page runs) after the current test;
 * for pages that openPage does not make. */
export function closeAfterTest(context: Closable): void {
  openContexts.add(context);
}

/** What the shared helpers need of a page: a click on a selector, and a
 * function run in the page with one plain-data argument (its result plain
 * data too). playwright-core's Page is one as it is; firefox.ts makes one
 * for Firefox. */
export interface PageLike {
  click(selector: string): Promise<void>;
  evaluate<R, A>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<R>;
}

/** A fresh page; console errors and page errors are echoed for debugging. */
export async function openPage(browser: Browser, url: string, log: (line: string) => void = () => undefined): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  openContexts.add(context);
  context.on('close', () => openContexts.delete(context));
  const page = await context.newPage();
  // Actions (click, fill) never wait long: only boots do, explicitly.
  page.setDefaultTimeout(60_000);
  page.on('console', (m) => log(`[page ${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log(`[page error] ${e.message}`));
  await page.goto(url);
  await page.waitForFunction(() => typeof window.playground === 'object');
  return page;
}

/** The text a terminal pane shows, one line per row, trailing blanks trimmed. */
export async function terminalLines(page: PageLike, pane: 'serial' | 'monitor'): Promise<string[]> {
  return within(
    30_000,
    `reading the ${pane} terminal`,
    page.evaluate((selector) => [...document.querySelectorAll(selector)].map((r) => (r.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd()), `#${pane} .xterm-rows > div`),
  );
}

/** An element's text ('' if it has none); fails if it is missing. */
export async function textOf(page: PageLike, selector: string): Promise<string> {
  const text = await within(30_000, `reading ${selector}`, page.evaluate((sel) => document.querySelector(sel)?.textContent ?? null, selector));
  if (text === null) throw new Error(`the page has no ${selector}`);
  return text;
}

/** Whether a button is disabled; fails if it is missing. */
export async function isDisabled(page: PageLike, selector: string): Promise<boolean> {
  const disabled = await within(30_000, `reading ${selector}`, page.evaluate((sel) => document.querySelector<HTMLButtonElement>(sel)?.disabled ?? null, selector));
  if (disabled === null) throw new Error(`the page has no ${selector}`);
  return disabled;
}

/** Fails instead of hanging when the page stops answering. */
export function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms: the page stopped answering`)), ms);
  });
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}

export async function waitForTerminal(page: PageLike, pane: 'serial' | 'monitor', test: (line: string) => boolean, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = await terminalLines(page, pane);
    const hit = lines.find(test);
    if (hit !== undefined) return hit;
    if (Date.now() > deadline) {
      throw new Error(`the ${pane} terminal never showed the expected line; it shows:\n${lines.filter(Boolean).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Waits until the page's status reaches `state`; fails at once, with the
 * reason, if it reaches 'error' instead. */
export async function waitForState(page: PageLike, state: string, timeoutMs: number): Promise<void> {
  // Polled inside the page through evaluate(), which both drivers have
  // alike (their waitForFunction() signatures differ), with no round trip
  // per poll.
  const s = await within(
    timeoutMs + 30_000,
    `waiting for the state ${state}`,
    page.evaluate(
      async ({ want, timeoutMs }) => {
        const end = Date.now() + timeoutMs;
        for (;;) {
          const s = window.playground.status();
          if (s.state === want || s.state === 'error' || Date.now() > end) return s;
          await new Promise((r) => setTimeout(r, 250));
        }
      },
      { want: state, timeoutMs },
    ),
  );
  if (s.state !== state) {
    const why = s.state === 'error' ? `: ${s.error?.code}: ${s.error?.message}` : ` after ${timeoutMs} ms`;
    throw new Error(`the page went to ${s.state} instead of ${state}${why}`);
  }
}

/** Why the live-update tests cannot run on these artifacts (they need
 * v1 and v2 of qemu-system-arm with live-update support), or undefined. */
export function liveUpdateUnavailable(): string | undefined {
  for (const v of ['v1', 'v2']) {
    const js = `${ARTIFACTS}/qemu/${v}/qemu-system-arm.js`;
    if (!existsSync(js)) return `${js} is missing: the artifacts have no ${v} build`;
    if (!readFileSync(js, 'utf8').includes('"cpr-memory-layout/2"')) return `${js} has no live-update support (memory layout cpr-memory-layout/2)`;
  }
  return undefined;
}

/** Runs a shell command in the guest's serial console; resolves with the
 * first match of `expect` in its output. */
export async function guestShell(page: PageLike, command: string, expect: RegExp, timeoutMs = 120_000): Promise<string> {
  return within(
    timeoutMs + 10_000,
    `guest command ${command}`,
    page.evaluate(
      async ({ command, source, flags, timeoutMs, promptSource }) => {
        const pg = window.playground;
        // Wait for the shell's prompt to settle (SHELL_PROMPT).
        const prompt = new RegExp(promptSource);
        for (let last = -1, i = 0; i < 400; i++) {
          const t = pg.serialText(Math.max(0, pg.serialOffset() - 64));
          if (prompt.test(t) && pg.serialOffset() === last) break;
          last = pg.serialOffset();
          await new Promise((r) => setTimeout(r, 150));
        }
        const from = pg.serialOffset();
        await pg.sendSerial(`${command}\n`);
        // Only on a whole line: at the end of the text, /^UP=[\d.]+$/m
        // also matches "UP=2" of a line whose "32.72" is still on its way
        // (seen once: "uptime continued (232.72 → 2)").
        const line = await pg.waitForSerial(new RegExp(`(?:${source})[^\\n]*\\n`, flags), timeoutMs, { from });
        return new RegExp(source, flags).exec(line)?.[0] ?? line;
      },
      { command, source: expect.source, flags: expect.flags, timeoutMs, promptSource: SHELL_PROMPT.source },
    ),
  );
}

/** Runs the open tour's current step; its result and status text. */
export async function runTourStep(page: PageLike): Promise<{ result: string; text: string }> {
  await page.click('#tour-run');
  return within(
    BOOT_TIMEOUT_MS + 30_000,
    'the tour step',
    page.evaluate(async (timeoutMs) => {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const status = document.querySelector('#tour-status');
        const result = status?.getAttribute('data-result') ?? '';
        if (result === 'ok' || result === 'failed' || Date.now() > end) return { result, text: status?.textContent ?? '' };
        await new Promise((r) => setTimeout(r, 100));
      }
    }, BOOT_TIMEOUT_MS),
  );
}

/** Clicks the open tour through `steps` steps as a visitor would: Run,
 * check that the step passed and that Next is offered, Next; the tour
 * must then say Done. Resolves with each step's status text. */
export async function clickThroughTour(page: PageLike, steps: number, log: (line: string) => void = e2eLog): Promise<string[]> {
  const texts: string[] = [];
  for (let i = 0; i < steps; i++) {
    const title = await textOf(page, '#tour-step-title');
    const r = await runTourStep(page);
    log(`step ${i + 1} ${title}: ${r.text}`);
    assert.equal(r.result, 'ok', `step ${i + 1} (${title}) failed: ${r.text}`);
    texts.push(r.text);
    assert.equal(await isDisabled(page, '#tour-next'), false, `step ${i + 1} (${title}) passed but Next is not offered`);
    await page.click('#tour-next');
  }
  assert.equal(await textOf(page, '#tour-progress'), 'Done');
  return texts;
}
