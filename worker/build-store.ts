// Runs in the QEMU host worker (and in Node for unit tests); no DOM.
//
// The builds the host can run: the artifacts manifest (read once), and
// each build downloaded and compiled once, before any pause needs it. A
// failed preparation is not kept: the next attempt tries again.
import { PlaygroundError } from './api';
import { buildLayoutProblem, buildStaticBase } from './backend';
import { BuildRegistry, parseManifest, type ResolvedBuild } from './builds';
import { checkWasmMagic, countBody, download, fetchCached, fetchOk, readBody, type DownloadProgress, type FetchLike } from './download';
import type { PreparedBuild } from './live-update';

export interface BuildStoreEnv {
  fetch?: FetchLike;
  /** Compiles a build's wasm (the backend's), if it can. */
  compile?(bytes: Uint8Array): Promise<WebAssembly.Module>;
  /** Compiles it from its response as it arrives: the browser then keeps
   * the optimised code of a build's hot functions in its code cache, and
   * the next visit starts with them (a cold start runs QEMU's start-up and
   * its interpreter in baseline code first). */
  compileStreaming?(response: Response): Promise<WebAssembly.Module>;
}

export class BuildStore {
  private registry: BuildRegistry | null = null;
  private readonly prepared = new Map<string, Promise<PreparedBuild>>();
  private readonly glues = new Map<string, Promise<string>>();

  constructor(
    /** Absolute URL of the artifacts, ending in '/'. */
    private readonly base: string,
    private readonly env: BuildStoreEnv,
  ) {}

  /** The manifest's builds (read once). */
  async builds(): Promise<BuildRegistry> {
    if (this.registry) return this.registry;
    const url = `${this.base}manifest.json`;
    const bytes = await download(
      url,
      () => undefined,
      this.env.fetch,
      'the QEMU artifacts are not unpacked: run `npm run artifacts` (it unpacks wasm/dist into wasm/out; ' +
        'if wasm/dist is missing, build it with `npm run build:wasm`, as root, see docs/build.md) and reload',
    );
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      throw new PlaygroundError('load-failed', `${url} is not JSON; run \`npm run artifacts\``);
    }
    this.registry = new BuildRegistry(parseManifest(json));
    return this.registry;
  }

  /** An artifact's URL (versioned(): once the manifest is read, with
   * the hash of the file). */
  url(path: string): string {
    return this.base + (this.registry?.versioned(path) ?? path);
  }

  /** The registry if it was read already (no download). */
  known(): BuildRegistry | null {
    return this.registry;
  }

  /** Downloads and compiles a build once; later calls share the result.
   * `onProgress`: the wasm's download, if this call starts it. */
  prepare(build: ResolvedBuild, onProgress: (loaded: number, total: number) => void = () => undefined): Promise<PreparedBuild> {
    let p = this.prepared.get(build.name);
    if (!p) {
      p = (async () => {
        const url = this.url(build.wasmPath);
        const [module, glue] = await Promise.all([this.compileWasm(url, build, onProgress), this.glueSource(build)]);
        // QEMU's glue loads the wasm from its URL only without a module
        // (an environment that cannot compile); pthreads get the module.
        return { build, wasmUrl: url, module, layoutProblem: buildLayoutProblem(build.name, glue), staticBase: buildStaticBase(glue) };
      })();
      this.prepared.set(build.name, p);
      p.catch(() => this.prepared.delete(build.name));
    }
    return p;
  }

  /**
   * The build's wasm, compiled as it arrives when the environment can
   * (the browser then keeps the optimised code of its hot functions in
   * its code cache, for the next visit): its bytes are never held here,
   * a clone of the response is read for the progress alone. Holding them
   * cost a copy of the whole wasm in chunks and another when joined.
   */
  private async compileWasm(url: string, build: ResolvedBuild, onProgress: (loaded: number, total: number) => void): Promise<WebAssembly.Module | undefined> {
    const progress = (d: DownloadProgress): void => onProgress(d.loaded, d.total);
    // A versioned wasm the browser kept whole from an earlier visit
    // compiles straight from its cache, with no download to show: reading
    // a clone for the progress cost ~0.3 s of an 18 MB wasm here.
    const streaming = this.env.compileStreaming;
    if (streaming && this.registry?.versioned(build.wasmPath) !== build.wasmPath) {
      const kept = await fetchCached(url, this.env.fetch);
      const module = kept && (await streaming(kept).catch(() => undefined));
      if (module) {
        onProgress(build.wasmSize ?? 0, build.wasmSize ?? 0);
        return module;
      }
    }
    const response = await fetchOk(url, this.env.fetch);
    if (!this.env.compileStreaming) return this.compileBytes(url, build, await readBody(url, response, progress, build.wasmSize));
    const counted = countBody(url, response.clone(), progress, build.wasmSize);
    const streamed = await this.env.compileStreaming(response).catch(() => undefined);
    await counted;
    // A streaming compile that failed (a server that does not say
    // application/wasm, or not a wasm at all): the bytes, from the HTTP
    // cache now, say why or compile.
    return streamed ?? this.compileBytes(url, build, await download(url, () => undefined, this.env.fetch, undefined, build.wasmSize));
  }

  private async compileBytes(url: string, build: ResolvedBuild, wasm: Uint8Array): Promise<WebAssembly.Module | undefined> {
    checkWasmMagic(url, wasm);
    try {
      return this.env.compile ? await this.env.compile(wasm) : undefined;
    } catch (e) {
      throw new PlaygroundError('load-failed', `${build.name}'s wasm does not compile (${e instanceof Error ? e.message : String(e)}); run \`npm run artifacts\` and reload`);
    }
  }

  /** Downloads artifacts (paths relative to the artifacts) together,
   * reporting their combined progress in bytes. */
  async fetchAll(paths: readonly string[], onProgress: (loaded: number, total: number, label: string) => void): Promise<Map<string, Uint8Array>> {
    const registry = await this.builds();
    const loaded = new Map<string, number>();
    const totals = new Map<string, number>();
    const fetched = await Promise.all(
      paths.map(async (path) => {
        const bytes = await download(
          this.url(path),
          (p) => {
            loaded.set(path, p.loaded);
            totals.set(path, p.total || p.loaded);
            let l = 0;
            let t = 0;
            for (const q of paths) {
              l += loaded.get(q) ?? 0;
              t += totals.get(q) ?? 0;
            }
            onProgress(l, t, `downloading ${path}`);
          },
          this.env.fetch,
          undefined,
          registry.rawSize(path),
        );
        return [path, bytes] as const;
      }),
    );
    return new Map(fetched);
  }

  /** A build the host prepared itself (the booted one), for updates back to it. */
  remember(prepared: PreparedBuild): void {
    this.prepared.set(prepared.build.name, Promise.resolve(prepared));
  }

  /** The build's JS glue as text ('' if it cannot be read): it says
   * whether the build speaks our memory layout. Read once (a boot asks
   * for it while its build is being prepared, which reads it too); a
   * failed read is tried again next time. */
  glueSource(build: ResolvedBuild): Promise<string> {
    let glue = this.glues.get(build.name);
    if (!glue) {
      glue = download(this.url(build.jsPath), () => undefined, this.env.fetch).then(
        (bytes) => new TextDecoder().decode(bytes),
        () => {
          this.glues.delete(build.name);
          return '';
        },
      );
      this.glues.set(build.name, glue);
    }
    return glue;
  }
}
