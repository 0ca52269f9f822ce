// Runs in Node: `npm run bench` (issue 5). Measures, in one run on this
// machine and in headless Chromium: boot to a shell (cold and warm), what
// the page downloads and the tab's memory, guest CPU speed (our wasm build,
// v86, native QEMU with TCG and with TCI), and the pause of a live update
// against the copy route and v86's save+restore, over guest RAM sizes;
// snapshot files, their sizes and the time to save and restore them
// (bench/snapshots.ts).
// `npm run bench -- --soak` runs the 100-update soak instead.
// Writes docs/bench/results.json, README.md and SVG plots (bench/report.ts).
// Nothing here asserts: targets are reported, not enforced.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { GUESTS, JIT_GUESTS, RAM_MAX_MIB, type GuestName } from '../worker/api';
import { ARTIFACTS } from '../test/artifacts';
import { REPO, launchBrowser, launchProfile, startServer, startStaticServer, type Server } from '../test/e2e/harness';
import { v86Assets, type V86Assets } from './assets';
import { OthersCpu, load, machine, versions } from './env';
import { errorText } from './errors';
import { browserPss, collectGarbage, pageMemory } from './memory';
import { nativeBuilds, nativeRun } from './native';
import { OurPage, type LiveUpdateRoute } from './ours';
import { CPU_WORKLOADS, GUEST_CMDS, canaryOk, filledMiB, firstAnswer, guestRealSeconds, sha256Of, workloadAnswerOk, type CpuWorkload, type ShellResult } from './page-shell';
import { writeReport } from './report';
import type { BootRow, BootSection, Served, CpuRow, CpuSection, DownloadRow, PauseRow, PauseSection, Results, RowStatus, RunInfo, SoakSection } from './results';
import { summarize } from './stats';
import { WARM_WORK, jitUpdateSection } from './jit-update';
import { DEFAULT_GUEST } from './report-snapshot';
import { idleSizes, snapshotSection } from './snapshots';
import { V86Page, v86FailureNote } from './v86';

const FAST_CPU_RUNS = 3;
const OUT_DIR = `${REPO}docs/bench/`;
const RESULTS = `${OUT_DIR}results.json`;

// --- options ---------------------------------------------------------------

const SECTIONS = ['boot', 'cpu', 'pause', 'snapshot', 'jit-update'] as const;
type Section = (typeof SECTIONS)[number] | 'soak';
interface Options {
  sections: Section[];
  runs: number;
  sizes: number[];
  /** MiB each guest writes into its tmpfs before the pause runs; 'most':
   * all but FILL_LEAVE_MIB of what it has available; 0: none. */
  fill: number | 'most';
  /** Runs of the CPU workload in our wasm build (minutes each under TCI);
   * v86 and native QEMU run it FAST_CPU_RUNS times. */
  cpuRuns: number;
  /** Save+restore cycles per filled guest in the snapshot section (a
   * cycle of a filled 1 GiB guest takes about a minute). */
  snapshotRuns: number;
  soakUpdates: number;
  /** Which VMs to run; rows of the others are kept from the last results. */
  vms: VmGroup[];
  reportOnly: boolean;
  verbose: boolean;
}
type VmGroup = 'ours' | 'v86' | 'native';
const VM_GROUPS: readonly VmGroup[] = ['ours', 'v86', 'native'];
/** The group a row's vm belongs to. */
const groupOf = (vm: string): VmGroup => (vm.startsWith('ours') ? 'ours' : vm.startsWith('native') ? 'native' : 'v86');

function parseArgs(argv: string[]): Options {
  const o: Options = {
    sections: [...SECTIONS],
    runs: 5,
    sizes: [...new Set([64, 256, 512, 1024, RAM_MAX_MIB])],
    fill: 'most',
    cpuRuns: 1,
    snapshotRuns: 3,
    soakUpdates: 100,
    vms: [...VM_GROUPS],
    reportOnly: false,
    verbose: false,
  };
  for (const a of argv) {
    const [k, v] = a.split('=', 2) as [string, string | undefined];
    const num = (): number => {
      const n = Number(v);
      if (!Number.isInteger(n) || n <= 0) throw new Error(`${k} needs a positive whole number, e.g. ${k}=5`);
      return n;
    };
    if (k === '--soak') o.sections = ['soak'];
    else if (k === '--only') {
      const list = (v ?? '').split(',').filter(Boolean) as Section[];
      const bad = list.filter((s) => ![...SECTIONS, 'soak'].includes(s));
      if (bad.length || !list.length) throw new Error(`--only takes a comma list of ${[...SECTIONS, 'soak'].join(', ')}`);
      o.sections = list;
    } else if (k === '--runs') o.runs = num();
    else if (k === '--cpu-runs') o.cpuRuns = num();
    else if (k === '--snapshot-runs') o.snapshotRuns = num();
    else if (k === '--updates') o.soakUpdates = num();
    else if (k === '--fill') o.fill = v === 'most' ? 'most' : v === '0' ? 0 : num();
    else if (k === '--sizes') o.sizes = (v ?? '').split(',').map(Number);
    else if (k === '--vms') {
      o.vms = (v ?? '').split(',').filter(Boolean) as VmGroup[];
      if (!o.vms.length || o.vms.some((g) => !VM_GROUPS.includes(g))) throw new Error(`--vms takes a comma list of ${VM_GROUPS.join(', ')}`);
    } else if (k === '--report') o.reportOnly = true;
    else if (k === '--verbose') o.verbose = true;
    else throw new Error(`unknown argument ${a}; use --only=boot,cpu,pause,snapshot,jit-update | --soak | --runs=N | --cpu-runs=N | --snapshot-runs=N | --sizes=64,256 | --updates=N | --fill=most|MiB|0 | --vms=ours,v86,native | --report | --verbose`);
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const started = Date.now();
const say = (line: string): void => console.log(`bench [${new Date().toISOString().slice(11, 19)} +${Math.round((Date.now() - started) / 1000)}s] ${line}`);
const pageLog = (line: string): void => {
  if (opts.verbose) console.log(`    ${line}`);
};

interface SectionStart {
  t0: number;
  loadStart: number[];
  others: OthersCpu;
}

const sectionStart = (): SectionStart => ({ t0: Date.now(), loadStart: load().loadavg, others: new OthersCpu() });

async function runInfo(browser: Pick<Browser, 'version'> | null, start: SectionStart): Promise<RunInfo> {
  const l = load();
  const m = machine();
  const others = start.others.stop(m.cores);
  return {
    date: new Date().toISOString(),
    machine: m,
    versions: await versions(browser),
    loadStart: start.loadStart,
    loadEnd: l.loadavg,
    busiest: l.busiest,
    seconds: Math.round((Date.now() - start.t0) / 1000),
    othersCpuShare: Math.round(others * 1000) / 1000,
  };
}

// --- boot: cold and warm, downloads, memory ---------------------------------

const gzipSizes = new Map<string, number>();
function gzipSize(file: string): number {
  let n = gzipSizes.get(file);
  if (n === undefined) gzipSizes.set(file, (n = gzipSync(readFileSync(file), { level: 9 }).length));
  return n;
}

/** Counts what a context downloads: bytes as served, and what the same
 * artifacts weigh gzip -9 (as wasm/dist stores them). */
function countDownloads(context: BrowserContext, vm: 'ours' | 'v86', guest: GuestName): () => DownloadRow {
  const seen: { url: string; bytes: number; gzip: number | null }[] = [];
  context.on('requestfinished', (request) => {
    void (async () => {
      const sizes = await request.sizes().catch(() => null);
      if (!sizes) return;
      const url = request.url();
      const path = new URL(url).pathname;
      let gzip: number | null = null;
      const art = /\/artifacts\/(.*)$/.exec(path);
      if (art && existsSync(`${ARTIFACTS}/${art[1]}`)) gzip = gzipSize(`${ARTIFACTS}/${art[1]}`);
      else if (!art) {
        const body = await (await request.response())?.body().catch(() => null);
        if (body) gzip = gzipSync(body, { level: 9 }).length;
      }
      seen.push({ url: path, bytes: sizes.responseBodySize + sizes.responseHeadersSize, gzip });
    })();
  });
  return () => ({
    vm,
    guest,
    servedBytes: seen.reduce((s, r) => s + r.bytes, 0),
    gzipBytes: seen.every((r) => r.gzip !== null) ? seen.reduce((s, r) => s + (r.gzip ?? 0), 0) : null,
    requests: seen.length,
    largest: [...seen].sort((a, b) => b.bytes - a.bytes).slice(0, 5).map((r) => ({ url: r.url, bytes: r.bytes })),
  });
}

/** Our playground, cold (a new browser with a new profile: no HTTP
 * cache, no code cache) then warm (the same profile loads the page again),
 * from the dev server or the static build (`served`). */
async function ourBoot(server: Server, guest: GuestName, from: 'snapshot' | 'scratch', served: Served): Promise<{ rows: BootRow[]; download: DownloadRow | null; chromiumVersion: string | null }> {
  const rows: BootRow[] = [];
  let download: DownloadRow | null = null;
  let chromiumVersion: string | null = null;
  const profile = await launchProfile();
  try {
    const context = profile.context;
    const downloaded = countDownloads(context, 'ours', guest);
    const page = await context.newPage();
    page.on('console', (m) => pageLog(`[page ${m.type()}] ${m.text()}`));
    for (const mode of ['cold', 'warm'] as const) {
      say(`boot: ours ${guest} ${mode} from ${from} (${served === 'dev' ? 'dev server' : 'static build'})`);
      try {
        const start = Date.now();
        const ours = await OurPage.openIn(page, server.url);
        chromiumVersion ??= await browserVersion(page);
        const bootStart = Date.now();
        await ours.boot({ guest, ramMiB: 128, from });
        await ours.waitForPrompt();
        const now = Date.now();
        await firstAnswer(page, 'playground');
        const answerMs = Date.now() - start;
        const mem = await pageMemory(page);
        rows.push({ vm: 'ours', guest, mode, from, served, status: 'ok', promptMs: now - start, guestMs: now - bootStart, answerMs, pssBytes: mem.pssBytes, uaBytes: mem.uaBytes, uaError: mem.uaError });
        say(`  prompt after ${now - start} ms (guest ${now - bootStart} ms), answer after ${answerMs} ms, browser PSS ${(mem.pssBytes / 2 ** 20).toFixed(0)} MiB`);
        if (mode === 'cold' && from === 'snapshot' && served === 'dev') {
          await new Promise((r) => setTimeout(r, 500));
          download = downloaded();
        }
        if (mode === 'cold') await dwell();
        await ours.stop();
      } catch (e) {
        rows.push({ vm: 'ours', guest, mode, from, served, status: 'failed', note: errorText(e), promptMs: null, guestMs: null });
        say(`  failed: ${errorText(e)}`);
      }
    }
  } finally {
    await profile.close();
  }
  return { rows, download, chromiumVersion };
}

async function bootSection(server: Server, assets: V86Assets | string): Promise<BootSection> {
  const start = sectionStart();
  const rows: BootRow[] = [];
  const downloads: DownloadRow[] = [];
  let chromiumVersion: string | null = null;
  const ourRuns = opts.vms.includes('ours') ? GUESTS.flatMap((guest) => (['snapshot', 'scratch'] as const).map((from) => ({ guest, from }))) : [];
  if (ourRuns.length) await warmDevServer(server);
  for (const { guest, from } of ourRuns) {
    const r = await ourBoot(server, guest, from, 'dev');
    rows.push(...r.rows);
    if (r.download) downloads.push(r.download);
    chromiumVersion ??= r.chromiumVersion;
  }
  // The same Start, from the static build as a deployment serves it.
  if (ourRuns.length) {
    say('boot: building the static site (npm run build) for vite preview');
    const site = await startStaticServer();
    try {
      rows.push(...(await ourBoot(site, DEFAULT_GUEST, 'snapshot', 'static')).rows);
    } finally {
      await site.close();
    }
  }
  if (!opts.vms.includes('v86')) {
    // kept from the last results
  } else if (typeof assets === 'string') {
    rows.push({ vm: 'v86', guest: 'i386', mode: 'cold', status: 'not run', note: assets, promptMs: null, guestMs: null });
  } else {
    const booted = await v86Boot(assets);
    rows.push(...booted.rows);
    if (booted.download) downloads.push(booted.download);
    if (booted.state) rows.push(...(await v86Restore(assets, booted.state)));
    else rows.push({ vm: 'v86', guest: 'i386', mode: 'cold', from: 'snapshot', status: 'not run', note: 'v86 saved no state: its boot failed', promptMs: null, guestMs: null });
  }
  const version = chromiumVersion;
  return { run: await runInfo(version ? { version: () => version } : null, start), rows, downloads };
}

/** The note of every v86 boot row. */
const V86_BOOT_NOTE = 'v86 files from a loopback server of the benchmark (no network); 128 MiB';

/** v86 boots the i386 guest, cold (a new browser) then warm (the page
 * loaded again in the same profile), and saves its state after the cold
 * boot, at the prompt, for v86Restore(). */
async function v86Boot(assets: V86Assets): Promise<{ rows: BootRow[]; download: DownloadRow | null; state: Buffer | null }> {
  const rows: BootRow[] = [];
  let download: DownloadRow | null = null;
  let state: Buffer | null = null;
  const profile = await launchProfile();
  let v: V86Page | null = null;
  try {
    for (const mode of ['cold', 'warm'] as const) {
      say(`boot: v86 i386 ${mode}`);
      try {
        if (v) await v.load();
        else v = await V86Page.openIn(profile.context, assets, pageLog);
        const b = await v.boot(128);
        const answerMs = await firstAnswer(v.page, 'benchV86');
        const mem = await pageMemory(v.page);
        rows.push({ vm: 'v86', guest: 'i386', mode, from: 'scratch', status: 'ok', promptMs: b.sinceNavigationMs, guestMs: b.promptMs, answerMs, pssBytes: mem.pssBytes, uaBytes: mem.uaBytes, uaError: mem.uaError, note: V86_BOOT_NOTE });
        say(`  prompt after ${Math.round(b.sinceNavigationMs)} ms (guest ${Math.round(b.promptMs)} ms), answer after ${Math.round(answerMs)} ms`);
        if (mode === 'cold') {
          download = v86Download(assets);
          const saved = await v.saveState();
          state = await v.saved();
          say(`  saved its state: ${(saved.bytes / 2 ** 20).toFixed(1)} MiB in ${Math.round(saved.saveMs)} ms`);
          await dwell();
        }
        await v.page.evaluate(() => window.benchV86.destroy());
      } catch (e) {
        rows.push({ vm: 'v86', guest: 'i386', mode, from: 'scratch', status: 'failed', note: errorText(e), promptMs: null, guestMs: null });
        say(`  failed: ${errorText(e)}`);
      }
    }
  } finally {
    await v?.close();
    await profile.close();
  }
  return { rows, download, state };
}

/** v86 starts from the state it saved (v86Boot), cold (a new browser) and
 * warm: page load → the restored shell's fresh prompt → its answer. */
async function v86Restore(assets: V86Assets, state: Buffer): Promise<BootRow[]> {
  const rows: BootRow[] = [];
  const profile = await launchProfile();
  let v: V86Page | null = null;
  try {
    for (const mode of ['cold', 'warm'] as const) {
      say(`boot: v86 i386 ${mode} from its saved state (${(state.length / 2 ** 20).toFixed(1)} MiB)`);
      try {
        if (v) await v.load();
        else v = await V86Page.openIn(profile.context, assets, pageLog, state);
        const r = await v.restore(128);
        const answerMs = await firstAnswer(v.page, 'benchV86');
        const mem = await pageMemory(v.page);
        rows.push({
          vm: 'v86', guest: 'i386', mode, from: 'snapshot', status: 'ok', promptMs: r.sinceNavigationMs, guestMs: r.promptMs, answerMs, fetchMs: r.fetchMs,
          pssBytes: mem.pssBytes, uaBytes: mem.uaBytes, uaError: mem.uaError,
          note: `${V86_BOOT_NOTE}; its state saved at the prompt after the cold boot above, ${(state.length / 2 ** 20).toFixed(1)} MiB uncompressed`,
        });
        say(`  prompt after ${Math.round(r.sinceNavigationMs)} ms (files fetched in ${Math.round(r.fetchMs)} ms), answer after ${Math.round(answerMs)} ms`);
        if (mode === 'cold') await dwell();
        await v.page.evaluate(() => window.benchV86.destroy());
      } catch (e) {
        rows.push({ vm: 'v86', guest: 'i386', mode, from: 'snapshot', status: 'failed', note: errorText(e), promptMs: null, guestMs: null });
        say(`  failed: ${errorText(e)}`);
      }
    }
  } finally {
    await v?.close();
    await profile.close();
  }
  return rows;
}

/**
 * Vite's dev server transforms each module of the page and its workers on
 * its first request after it started: the first cold load in a run paid
 * for that, ~2-3 s, which no later load (and no visitor of a server that
 * is up) pays. One Start in a throwaway profile does it before any row.
 */
async function warmDevServer(server: Server): Promise<void> {
  say('boot: warming the dev server up (one Start, not measured)');
  const profile = await launchProfile();
  try {
    const page = await profile.context.newPage();
    const ours = await OurPage.openIn(page, server.url);
    await ours.boot({ guest: 'arm', ramMiB: 128, from: 'snapshot' });
    await ours.waitForPrompt();
    await ours.stop();
  } catch (e) {
    say(`  the warm-up failed (${errorText(e)}); the first row pays the dev server's first transforms`);
  } finally {
    await profile.close();
  }
}

/** After a cold load, before the warm one: the page stays on the shell
 * this long, as a person reads it. Meanwhile the browser writes the code
 * cache of what ran (it waits for the optimising compiler); a reload at
 * once would find none. Every VM gets the same. */
const DWELL_MS = 10_000;
function dwell(): Promise<void> {
  return new Promise((r) => setTimeout(r, DWELL_MS));
}

/** The browser's version, from a page of it. */
async function browserVersion(page: Page): Promise<string> {
  return page.evaluate(() => /(?:Chrome|Chromium)\/(\S+)/.exec(navigator.userAgent)?.[1] ?? navigator.userAgent);
}

/** What v86's boot downloads: its files as served, and gzip -9. */
function v86Download(assets: V86Assets): DownloadRow {
  const files = Object.values(assets.files).map((f) => readFileSync(f));
  const lib = [readFileSync(`${REPO}node_modules/v86/build/libv86.mjs`), readFileSync(`${REPO}node_modules/v86/build/v86.wasm`)];
  return {
    vm: 'v86',
    guest: 'i386',
    servedBytes: [...files, ...lib].reduce((s, b) => s + b.length, 0),
    gzipBytes: [...files, ...lib].reduce((s, b) => s + gzipSync(b, { level: 9 }).length, 0),
    requests: files.length + lib.length,
    largest: [],
  };
}

// --- cpu: one fixed workload everywhere ---------------------------------------

async function cpuSection(browser: Browser, server: Server, assets: V86Assets | string): Promise<CpuSection> {
  const start = sectionStart();
  const rows: CpuRow[] = [];
  const workloads = Object.keys(CPU_WORKLOADS) as CpuWorkload[];
  const row = (vm: CpuRow['vm'], guest: GuestName, workload: CpuWorkload, wallMs: number[], guestS: (number | null)[], note?: string): CpuRow =>
    ({ vm, guest, workload, status: 'ok', wallMs, guestS, summary: summarize(wallMs), ...(note ? { note } : {}) });
  const failed = (vm: CpuRow['vm'], guest: GuestName, note: string, status: RowStatus = 'failed'): CpuRow[] =>
    workloads.map((workload) => ({ vm, guest, workload, status, note, wallMs: [], guestS: [], summary: null }));
  /** Runs every workload `runs` times in a booted guest; a wrong answer fails the VM's row. */
  const measure = async (vm: CpuRow['vm'], guest: GuestName, runs: number, shell: (cmd: string) => Promise<ShellResult>): Promise<CpuRow[]> => {
    const out: CpuRow[] = [];
    for (const workload of workloads) {
      const wall: number[] = [];
      const gs: (number | null)[] = [];
      for (let i = 0; i < runs; i++) {
        const r = await shell(CPU_WORKLOADS[workload]);
        if (!workloadAnswerOk(workload, r.text)) throw new Error(`${workload}: wrong answer: ${r.text.slice(-200)}`);
        wall.push(r.ms);
        gs.push(guestRealSeconds(r.text));
        say(`  ${workload}: ${Math.round(r.ms)} ms (guest says ${guestRealSeconds(r.text)} s)`);
      }
      out.push(row(vm, guest, workload, wall, gs));
    }
    return out;
  };
  // Our build twice per guest, one engine at a time in a fresh page: the
  // JIT's counts and the tab's memory are read after all its workloads.
  const ourVms = [
    ['ours-wasm', 'interpreter'],
    ['ours-jit', 'jit'],
  ] as const;
  for (const guest of opts.vms.includes('ours') ? GUESTS : []) {
    for (const [vm, accel] of ourVms) {
      // The 64-bit guests' QEMU is a wasm64 build; the JIT emits code for
      // 32-bit hosts only (the report says so under the table).
      if (accel === 'jit' && !JIT_GUESTS.includes(guest)) continue;
      say(`cpu: ${vm} ${guest}`);
      let ours: OurPage | null = null;
      try {
        ours = await OurPage.open(browser, server.url, pageLog);
        await ours.boot({ guest, ramMiB: 128, accel });
        await ours.waitForPrompt();
        const page = ours;
        const runs = vm === 'ours-jit' ? Math.max(opts.cpuRuns, FAST_CPU_RUNS) : opts.cpuRuns;
        const measured = await measure(vm, guest, runs, (cmd) => page.shell(cmd, 1_800_000));
        // The wasm64 builds have no TCI JIT at all: `info jit` has no line for it.
        const jit = JIT_GUESTS.includes(guest) ? await ours.jitCounts() : null;
        const mem = await pageMemory(ours.page);
        say(`  info jit: ${JSON.stringify(jit)}; browser PSS ${(mem.pssBytes / 2 ** 20).toFixed(0)} MiB`);
        rows.push(...measured.map((r) => ({ ...r, jit, pssBytes: mem.pssBytes, uaBytes: mem.uaBytes })));
      } catch (e) {
        rows.push(...failed(vm, guest, errorText(e)));
        say(`  failed: ${errorText(e)}`);
      } finally {
        await ours?.close();
      }
    }
  }
  if (!opts.vms.includes('v86')) {
    // kept from the last results
  } else if (typeof assets === 'string') {
    rows.push(...failed('v86', 'i386', assets, 'not run'));
  } else {
    say('cpu: v86 i386');
    let v: V86Page | null = null;
    try {
      v = await V86Page.open(browser, assets, pageLog);
      await v.boot(128);
      const page = v;
      const measured = await measure('v86', 'i386', FAST_CPU_RUNS, (cmd) => page.shell(cmd));
      const mem = await pageMemory(page.page);
      rows.push(...measured.map((r) => ({ ...r, pssBytes: mem.pssBytes, uaBytes: mem.uaBytes })));
    } catch (e) {
      rows.push(...failed('v86', 'i386', errorText(e)));
      say(`  failed: ${errorText(e)}`);
    } finally {
      await v?.close();
    }
  }
  const native = opts.vms.includes('native') ? nativeBuilds() : { builds: [], missing: [] };
  for (const m of native.missing) rows.push(...failed(m.startsWith('native-tcg') ? 'native-tcg' : 'native-tci', 'i386', m, 'not run'));
  for (const b of native.builds) {
    say(`cpu: ${b.name} i386 (${b.binary})`);
    try {
      const r = await nativeRun(b, FAST_CPU_RUNS);
      for (const w of workloads) {
        rows.push(row(b.name, 'i386', w, r.cpu[w].wallMs, r.cpu[w].guestS, `${b.binary}; prompt after ${r.promptMs} ms`));
        say(`  ${w}: ${r.cpu[w].wallMs.join(', ')} ms`);
      }
    } catch (e) {
      rows.push(...failed(b.name, 'i386', errorText(e)));
      say(`  failed: ${errorText(e)}`);
    }
  }
  return { run: await runInfo(browser, start), workload: CPU_WORKLOADS.sha256, workloads: { ...CPU_WORKLOADS }, rows };
}

// --- pause vs RAM --------------------------------------------------------------

/** Filling 842 MiB took 148-226 s in our i386 guest. */
const FILL_TIMEOUT_MS = 1_800_000;

/** Fills the guest's RAM (opts.fill) and returns the MiB it wrote; throws
 * when the fill failed, so no row is measured on a guest that is not full. */
async function fillGuest(run: (command: string) => Promise<ShellResult>): Promise<number> {
  const r = await run(GUEST_CMDS.fill(opts.fill));
  const mib = filledMiB(r.text);
  if (r.status !== 0 || mib === null) throw new Error(`filling guest RAM failed (status ${r.status}): ${r.text.slice(-300)}`);
  say(`  filled ${mib} MiB in ${Math.round(r.ms / 1000)} s`);
  return mib;
}

/** A failed update costs its whole timeout: keep it short, the pause itself
 * is far below it (the copy route of a filled 1 GiB guest: ~22 s). */
const UPDATE_TIMEOUT_MS = 60_000;

async function oursPause(browser: Browser, server: Server, ramMiB: number): Promise<PauseRow[]> {
  const empty = (vm: PauseRow['vm'], guest: GuestName, status: PauseRow['status'], note: string): PauseRow => ({ vm, guest, ramMiB, status, note, samples: [], summary: null });
  let ours: OurPage | null = null;
  let guest: GuestName = 'i386';
  // Filled as the routes finish, so a later failure keeps what was measured.
  const rows: PauseRow[] = [];
  try {
    ours = await OurPage.open(browser, server.url, pageLog);
    const pick = await ours.liveUpdateGuest(['i386', 'arm']);
    if ('missing' in pick) return [empty('ours-cpr-exec', guest, 'not run', pick.missing), empty('ours-copy', guest, 'not run', pick.missing)];
    guest = pick.guest;
    const page = ours;
    // The guest as booted: v1, optionally filled, with a canary file.
    let current = null as 'v1' | 'v2' | null;
    let canary = null as string | null;
    let updatesSinceBoot = 0;
    let filled: number | undefined;
    const bootGuest = async (): Promise<void> => {
      say(`pause: ours ${guest} ${ramMiB} MiB: boot`);
      await page.boot({ guest, ramMiB, build: 'v1' });
      await page.waitForPrompt();
      if (opts.fill) filled = await fillGuest((c) => page.shell(c, FILL_TIMEOUT_MS));
      canary = sha256Of((await page.shell(GUEST_CMDS.makeCanary)).text);
      current = 'v1';
      updatesSinceBoot = 0;
    };
    for (const route of ['cpr-exec', 'copy'] as LiveUpdateRoute[]) {
      const vm = route === 'copy' ? 'ours-copy' : 'ours-cpr-exec';
      const samples: number[] = [];
      const phases: Record<string, number>[] = [];
      const errors: string[] = [];
      let canaryOk = true;
      let first: number | undefined;
      while (samples.length < opts.runs && errors.length < 3) {
        if (current === null) await bootGuest();
        const target: 'v1' | 'v2' = current === 'v1' ? 'v2' : 'v1';
        try {
          const r = await page.liveUpdate(target, route, UPDATE_TIMEOUT_MS);
          current = target;
          updatesSinceBoot++;
          say(`  ${route} ${r.from} -> ${r.to}: pause ${Math.round(r.pauseMs)} ms${first === undefined ? ' (first: not in the samples)' : ''}`);
          if (first === undefined) first = r.pauseMs;
          else {
            samples.push(r.pauseMs);
            phases.push({ ...r.phases });
          }
        } catch (e) {
          const what = `${route} ${current}→${target} as update #${updatesSinceBoot + 1} after boot: ${errorText(e)}`;
          errors.push(what);
          say(`  failed: ${what}`);
          // A failed update should leave the guest running on the old build
          // (issue 4), but the page may still think an update is in progress
          // and refuse the next: boot afresh (a new worker) after a failure.
          current = null;
          say('  booting again');
        }
      }
      if (current !== null) canaryOk &&= await checkCanary(page, canary);
      const note = errors.length ? `${errors.length} update(s) failed (not in the samples): ${errors.join(' / ')}` : undefined;
      rows.push({ vm, guest, ramMiB, filledMiB: filled, firstMs: first, status: samples.length ? 'ok' : 'failed', ...(note ? { note } : {}), samples, summary: summarize(samples), phases, canaryOk });
    }
    return rows;
  } catch (e) {
    say(`  failed: ${errorText(e)}`);
    for (const vm of ['ours-cpr-exec', 'ours-copy'] as const) if (!rows.some((r) => r.vm === vm)) rows.push(empty(vm, guest, 'failed', errorText(e)));
    return rows;
  } finally {
    await ours?.close();
  }
}

/** False also when the guest does not answer. */
async function checkCanary(page: OurPage, sum: string | null): Promise<boolean> {
  return canaryOk(sum, async () => (await page.shell(GUEST_CMDS.checkCanary, 30_000)).text).catch(() => false);
}

async function v86Pause(browser: Browser, assets: V86Assets | string, ramMiB: number): Promise<PauseRow> {
  if (typeof assets === 'string') return { vm: 'v86', guest: 'i386', ramMiB, status: 'not run', note: assets, samples: [], summary: null };
  let v: V86Page | null = null;
  const saveMs: number[] = [];
  const restoreMs: number[] = [];
  const stateBytes: number[] = [];
  const samples: number[] = [];
  try {
    say(`pause: v86 i386 ${ramMiB} MiB: boot`);
    v = await V86Page.open(browser, assets, pageLog);
    await v.boot(ramMiB);
    const filled = opts.fill ? await fillGuest((c) => v!.shell(c, FILL_TIMEOUT_MS)) : undefined;
    const sum = sha256Of((await v.shell(GUEST_CMDS.makeCanary)).text);
    let first: number | undefined;
    for (let i = 0; i <= opts.runs; i++) {
      const r = await v.saveRestore();
      say(`  save ${Math.round(r.saveMs)} + restore ${Math.round(r.restoreMs)} ms, state ${(r.bytes / 2 ** 20).toFixed(1)} MiB${i === 0 ? ' (first: not in the samples)' : ''}`);
      if (i === 0) {
        first = r.saveMs + r.restoreMs;
        continue;
      }
      saveMs.push(r.saveMs);
      restoreMs.push(r.restoreMs);
      stateBytes.push(r.bytes);
      samples.push(r.saveMs + r.restoreMs);
    }
    const ok = await canaryOk(sum, async () => (await v!.shell(GUEST_CMDS.checkCanary)).text);
    return { vm: 'v86', guest: 'i386', ramMiB, filledMiB: filled, firstMs: first, status: 'ok', samples, summary: summarize(samples), saveMs, restoreMs, stateBytes, canaryOk: ok };
  } catch (e) {
    say(`  failed: ${errorText(e)}`);
    return { vm: 'v86', guest: 'i386', ramMiB, status: 'failed', note: v86FailureNote(e, ramMiB), samples, summary: summarize(samples), saveMs, restoreMs, stateBytes };
  } finally {
    await v?.close();
  }
}

async function pauseSection(browser: Browser, server: Server, assets: V86Assets | string): Promise<PauseSection> {
  const start = sectionStart();
  const rows: PauseRow[] = [];
  for (const ramMiB of opts.sizes) {
    if (opts.vms.includes('ours')) rows.push(...(await oursPause(browser, server, ramMiB)));
    if (opts.vms.includes('v86')) rows.push(await v86Pause(browser, assets, ramMiB));
  }
  return { run: await runInfo(browser, start), fill: opts.fill, runs: opts.runs, rows };
}

// --- soak ----------------------------------------------------------------------

/** Soak updates that pause longer are listed with their phases. */
const SOAK_SLOW_MS = 1000;
/** After the garbage collections, before reading PSS: freed pages go back
 * to the system a moment later. */
const GC_SETTLE_MS = 1000;

async function soakSection(browser: Browser, server: Server): Promise<SoakSection> {
  const start = sectionStart();
  const base: { guest: GuestName; ramMiB: number; updates: number } = { guest: 'i386', ramMiB: 128, updates: opts.soakUpdates };
  const pauses: number[] = [];
  const slow: NonNullable<SoakSection['slow']> = [];
  const pss: [number, number][] = [];
  let checksumFailures = 0;
  const updateFailures: string[] = [];
  let ours: OurPage | null = null;
  try {
    ours = await OurPage.open(browser, server.url, pageLog);
    const pick = await ours.liveUpdateGuest(['i386', 'arm']);
    if ('missing' in pick) return { run: await runInfo(browser, start), status: 'not run', note: pick.missing, ...base, pauses, summary: null, checksumFailures, pss };
    base.guest = pick.guest;
    await ours.boot({ guest: pick.guest, ramMiB: 128, build: 'v1' });
    await ours.waitForPrompt();
    const sum = sha256Of((await ours.shell(GUEST_CMDS.makeCanary)).text);
    const page = ours;
    const sample = async (update: number): Promise<void> => {
      await collectGarbage(page.page);
      await new Promise((r) => setTimeout(r, GC_SETTLE_MS));
      pss.push([update, browserPss().bytes]);
    };
    await sample(0);
    let current = 'v1' as 'v1' | 'v2';
    for (let i = 0; i < opts.soakUpdates; i++) {
      const target: 'v1' | 'v2' = current === 'v1' ? 'v2' : 'v1';
      try {
        const r = await ours.liveUpdate(target, 'cpr-exec');
        pauses.push(r.pauseMs);
        current = target;
        if (r.pauseMs > SOAK_SLOW_MS) {
          slow.push({ update: i + 1, pauseMs: r.pauseMs, phases: { ...r.phases } });
          say(`soak: update ${i + 1} paused ${r.pauseMs} ms: ${JSON.stringify(r.phases)}`);
        }
      } catch (e) {
        // A failed update falls back to the old build with the guest
        // running (issue 4); go on unless the guest is gone.
        updateFailures.push(`#${i + 1} ${current}→${target}: ${errorText(e)}`);
        say(`soak: update ${i + 1} failed: ${errorText(e)}`);
        const running = await ours.runningVersion().catch(() => null);
        if (running !== 'v1' && running !== 'v2') throw new Error(`the guest no longer runs after update #${i + 1} failed: ${errorText(e)}`);
        current = running;
        if (updateFailures.length >= 5) throw new Error(`5 updates failed; the last: ${errorText(e)}`);
      }
      if (!(await canaryOk(sum, async () => (await ours!.shell(GUEST_CMDS.checkCanary, 120_000)).text))) checksumFailures++;
      // After updates 1 and 2 as well: the first brings the second build
      // in (its code, its pthread workers), a one-time cost that the
      // report tells apart from growth over the updates.
      if (i < 2) await sample(i + 1);
      if ((i + 1) % 10 === 0) {
        await sample(i + 1);
        say(`soak: ${i + 1} updates, last pause ${Math.round(pauses.at(-1) ?? NaN)} ms, PSS ${(pss.at(-1)![1] / 2 ** 20).toFixed(0)} MiB, checksum failures ${checksumFailures}, update failures ${updateFailures.length}`);
      }
    }
    return { run: await runInfo(browser, start), status: 'ok', ...base, pauses, summary: summarize(pauses), checksumFailures, updateFailures, slow, pss, gcBeforeSamples: true };
  } catch (e) {
    say(`soak failed: ${errorText(e)}`);
    return { run: await runInfo(browser, start), status: 'failed', note: `after ${pauses.length} updates: ${errorText(e)}`, ...base, pauses, summary: summarize(pauses), checksumFailures, updateFailures, slow, pss, gcBeforeSamples: true };
  } finally {
    await ours?.close();
  }
}

// --- main ----------------------------------------------------------------------

function readResults(): Results {
  if (!existsSync(RESULTS)) return { format: 1 };
  return JSON.parse(readFileSync(RESULTS, 'utf8')) as Results;
}
function save(results: Results): void {
  mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(RESULTS, `${JSON.stringify(results, null, 1)}\n`);
  writeReport(results, OUT_DIR);
}

/** Rows of the VMs (and RAM sizes) this run did not measure stay from the last results. */
function keep<T extends { vm: string; ramMiB?: number }>(old: T[] | undefined, fresh: T[], sizes: readonly number[] = opts.sizes): T[] {
  const measured = (r: T): boolean => opts.vms.includes(groupOf(r.vm)) && (r.ramMiB === undefined || sizes.includes(r.ramMiB));
  return [...(old ?? []).filter((r) => !measured(r)), ...fresh];
}

const results = readResults();
if (opts.reportOnly) {
  save(results);
  say(`report written from ${RESULTS}`);
  process.exit(0);
}
say(`sections: ${opts.sections.join(', ')}; load average ${load().loadavg.join(' ')}`);
const assets = v86Assets();
if (typeof assets === 'string') say(`v86: ${assets}`);
if (opts.vms.includes('v86')) results.v86Assets = typeof assets === 'string' ? [assets] : assets.sources;
results.ramMaxMiB = RAM_MAX_MIB;
const server = await startServer();
let browser: Browser | null = null;
try {
  for (const s of opts.sections) {
    if (s === 'boot') {
      const b = await bootSection(server, assets);
      results.boot = { ...b, rows: keep(results.boot?.rows, b.rows), downloads: keep(results.boot?.downloads, b.downloads) };
    } else {
      // gc() in every isolate, for the soak's memory samples (memory.ts).
      browser ??= await launchBrowser(['--js-flags=--expose-gc']);
      if (s === 'cpu') {
        const c = await cpuSection(browser, server, assets);
        results.cpu = { ...c, rows: keep(results.cpu?.rows, c.rows) };
      }
      if (s === 'pause') {
        const p = await pauseSection(browser, server, assets);
        results.pause = { ...p, rows: keep(results.pause?.rows, p.rows).sort((a, b) => a.ramMiB - b.ramMiB) };
      }
      if (s === 'soak') results.soak = await soakSection(browser, server);
      if (s === 'jit-update') {
        const start = sectionStart();
        const rows = await jitUpdateSection({ browser, server, runs: opts.runs, say, log: pageLog });
        results.jitUpdate = { run: await runInfo(browser, start), work: WARM_WORK, interleaved: true, rows };
      }
      if (s === 'snapshot') {
        const start = sectionStart();
        const n = await snapshotSection({
          browser,
          server,
          assets,
          vms: opts.vms.filter((g): g is 'ours' | 'v86' => g !== 'native'),
          sizes: opts.sizes,
          runs: opts.snapshotRuns,
          fill: opts.fill,
          fillGuest: (shell) => fillGuest((c) => shell(c, FILL_TIMEOUT_MS)),
          say,
          log: pageLog,
        });
        const old = results.snapshot;
        results.snapshot = { run: await runInfo(browser, start), ...n, sizes: keep(old?.sizes, n.sizes, idleSizes(opts.sizes)).sort((a, b) => a.ramMiB - b.ramMiB), times: keep(old?.times, n.times).sort((a, b) => a.ramMiB - b.ramMiB) };
      }
    }
    save(results);
    say(`${s}: written to ${RESULTS}`);
  }
} finally {
  await browser?.close();
  await server.close();
}
say('done');
