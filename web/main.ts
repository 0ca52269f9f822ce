// Runs on the page's main thread (DOM).
//
// Wires the page: the controls, the two consoles, the status bar, the
// progress bar and the error panel, all on top of window.playground.
import { BOOTED_SNAPSHOT_RAM_MIB, JIT_GUESTS, toErrorInfo, type Accel, type BootFrom, type BootOptions, type ExecFault, type BuildInfo, type ErrorInfo, type GuestName, type Progress, type Status } from '../worker/api';
import { controlsFor, formatArgv, formatBytes, liveUpdateText, progressFraction, progressText, STATE_LABEL } from './format';
import { GuestFiles, guestTakesFiles, isSnapshotFile } from './guest-files';
import { isolationProblem } from './isolation';
import { KeptVmStore } from './kept-vm';
import { pauseChart } from './pause-chart';
import { splitArgs } from './qemu-args';
import { TourPanel } from './tour-panel';
import type { TourId } from './tour';
import { Playground } from './playground';
import { CursorLeftAsBackspace, REVERSE_WRAPAROUND } from './hmp-redraw';
import { NORMAL_FONT, PRESENTER_FONT, TerminalPane } from './terminal';

function $<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page is missing #${id}`);
  return el as T;
}

// The artifacts (QEMU and guest images) are served at /artifacts/ next to
// the page, in dev, preview and the static build (see vite.config.ts).
const artifactsBase = new URL(`${import.meta.env.BASE_URL}artifacts/`, location.href).href;

const playground = new Playground({
  artifactsBase,
  // ?fault=kill-new-instance (or truncate-state): show that a live update
  // survives a failure (docs/api.md); the worker refuses unknown names.
  faults: new URLSearchParams(location.search).getAll('fault') as ExecFault[],
  isolated: self.crossOriginIsolated === true,
  createWorker: () =>
    new Worker(new URL('../worker/qemu-host.worker.ts', import.meta.url), { type: 'module', name: 'qemu-host' }),
});
window.playground = playground;

const form = $<HTMLFormElement>('boot-form');
const guestSel = $<HTMLSelectElement>('guest');
const ramInput = $<HTMLInputElement>('ram');
const buildSel = $<HTMLSelectElement>('build');
const accelSel = $<HTMLSelectElement>('accel');
/** The 64-bit guests have no JIT: their engine is the interpreter, and the
 * JIT choice comes back with a guest that has it. */
function syncAccelToGuest(): void {
  const hasJit = JIT_GUESTS.includes(guestSel.value as GuestName);
  const jit = accelSel.querySelector<HTMLOptionElement>('option[value="jit"]');
  if (jit) jit.disabled = !hasJit;
  if (!hasJit) accelSel.value = 'interpreter';
}
guestSel.addEventListener('change', syncAccelToGuest);
const startBtn = $<HTMLButtonElement>('start');
const extraArgsInput = $<HTMLInputElement>('extra-args');
const bootBtn = $<HTMLButtonElement>('boot');
const resetBtn = $<HTMLButtonElement>('reset');
const stopBtn = $<HTMLButtonElement>('stop');
const presenterBtn = $<HTMLButtonElement>('presenter');
const updateForm = $<HTMLFormElement>('update-form');
const updateSel = $<HTMLSelectElement>('update-build');
const updateBtn = $<HTMLButtonElement>('update');
const updateResult = $<HTMLOutputElement>('update-result');
const saveBtn = $<HTMLButtonElement>('save-snapshot');
const openInput = $<HTMLInputElement>('open-snapshot');
const snapshotResult = $<HTMLOutputElement>('snapshot-result');
const keepBtn = $<HTMLButtonElement>('keep-vm');
const resumeBtn = $<HTMLButtonElement>('resume-vm');
const forgetBtn = $<HTMLButtonElement>('forget-vm');
const keptOut = $<HTMLOutputElement>('kept-vm');
// Files in and out of the guest (report and download are hoisted).
const guestFiles = new GuestFiles(
  playground,
  { putInput: $('put-file'), getPath: $('get-path'), getButton: $('get-file'), result: $('file-result') },
  report,
  download,
);
let allBuilds: BuildInfo[] = [];

// ---- consoles ---------------------------------------------------------------
const serialPane = new TerminalPane($('serial'), (data) => {
  void playground.sendSerial(data).catch(() => undefined); // typing before boot goes nowhere
});
const monitorRedraw = new CursorLeftAsBackspace();
const monitorPane = new TerminalPane(
  $('monitor'),
  (data) => {
    void playground.sendMonitor(data).catch(() => undefined);
  },
  { modes: REVERSE_WRAPAROUND, transform: (bytes) => monitorRedraw.transform(bytes) },
);
playground.onSerial((bytes) => serialPane.write(bytes));
playground.onMonitor((bytes) => monitorPane.write(bytes));
playground.onLog((line) => console.info(`[qemu] ${line}`));
playground.onStatus((s) => console.info(`[status] ${s.state}${s.error ? ` ${s.error.code}: ${s.error.message}` : ''}`));

const tabs = [
  { tab: $<HTMLButtonElement>('tab-serial'), pane: serialPane },
  { tab: $<HTMLButtonElement>('tab-monitor'), pane: monitorPane },
];
function showTab(index: number): void {
  tabs.forEach(({ tab, pane }, i) => {
    tab.setAttribute('aria-selected', String(i === index));
    pane.element.hidden = i !== index;
  });
  tabs[index]!.pane.refit();
  tabs[index]!.pane.focus();
}
tabs.forEach(({ tab }, i) => tab.addEventListener('click', () => showTab(i)));

// ---- presenter mode ---------------------------------------------------------
function setPresenter(on: boolean): void {
  document.body.classList.toggle('presenter', on);
  presenterBtn.setAttribute('aria-pressed', String(on));
  for (const { pane } of tabs) pane.setFontSize(on ? PRESENTER_FONT : NORMAL_FONT);
  remember('presenter', on ? '1' : '0');
}
/** localStorage, where the page may use it: a cross-origin iframe (a
 * tutorial embedding the playground) can be denied it, and reading it then
 * throws; the page works on without remembering. */
function remembered(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}
function remember(key: string, value: string): void {
  try {
    localStorage.setItem(key, value);
  } catch {
    /* not remembered: see remembered() */
  }
}
presenterBtn.addEventListener('click', () => setPresenter(!document.body.classList.contains('presenter')));
if (remembered('presenter') === '1' || new URLSearchParams(location.search).has('presenter')) setPresenter(true);

// ---- error panel ------------------------------------------------------------
const errorPanel = $('error');
function showError(info: ErrorInfo | null): void {
  errorPanel.hidden = info === null;
  if (!info) return;
  $('error-code').textContent = info.code;
  $('error-message').textContent = info.message;
}
$('error-close').addEventListener('click', () => showError(null));

const isolation = isolationProblem(self.crossOriginIsolated === true, self !== self.top);
if (isolation) {
  const panel = $('isolation');
  panel.textContent = isolation;
  panel.hidden = false;
}

// ---- status and progress ----------------------------------------------------
function renderStatus(s: Status): void {
  $('st-state').textContent = STATE_LABEL[s.state];
  $('st-state').dataset.state = s.state;
  $('st-build').textContent = s.build ?? '—';
  $('st-ram').textContent = s.ramMiB ? `${s.ramMiB} MiB` : '—';
  $('st-accel').textContent = s.accel ?? '—';
  const argv = s.argv.length ? formatArgv(s.argv) : '—';
  $('st-argv').textContent = argv;
  $('st-argv').title = argv;
  const c = controlsFor(s.state);
  bootBtn.disabled = startBtn.disabled = !c.boot;
  resetBtn.disabled = !c.reset;
  stopBtn.disabled = !c.stop;
  document.body.dataset.state = s.state;
  // Live update: every other build of the running guest (upgrade and downgrade).
  const targets = allBuilds.filter((b) => b.guest === s.guest && b.name !== s.build).map((b) => b.name);
  if (targets.join() !== [...updateSel.options].map((o) => o.value).join()) {
    updateSel.replaceChildren(...targets.map((t) => new Option(t, t)));
  }
  updateBtn.disabled = !(s.state === 'running' || s.state === 'paused') || targets.length === 0;
  saveBtn.disabled = !(s.state === 'running' || s.state === 'paused');
  keepBtn.disabled = saveBtn.disabled || keptStore.problem !== undefined;
  guestFiles.render(s);
  if (s.error) showError(s.error);
  if (s.state !== 'loading' && s.state !== 'starting' && s.state !== 'booting') $('progress').hidden = true;
}
function renderProgress(p: Progress): void {
  const bar = $('progress');
  bar.hidden = p.phase === 'done';
  const f = progressFraction(p);
  const fill = $('progress-fill');
  fill.classList.toggle('indeterminate', f === null);
  fill.style.width = f === null ? '' : `${Math.round(f * 100)}%`;
  $('progress-text').textContent = progressText(p);
}
playground.onStatus(renderStatus);
playground.onProgress(renderProgress);
renderStatus(playground.status());

// ---- controls ---------------------------------------------------------------
function report(e: unknown): void {
  showError(toErrorInfo(e));
}

/** Boots as the Boot button does: fresh terminals, errors in the panel. */
function bootGuest(options: BootOptions): Promise<unknown> {
  showError(null);
  serialPane.reset();
  monitorPane.reset();
  showTab(0);
  const booting = playground.boot(options);
  booting.catch(report);
  return booting;
}
/** Start restores the booted snapshot, which has one RAM size; any other
 * size, and "Boot from scratch", boot the kernel. */
function startFrom(ramMiB: number, scratch: boolean): BootFrom {
  return !scratch && ramMiB === BOOTED_SNAPSHOT_RAM_MIB ? 'snapshot' : 'scratch';
}
form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const extra = splitArgs(extraArgsInput.value);
  if ('error' in extra) {
    showError({ code: 'bad-options', message: extra.error });
    return;
  }
  const ramMiB = Number(ramInput.value);
  // The booted snapshot was saved without extra arguments.
  const from = startFrom(ramMiB, ev.submitter === bootBtn || extra.args.length > 0);
  void bootGuest({ guest: guestSel.value as GuestName, ramMiB, build: buildSel.value || undefined, from, extraArgs: extra.args, accel: accelSel.value as Accel }).catch(() => undefined);
});
// Let QEMU's own validation speak for RAM too: the form must not block
// an invalid value silently, so boot() reports it in the error panel.
form.noValidate = true;
resetBtn.addEventListener('click', () => {
  showError(null);
  void playground.reset().catch(report);
});
stopBtn.addEventListener('click', () => void playground.stop().catch(report));
updateForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  showError(null);
  updateResult.textContent = `updating to ${updateSel.value}…`;
  playground.liveUpdate(updateSel.value).catch((e: unknown) => {
    updateResult.textContent = 'live update failed';
    report(e);
  });
});
// Also the updates typed into the monitor.
playground.onLiveUpdate((r) => {
  updateResult.textContent = liveUpdateText(r);
  updateResult.dataset.pauseMs = String(r.pauseMs);
  // Markup from pauseChart(), whose every text is escaped.
  $('pause-chart-svg').innerHTML = pauseChart(playground.liveUpdates());
  $('pause-chart').hidden = false;
});

// ---- snapshots ----------------------------------------------------------------
function download(blob: Blob, name: string): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}
saveBtn.addEventListener('click', () => {
  showError(null);
  const s = playground.status();
  snapshotResult.textContent = 'saving…';
  playground
    .saveSnapshot()
    .then((blob) => {
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      download(blob, `${s.guest}-${(s.build ?? 'qemu').replace(/^.*@/, '')}-${stamp}.cprsnap`);
      snapshotResult.textContent = `saved (${(blob.size / 2 ** 20).toFixed(1)} MiB)`;
    })
    .catch((e: unknown) => {
      snapshotResult.textContent = 'save failed';
      report(e);
    });
});
function restoreFrom(file: Blob | ArrayBuffer, what: string): void {
  showError(null);
  snapshotResult.textContent = `restoring ${what}…`;
  serialPane.reset();
  monitorPane.reset();
  playground
    .restoreSnapshot(file)
    .then((s) => (snapshotResult.textContent = `restored ${what} on ${s.build}`))
    .catch((e: unknown) => {
      snapshotResult.textContent = 'restore refused';
      report(e);
    });
}
openInput.addEventListener('change', () => {
  const file = openInput.files?.[0];
  openInput.value = '';
  if (file) restoreFrom(file, file.name);
});
// Drop a file anywhere on the page: a snapshot is restored, any other file
// goes into the running guest.
document.addEventListener('dragover', (ev) => {
  if (!ev.dataTransfer?.types.includes('Files')) return;
  ev.preventDefault();
  document.body.classList.add('dropping');
});
document.addEventListener('dragleave', () => document.body.classList.remove('dropping'));
document.addEventListener('drop', (ev) => {
  document.body.classList.remove('dropping');
  const file = ev.dataTransfer?.files[0];
  if (!file) return;
  ev.preventDefault();
  if (isSnapshotFile(file.name) || !guestTakesFiles(playground.status().state)) restoreFrom(file, file.name);
  else guestFiles.put(file);
});
// "Keep this VM": one snapshot in the browser's storage, offered on the next visit.
const keptStore = new KeptVmStore();
async function showKept(): Promise<void> {
  const kept = await keptStore.kept();
  resumeBtn.hidden = forgetBtn.hidden = kept === null;
  keptOut.textContent = kept ? `kept VM: ${formatBytes(kept.bytes)}, ${kept.keptAt.toLocaleString()}` : '';
}
keepBtn.addEventListener('click', () => {
  showError(null);
  keptOut.textContent = 'keeping…';
  playground
    .saveSnapshot()
    .then((blob) => keptStore.keep(blob))
    .then(showKept)
    .catch((e: unknown) => {
      keptOut.textContent = 'not kept';
      report(e);
    });
});
resumeBtn.addEventListener('click', () => {
  void keptStore.read().then((file) => restoreFrom(file, 'the kept VM'), report);
});
forgetBtn.addEventListener('click', () => void keptStore.forget().then(showKept, report));
void showKept();

// ?snapshot=URL: restore that snapshot when the page opens.
const snapshotUrl = new URLSearchParams(location.search).get('snapshot');
if (snapshotUrl && !isolation) {
  snapshotResult.textContent = `fetching ${snapshotUrl}…`;
  fetch(new URL(snapshotUrl, location.href))
    .then((r) => {
      if (!r.ok) throw new Error(`${snapshotUrl}: HTTP ${r.status}`);
      return r.arrayBuffer();
    })
    .then((bytes) => restoreFrom(bytes, snapshotUrl))
    .catch((e: unknown) => {
      snapshotResult.textContent = 'snapshot not loaded';
      report(e);
    });
}

// ---- guided tours -------------------------------------------------------------
const tour = new TourPanel($('tour'), playground, {
  showConsole: (c) => showTab(c === 'serial' ? 0 : 1),
  boot: (options) => {
    guestSel.value = options.guest ?? 'arm';
    syncAccelToGuest();
    ramInput.value = String(options.ramMiB ?? 128);
    return bootGuest({ accel: accelSel.value as Accel, ...options });
  },
});
$('tour-live').addEventListener('click', () => tour.open('live-update'));
$('tour-refusal').addEventListener('click', () => tour.open('refusal'));

// ---- deep links ---------------------------------------------------------------
// ?guest=i386&ram=192&build=v2&accel=interpreter fill the boot form; ?boot boots at once;
// each ?type=... is typed into the guest's shell once it is ready
// (docs/api.md, "Deep links").
const params = new URLSearchParams(location.search);
const linkedGuest = params.get('guest');
// ?tour=live-update (or refusal) &step=N opens a tour at step N (1-based).
const linkedTour = params.get('tour');
if (linkedTour === 'live-update' || linkedTour === 'refusal') tour.open(linkedTour as TourId, Number(params.get('step') ?? 1) - 1);
else if (linkedTour !== null) showError({ code: 'bad-options', message: `unknown tour "${linkedTour}": use tour=live-update or tour=refusal` });
if (linkedGuest !== null) guestSel.value = linkedGuest;
syncAccelToGuest();
if (params.has('ram')) ramInput.value = params.get('ram') ?? '';
if (params.has('accel')) accelSel.value = params.get('accel') ?? '';
function deepLinkBoot(): void {
  if (!params.has('boot') || snapshotUrl) return;
  const typed = params.getAll('type');
  const ramMiB = Number(params.get('ram') ?? ramInput.value);
  // The link's own values, not the form's: a guest or build the form has
  // no option for gets the worker's error ("unknown guest ...").
  // ?boot starts from the booted snapshot where it can; ?boot=scratch boots.
  playground
    .boot({
      guest: (linkedGuest ?? guestSel.value) as GuestName,
      ramMiB,
      build: params.get('build') ?? (buildSel.value || undefined),
      from: startFrom(ramMiB, params.get('boot') === 'scratch'),
      accel: (params.get('accel') ?? accelSel.value) as Accel,
    })
    .then(async () => {
      for (const line of typed) await playground.sendSerial(`${line}\n`);
    })
    .catch(report);
}

// Fill the build picker from the manifest (and learn early if it is missing).
if (!isolation) {
  playground
    .builds()
    .then((builds) => {
      allBuilds = builds;
      renderStatus(playground.status());
      const versions = [...new Set(builds.map((b) => b.version))];
      for (const v of versions) buildSel.add(new Option(v, v));
      const linkedBuild = params.get('build');
      if (linkedBuild !== null) buildSel.value = linkedBuild.replace(/^.*@/, '');
      deepLinkBoot();
    })
    .catch(report);
}
showTab(0);
