// Runs in Firefox, on the driver page of the Firefox tests
// (firefox-driver.html; firefox.ts says why there is no WebDriver). It
// shows the playground in a same-origin iframe and runs what the test
// sends: it polls the test's server for commands and posts back each
// result, and the playground's log and state changes as log lines.
// For the window.playground declaration.
import type {} from '../../web/playground';

/** What the test (firefox.ts) asks for. */
export type DriverOp =
  | { op: 'goto'; url: string }
  | { op: 'click'; selector: string }
  /** `source`: a function's text, called with `arg` in the playground's window. */
  | { op: 'evaluate'; source: string; arg: unknown };

export type DriverCommand = DriverOp & { id: number };

/** What the page posts to the test. */
export type DriverReport =
  | { kind: 'hello' }
  | { kind: 'log'; line: string }
  | { kind: 'done'; id: number; value?: unknown; error?: string };

const frame = document.querySelector<HTMLIFrameElement>('#pg')!;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An error's words; it may come from the iframe's realm, where
 * `instanceof Error` says no. */
function message(e: unknown): string {
  if (typeof e !== 'object' || e === null || !('message' in e)) return String(e);
  const code = 'code' in e && typeof e.code === 'string' ? `${e.code}: ` : '';
  return `${code}${String(e.message)}`;
}

async function goto(url: string, post: (r: DriverReport) => Promise<void>): Promise<void> {
  const loaded = new Promise((r) => frame.addEventListener('load', r, { once: true }));
  frame.src = url;
  await loaded;
  if (url === 'about:blank') return;
  const win = frame.contentWindow!;
  for (let i = 0; typeof win.playground !== 'object'; i++) {
    if (i > 600) throw new Error(`${url} has no window.playground after 60 s`);
    await sleep(100);
  }
  const pg = win.playground;
  pg.onLog((line) => void post({ kind: 'log', line: `[qemu] ${line}` }));
  let state = '';
  pg.onStatus((s) => {
    if (s.state !== state) void post({ kind: 'log', line: `[status] ${(state = s.state)}` });
  });
}

async function execute(c: DriverCommand, post: (r: DriverReport) => Promise<void>): Promise<unknown> {
  switch (c.op) {
    case 'goto':
      return goto(c.url, post);
    case 'click': {
      // A button's click() runs its listeners as a click on it does, and
      // does nothing on a disabled one, as a click does.
      const el = frame.contentDocument?.querySelector(c.selector);
      if (!el || !('click' in el)) throw new Error(`the page has no ${c.selector} to click`);
      (el as HTMLElement).click();
      return undefined;
    }
    case 'evaluate': {
      // Evaluated by the iframe's own eval: the function's `window`,
      // `document` and `self` are the playground's.
      const win = frame.contentWindow as (Window & { eval(source: string): unknown }) | null;
      if (!win) throw new Error('no page is loaded');
      const fn = win.eval(`(${c.source})`) as (arg: unknown) => unknown;
      return await fn(c.arg);
    }
  }
}

async function drive(server: string): Promise<void> {
  const post = async (r: DriverReport): Promise<void> => {
    // text/plain: a request without a CORS preflight.
    await fetch(`${server}report`, { method: 'POST', body: JSON.stringify(r) }).then(() => undefined, () => undefined);
  };
  await post({ kind: 'hello' });
  for (let failures = 0; failures < 20; ) {
    let res: Response;
    try {
      res = await fetch(`${server}next`);
      failures = 0;
    } catch {
      // The test's server is gone (it closes with Firefox) or restarting.
      failures++;
      await sleep(250);
      continue;
    }
    if (res.status !== 200) continue;
    const c = (await res.json()) as DriverCommand;
    // Not awaited: a long evaluation (a boot) must not hold up the next poll.
    void execute(c, post).then(
      (value) => post({ kind: 'done', id: c.id, value }),
      (e: unknown) => post({ kind: 'done', id: c.id, error: message(e) }),
    );
  }
}

const server = new URLSearchParams(location.search).get('driver');
if (server) void drive(server);
