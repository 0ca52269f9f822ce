// Runs in Node: Debian's Firefox ESR for the end-to-end tests
// (firefox.e2e.ts), headless, driven without a remote protocol.
//
// Why no WebDriver: with a WebDriver BiDi session open (puppeteer-core's,
// say), Firefox 153 ESR now and then never returns from `new Worker()`
// called inside a worker, and QEMU's workers are all nested: a boot or a
// live update then hangs for good (seen in 1 of 3-10 boots and updates).
// The Remote Agent registers a worker-debugger listener for every
// session, and a nested worker's constructor waits for that listener on
// the main thread. The same page in the same Firefox with no session
// booted 20 times and live-updated 80 times without a hang.
//
// So Firefox opens a driver page (firefox-driver.html, served by the dev
// server, so it shares the playground's origin and isolation) that shows
// the playground in a same-origin iframe and runs what the test sends it
// over HTTP, on a server of ours: click a selector, evaluate a function in
// the playground's window, load another address. As root, headless, it
// needs no flag but --headless and a profile of its own (--no-remote keeps
// it from handing the address to another Firefox); no MOZ_ variable.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeAfterTest, REPO, within, type PageLike, type Server } from './harness';
import type { DriverCommand, DriverOp, DriverReport } from './firefox-driver';

export const FIREFOX = process.env.FIREFOX ?? '/usr/bin/firefox-esr';

/** Prefs of the fresh profile: no first-run pages, no update or telemetry
 * traffic (the machine reaches no network anyway). */
const PREFS: Record<string, boolean | string> = {
  'browser.shell.checkDefaultBrowser': false,
  'browser.startup.homepage_override.mstone': 'ignore',
  'browser.aboutwelcome.enabled': false,
  'startup.homepage_welcome_url': '',
  'startup.homepage_welcome_url.additional': '',
  'datareporting.policy.dataSubmissionEnabled': false,
  'toolkit.telemetry.reportingpolicy.firstRun': false,
  'app.update.disabledForTesting': true,
  'app.normandy.enabled': false,
  'extensions.update.enabled': false,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
};

/** How long the driver page may take to come up, and a page to load. */
const START_MS = 60_000;
/** One command that is not a boot or an update (click, read). */
const COMMAND_MS = 60_000;

/** The playground in Firefox, as the shared helpers take a page. */
export interface FirefoxPage extends PageLike {
  /** Loads `url` (the playground, with a query) in place of the page. */
  goto(url: string): Promise<void>;
}

export interface Firefox {
  /** The playground at `url`, freshly loaded; it is unloaded after the test. */
  open(url: string): Promise<FirefoxPage>;
  close(): Promise<void>;
}

/** Debian's Firefox ESR, headless, showing the driver page of `server`.
 * Fails, saying how to install it, when it is missing: CI installs it
 * (.ci/run), so a missing browser is not a reason to skip. */
export async function launchFirefox(server: Server, log: (line: string) => void = () => undefined): Promise<Firefox> {
  if (!existsSync(FIREFOX)) {
    throw new Error(`${FIREFOX} is missing: apt-get install -y firefox-esr (as .ci/run does), or set FIREFOX to a Firefox binary`);
  }
  const driver = await startDriverServer(log);
  const profile = mkdtempSync(join(tmpdir(), 'cpr-firefox-'));
  writeFileSync(join(profile, 'user.js'), Object.entries(PREFS).map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});\n`).join(''));
  const page = `${server.url}@fs${REPO}test/e2e/firefox-driver.html?driver=${encodeURIComponent(driver.url)}`;
  // Its own process group: Firefox starts its content processes as
  // children, and close() ends them all with it.
  const child = spawn(FIREFOX, ['--headless', '--no-remote', '--profile', profile, page], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (b: Buffer): void => void (output = (output + b.toString()).slice(-4000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const close = async (): Promise<void> => {
    driver.close();
    await endProcessGroup(child);
    rmSync(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  };
  try {
    await within(START_MS, `${FIREFOX} opening the driver page`, Promise.race([driver.ready, exited(child).then(() => Promise.reject(new Error(`${FIREFOX} exited`)))]));
  } catch (e) {
    await close();
    throw new Error(`${e instanceof Error ? e.message : String(e)}; Firefox said: ${output.trim() || 'nothing'}`);
  }
  return {
    open: async (url) => {
      const p: FirefoxPage = {
        goto: async (to) => void (await driver.call({ op: 'goto', url: to }, START_MS)),
        click: async (selector) => void (await driver.call({ op: 'click', selector }, COMMAND_MS)),
        // The caller's own waits bound the time (within(), timeouts in the
        // page), as with the other drivers. The value came as JSON: plain
        // data, as PageLike's contract has it.
        evaluate: async <R, A>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<R> => (await driver.call({ op: 'evaluate', source: fn.toString(), arg }, null)) as R,
      };
      await p.goto(url);
      // Unloading the page ends its QEMU: guests left running took the
      // CPU from the tests after them.
      closeAfterTest({ close: () => p.goto('about:blank') });
      return p;
    },
    close,
  };
}

interface DriverServer {
  url: string;
  /** The driver page said hello. */
  ready: Promise<void>;
  /** Sends a command; its result, or its error as a rejection. `ms`: fail
   * after that long (null: the caller bounds the time). */
  call(command: DriverOp, ms: number | null): Promise<unknown>;
  close(): void;
}

/** The HTTP server the driver page polls for commands and posts results
 * and log lines to. */
async function startDriverServer(log: (line: string) => void): Promise<DriverServer> {
  const queue: DriverCommand[] = [];
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let poller: ServerResponse | null = null;
  let nextId = 1;
  let hello!: () => void;
  const ready = new Promise<void>((r) => (hello = r));
  const send = (): void => {
    const command = queue[0];
    if (!poller || !command) return;
    queue.shift();
    reply(poller, 200, JSON.stringify(command));
    poller = null;
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'GET' && req.url === '/next') {
      // Long poll: answered when a command comes, or empty after 20 s.
      if (poller) reply(poller, 204, '');
      poller = res;
      const timer = setTimeout(() => {
        if (poller === res) {
          reply(res, 204, '');
          poller = null;
        }
      }, 20_000);
      res.on('close', () => clearTimeout(timer));
      send();
      return;
    }
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      reply(res, 204, '');
      const report = JSON.parse(body || '{}') as DriverReport;
      if (report.kind === 'hello') hello();
      else if (report.kind === 'log') log(report.line);
      else if (report.kind === 'done') {
        const p = pending.get(report.id);
        pending.delete(report.id);
        if (report.error !== undefined) p?.reject(new Error(report.error));
        else p?.resolve(report.value);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/`,
    ready,
    call: (command, ms) => {
      const id = nextId++;
      const result = new Promise<unknown>((resolve, reject) => pending.set(id, { resolve, reject }));
      queue.push({ ...command, id });
      send();
      const what = command.op === 'evaluate' ? 'a function in the page' : command.op === 'click' ? `a click on ${command.selector}` : `loading ${command.url}`;
      return ms === null ? result : within(ms, what, result);
    },
    close: () => {
      poller?.destroy();
      server.close();
      server.closeAllConnections();
      for (const p of pending.values()) p.reject(new Error('Firefox was closed'));
    },
  };
}

/** CORS: the driver page is the dev server's origin, this server another. */
function reply(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Access-Control-Allow-Origin': '*', 'Content-Type': 'application/json' }).end(body);
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}

/** SIGTERM to Firefox's process group (ours: it was started detached),
 * SIGKILL if it is still there after 10 s. */
async function endProcessGroup(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const signal = (s: NodeJS.Signals): void => {
    try {
      process.kill(-child.pid!, s);
    } catch {
      /* already gone */
    }
  };
  signal('SIGTERM');
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([exited(child), new Promise((r) => (timer = setTimeout(r, 10_000)))]);
  clearTimeout(timer);
  signal('SIGKILL');
}
