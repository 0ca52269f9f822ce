// Runs on the page's main thread; uses no DOM (the panel is tour-panel.ts).
//
// The guided tours: the live-update flow step by step, with QEMU's own
// commands, and a second, short one on what cpr-exec refuses. Each step
// says what QEMU does and why, names the line to type and the console to
// type it in, and checks the result before the next step is offered.
import type { BootFrom, BootOptions, LiveUpdateResult } from '../worker/api';
import type { PlaygroundApi } from './playground';

export type TourId = 'live-update' | 'refusal';

/** Where a step's line goes: a console, or the page itself (boot, read). */
export type TourConsole = 'serial' | 'monitor' | 'page';

/** What the panel recorded before a step ran, for its check. */
export interface TourMark {
  serialOffset: number;
  /** Monitor output since the step ran (plain text). */
  monitorText(): string;
  updates: number;
}

export interface TourStep {
  title: string;
  /** Two or three sentences: what QEMU does here, and why. */
  text: string;
  console: TourConsole;
  /** The line to type, from the current state ('' for a page step). */
  command(pg: PlaygroundApi): string;
  /** undefined once the result is there, or what went wrong. */
  check(pg: PlaygroundApi, mark: TourMark): Promise<string | undefined>;
}

export interface Tour {
  id: TourId;
  title: string;
  /** The boot the first step makes. */
  boot: BootOptions;
  steps: TourStep[];
}

const ARM = { guest: 'arm', ramMiB: 128, build: 'v1' } as const;

/** Quotes an argument for HMP's cpr-exec-command (g_shell_parse_argv). */
function quote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/** This QEMU's arguments without an `-incoming` of its own: after a live
 * update they hold the one it started with, and a second would make the
 * next QEMU read two state files. */
function argsWithoutIncoming(argv: readonly string[]): string[] {
  return argv.filter((a, i) => a !== '-incoming' && argv[i - 1] !== '-incoming');
}

/** The other build of the running guest: the update's target. */
function otherBuild(pg: PlaygroundApi): string {
  const s = pg.status();
  const program = s.argv[0] ?? 'qemu-system-arm';
  const version = (s.build ?? '').endsWith('@v2') ? 'v1' : 'v2';
  return `${program}@${version}`;
}

async function waitUntil(test: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await test()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function serialShows(pg: PlaygroundApi, mark: TourMark, pattern: RegExp, timeoutMs = 60_000): Promise<boolean> {
  return pg.waitForSerial(pattern, timeoutMs, { from: mark.serialOffset }).then(() => true, () => false);
}

const bootStep = (what: string, from: BootFrom): TourStep => ({
  title: from === 'snapshot' ? 'Start the guest' : 'Boot the guest',
  text:
    `QEMU, compiled to WebAssembly, starts in a Web Worker and ${from === 'snapshot' ? 'restores' : 'boots'} ${what}. ` +
    "Its guest RAM lives in memfds carved from one shared WebAssembly.Memory: that is what lets a new QEMU take it over later. " +
    (from === 'snapshot'
      ? 'The guest was booted once when the builds were made and saved at its shell prompt, so it is there in seconds; booting under QEMU\'s interpreter would take tens of seconds.'
      : "Booting under QEMU's interpreter takes tens of seconds."),
  console: 'page',
  command: () => '',
  check: async (pg) => {
    const ok = await waitUntil(() => pg.status().state === 'running', 600_000);
    const s = pg.status();
    return ok ? undefined : `the guest did not reach its shell (state ${s.state}${s.error ? `: ${s.error.message}` : ''})`;
  },
});

const modeStep = (text: string): TourStep => ({
  title: 'Choose the cpr-exec mode',
  text,
  console: 'monitor',
  command: () => 'migrate_set_parameter mode cpr-exec',
  check: async (pg) => (/mode: cpr-exec/.test(await pg.monitor('info migrate_parameters')) ? undefined : 'the migration mode is not cpr-exec'),
});

export const TOURS: Record<TourId, Tour> = {
  'live-update': {
    id: 'live-update',
    title: 'Live update: replace QEMU under a running guest',
    boot: { ...ARM, from: 'snapshot' },
    steps: [
      bootStep('a small Linux on Arm, booted to its shell', 'snapshot'),
      {
        title: 'Start something that visibly runs',
        text: 'The guest\'s counter appends 1, 2, 3, ... to /tmp/counter, one number a second. If the guest notices the update, the numbers will show a gap or start again.',
        console: 'serial',
        command: () => 'counter & echo counter-started',
        check: async (pg, mark) => ((await serialShows(pg, mark, /^counter-started\r?$/m)) ? undefined : 'the shell did not answer "counter-started"'),
      },
      {
        title: 'Where guest RAM lives',
        text: 'QEMU\'s memory backends: the guest\'s RAM is a shared backend (share=on), backed by a memfd. cpr-exec keeps the memfd open across the exec, so the new QEMU maps the very same bytes instead of copying them.',
        console: 'monitor',
        command: () => 'info memdev',
        check: async (pg) => {
          const share = await pg.monitor('qom-get /objects/ram0 share').catch(() => '');
          return /true/.test(share) ? undefined : `guest RAM is not shared (qom-get /objects/ram0 share said ${JSON.stringify(share)})`;
        },
      },
      modeStep('A migration in mode cpr-exec writes no RAM at all: only the device state (a few tens of KB) goes to the file. QEMU then exec\'s the command you give it, and hands over its memfds.'),
      {
        title: 'Name the new QEMU',
        text: 'cpr-exec-command is the new QEMU\'s command line: the other build, with the same arguments as this one, and -incoming for the device state. In the browser, "exec" instantiates that build on the same shared Memory.',
        console: 'monitor',
        command: (pg) => ['migrate_set_parameter', 'cpr-exec-command', otherBuild(pg), ...argsWithoutIncoming(pg.status().argv.slice(1)), '-incoming', 'file:vm.state'].map(quote).join(' '),
        check: async (pg) => {
          const target = otherBuild(pg);
          return (await pg.monitor('info migrate_parameters')).includes(target) ? undefined : `cpr-exec-command does not name ${target}`;
        },
      },
      {
        title: 'Migrate: the live update',
        text: 'QEMU stops the VM, saves the device state, records its memfds and exec\'s. The page ends the old instance, starts the new build on the same Memory, and the new QEMU loads the state and runs the VM.',
        console: 'monitor',
        command: () => 'migrate -d file:vm.state',
        check: async (pg, mark) => {
          const ok = await waitUntil(() => pg.liveUpdates().length > mark.updates, 300_000);
          return ok ? undefined : `no live update finished (state ${pg.status().state}${pg.status().error ? `: ${pg.status().error?.message}` : ''})`;
        },
      },
      {
        title: 'The guest counted on',
        text: 'The same processes run: the counter has no gap and no repeat, because the guest\'s RAM never moved and its clock went on.',
        console: 'serial',
        command: () => 'echo COUNT=$(tail -n 1 /tmp/counter)',
        check: async (pg, mark) => ((await serialShows(pg, mark, /^COUNT=\d+\r?$/m, 120_000)) ? undefined : 'the shell did not show the counter\'s last number'),
      },
      {
        title: 'A new QEMU',
        text: 'info version names the build that runs now: the other one. The guest never rebooted.',
        console: 'monitor',
        command: () => 'info version',
        check: async (pg) => {
          const v = await pg.monitor('info version');
          const want = (pg.status().build ?? '').replace(/^.*@/, '');
          return v.includes(`cpr-playground ${want}`) ? undefined : `info version says ${JSON.stringify(v)}`;
        },
      },
      {
        title: 'The pause',
        text: 'The guest was paused only while the device state was saved and loaded and the new instance started. The chart under the controls splits each update\'s pause by phase; it does not grow with guest RAM.',
        console: 'page',
        command: () => '',
        check: async (pg) => (pg.liveUpdates().length > 0 ? undefined : 'no live update yet'),
      },
    ],
  },
  refusal: {
    id: 'refusal',
    title: 'What cpr-exec refuses, and why',
    // The machine's ROMs and flash in private memory: nothing a new QEMU could map again.
    boot: { ...ARM, extraArgs: ['-machine', 'aux-ram-share=off'] },
    steps: [
      bootStep('a guest whose ROMs and flash are in private memory (-machine aux-ram-share=off)', 'scratch'),
      modeStep('cpr-exec writes no RAM: every RAM block must be something the new QEMU can map again, a shared memfd or a shared file.'),
      {
        title: 'Migrate: QEMU refuses',
        text: 'QEMU checks its migration blockers before it stops anything. Private RAM would come up empty in the new QEMU, so it refuses, names the memory region, and says what would make it work.',
        console: 'monitor',
        command: () => 'migrate -d file:vm.state',
        check: async (_pg, mark) => {
          const ok = await waitUntil(() => /not compatible with CPR/.test(mark.monitorText()), 30_000);
          return ok ? undefined : 'QEMU did not refuse (no "not compatible with CPR" in the monitor)';
        },
      },
      {
        title: 'The guest never stopped',
        text: 'A refusal leaves the VM running: the shell answers as before. Boot without aux-ram-share=off (the playground\'s default) and the same commands live-update.',
        console: 'serial',
        command: () => 'echo still-$((6*7))',
        check: async (pg, mark) => ((await serialShows(pg, mark, /^still-42\r?$/m)) ? undefined : 'the shell did not answer'),
      },
    ],
  },
};

/** The pause of the last update in words, for the tour's last step. */
export function pauseSentence(r: LiveUpdateResult | undefined): string {
  if (!r) return '';
  const p = r.phases;
  // A VM that ran before the host's QMP channel was ready has its state
  // load inside QEMU init (api.ts, PausePhases).
  const start = p.stateLoadMs > 0 ? `QEMU init ${p.qemuInitMs}, state load ${p.stateLoadMs}` : `QEMU init and state load ${p.qemuInitMs}`;
  // Started before the VM stopped: the teardown, the clear and the
  // instantiation were not in the pause at all.
  if (r.startedEarly) return `${r.from} → ${r.to}: the guest paused ${r.pauseMs} ms (state save ${p.stateSaveMs}, ${start} ms; ${r.to} had started before the VM stopped).`;
  return `${r.from} → ${r.to}: the guest paused ${r.pauseMs} ms (state save ${p.stateSaveMs}, teardown ${p.teardownMs}, clear ${p.clearMs}, instantiate ${p.instantiateMs}, ${start} ms).`;
}
