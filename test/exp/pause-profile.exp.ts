// Experiment (not a test): where does the live-update pause go inside QEMU?
// Boots a guest in Chromium, runs a few updates to warm up, then profiles
// every worker of the page (the host worker, the instance workers and
// QEMU's pthread workers, nested ones included) over each of the next
// updates, through the DevTools protocol, and writes one .cpuprofile per
// worker and update, with a JSON of the update's result beside them.
//   node --experimental-websocket --import tsx test/exp/pause-profile.exp.ts OUTDIR [guest] [updates]
// Then: node --import tsx bench/profile-report.ts --symbols wasm/out/qemu/v2/qemu-system-i386.js.symbols OUTDIR/1-new-*.cpuprofile
// (the instance workers started during an update run the target build).
// Sampling every 100 us on every worker slows the update 2-3x: read the
// shares, not the times (docs/live-update.md, "Inside the phases").
import { mkdirSync, writeFileSync } from 'node:fs';
import type { GuestName } from '../../worker/api';
import { OurPage } from '../../bench/ours';
import { freePort, launchBrowser, startServer } from '../e2e/harness';

const outDir = process.argv[2];
if (!outDir) throw new Error('usage: pause-profile.exp.ts OUTDIR [guest] [updates]');
const guest = (process.argv[3] ?? 'i386') as GuestName;
const updates = Number(process.argv[4] ?? 4);
const WARM_UPDATES = 4;
const INTERVAL_US = Number(process.env.INTERVAL_US ?? 100);

interface Message {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
  sessionId?: string;
}

/** The browser's DevTools endpoint, flat sessions. */
class Cdp {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(r: Record<string, unknown>): void; reject(e: Error): void }>();
  onEvent: (m: Message) => void = () => undefined;

  private constructor(private readonly ws: WebSocket) {
    ws.onmessage = (ev: MessageEvent) => {
      const m = JSON.parse(String(ev.data)) as Message;
      if (m.id !== undefined) {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.error) p?.reject(new Error(m.error.message));
        else p?.resolve(m.result ?? {});
      } else this.onEvent(m);
    };
  }

  static async connect(url: string): Promise<Cdp> {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
    return new Cdp(ws);
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  close(): void {
    this.ws.close();
  }
}

interface WorkerTarget {
  sessionId: string;
  url: string;
  index: number;
  profiling: boolean;
}

const port = await freePort();
const server = await startServer();
const browser = await launchBrowser([`--remote-debugging-port=${port}`]);
const version = (await (await fetch(`http://127.0.0.1:${port}/json/version`)).json()) as { webSocketDebuggerUrl: string };
const cdp = await Cdp.connect(version.webSocketDebuggerUrl);
const workers = new Map<string, WorkerTarget>();
let armed = false;
let attached = 0;

/** A worker that is ending may never answer: give up on it after 60 s.
 * (Starting and stopping the profiler on an isolate with the whole of
 * QEMU compiled takes seconds.) */
function within<T>(p: Promise<T>, what: string): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((res) => {
    timer = setTimeout(() => (console.log(`no answer: ${what}`), res(undefined)), 60_000);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

async function startProfiler(w: WorkerTarget): Promise<void> {
  w.profiling = (await within(cdp.send('Profiler.start', {}, w.sessionId), `start #${w.index} ${w.url}`)) !== undefined;
}

cdp.onEvent = (m) => {
  if (m.method === 'Target.attachedToTarget') {
    const p = m.params as { sessionId: string; targetInfo: { type: string; url: string } };
    const { sessionId, targetInfo } = p;
    if (process.env.VERBOSE) console.log(`attached ${targetInfo.type} ${targetInfo.url}`);
    void (async () => {
      await cdp.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: true, flatten: true }, sessionId);
      if (targetInfo.type === 'worker') {
        const w: WorkerTarget = { sessionId, url: targetInfo.url, index: attached++, profiling: false };
        workers.set(sessionId, w);
        await cdp.send('Profiler.enable', {}, sessionId);
        await cdp.send('Profiler.setSamplingInterval', { interval: INTERVAL_US }, sessionId);
        if (armed) await startProfiler(w);
      }
      await cdp.send('Runtime.runIfWaitingForDebugger', {}, sessionId).catch(() => undefined);
    })().catch((e: unknown) => console.error(`attach ${targetInfo.url}: ${String(e)}`));
  } else if (m.method === 'Target.detachedFromTarget') {
    const p = m.params as { sessionId: string };
    const w = workers.get(p.sessionId);
    // A worker that ends while profiled loses its profile: say so.
    if (w?.profiling) console.log(`worker #${w.index} ended while profiled (${w.url})`);
    workers.delete(p.sessionId);
  }
};
await cdp.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: true });

mkdirSync(outDir, { recursive: true });
try {
  const page = await OurPage.open(browser, server.url, () => undefined);
  console.log('booting');
  await page.boot({ guest, ramMiB: 128, build: 'v1' });
  console.log('booted');
  await page.waitForPrompt();
  const targetOf = (i: number): 'v1' | 'v2' => (i % 2 ? 'v1' : 'v2');
  for (let i = 0; i < WARM_UPDATES; i++) {
    const r = await page.liveUpdate(targetOf(i), 'cpr-exec');
    console.log(`warm #${i + 1} ${r.from} -> ${r.to}: ${r.pauseMs} ms ${JSON.stringify(r.phases)}`);
  }
  for (let i = 0; i < updates; i++) {
    armed = true;
    await Promise.all([...workers.values()].map(startProfiler));
    const first = attached;
    const r = await page.liveUpdate(targetOf(i), 'cpr-exec');
    armed = false;
    console.log(`profiled #${i + 1} ${r.from} -> ${r.to}: ${r.pauseMs} ms ${JSON.stringify(r.phases)}`);
    for (const w of [...workers.values()].filter((x) => x.profiling)) {
      w.profiling = false;
      const stopped = (await within(cdp.send('Profiler.stop', {}, w.sessionId), `stop #${w.index} ${w.url}`)) as { profile: unknown } | undefined;
      if (!stopped) continue;
      const { profile } = stopped;
      const born = w.index >= first ? 'new' : 'old';
      const name = `${i + 1}-${born}-w${w.index}-${w.url.split('/').pop()?.replace(/[^\w.-]/g, '_') ?? 'worker'}.cpuprofile`;
      writeFileSync(`${outDir}/${name}`, JSON.stringify(profile));
    }
    writeFileSync(`${outDir}/${i + 1}-result.json`, JSON.stringify(r, null, 2));
    await new Promise((res) => setTimeout(res, 1000));
  }
} finally {
  cdp.close();
  await browser.close();
  await server.close();
}
