// Runs in the QEMU host worker (and in Node for unit tests); no DOM.
//
// The build registry: which QEMU builds exist, read from the artifacts
// manifest (wasm/dist/manifest.json, unpacked next to the files). Names are
// `qemu-system-<target>@<version>`; live update (issue 4) resolves its
// targets through the same registry.
import { GUESTS, PlaygroundError, type BuildInfo, type GuestName } from './api';
import { suggest } from './options';

/** The part of wasm/dist/manifest.json the page needs. */
export interface ArtifactsManifest {
  format: number;
  qemu?: { version?: string; builds?: string[] };
  artifacts: { path: string; rawSize?: number; rawSha256?: string }[];
}

export interface ResolvedBuild extends BuildInfo {
  /** Artifact-relative paths of the unpacked files. */
  jsPath: string;
  wasmPath: string;
  wasmSize: number | undefined;
}

/** "qemu-system-arm" for "qemu-system-arm@v2". */
export function programOf(name: string): string {
  return name.replace(/@.*$/, '');
}

export function parseManifest(json: unknown): ArtifactsManifest {
  const m = json as Partial<ArtifactsManifest> | null;
  if (!m || typeof m !== 'object' || !Array.isArray(m.artifacts) || typeof m.format !== 'number') {
    throw new PlaygroundError('load-failed', 'manifest.json is not an artifacts manifest (no format/artifacts); run `npm run artifacts`');
  }
  if (m.format !== 1) {
    throw new PlaygroundError('load-failed', `artifacts manifest format ${m.format} is not supported (expected 1); update the playground`);
  }
  return m as ArtifactsManifest;
}

export class BuildRegistry {
  private readonly builds: ResolvedBuild[] = [];
  /** Unpacked artifact path → its size, when the manifest says. */
  private readonly sizes = new Map<string, number | undefined>();
  /** Unpacked artifact path → its sha256, when the manifest says. */
  private readonly hashes = new Map<string, string>();

  constructor(manifest: ArtifactsManifest) {
    const sizes = this.sizes;
    for (const a of manifest.artifacts) {
      const path = a.path.replace(/\.gz$/, '');
      sizes.set(path, a.rawSize);
      if (typeof a.rawSha256 === 'string' && /^[0-9a-f]{16,}$/.test(a.rawSha256)) this.hashes.set(path, a.rawSha256);
    }
    const re = /^qemu\/([^/]+)\/qemu-system-([a-z0-9_]+)\.js$/;
    for (const path of sizes.keys()) {
      const m = re.exec(path);
      if (!m) continue;
      const [, version, target] = m as unknown as [string, string, string];
      // Each guest has the QEMU target of its name (qemu-system-<guest>).
      const guest = GUESTS.find((g) => g === target);
      const wasmPath = `qemu/${version}/qemu-system-${target}.wasm`;
      if (!guest || !sizes.has(wasmPath)) continue;
      this.builds.push({ name: `qemu-system-${target}@${version}`, guest, version, jsPath: path, wasmPath, wasmSize: sizes.get(wasmPath) });
    }
    // Manifest order of versions first (the first is the default), then by name.
    const order = manifest.qemu?.builds ?? [];
    const rank = (v: string): number => (order.includes(v) ? order.indexOf(v) : order.length);
    this.builds.sort((a, b) => rank(a.version) - rank(b.version) || a.name.localeCompare(b.name));
  }

  /** The unpacked size of an artifact (e.g. `guest/arm/uImage`), if known. */
  rawSize(path: string): number | undefined {
    return this.sizes.get(path);
  }

  /**
   * The path to request an artifact at: with its content's hash in the
   * query when the manifest has it (`?v=`), which the artifacts' servers
   * let the browser keep without asking again (scripts/vite-artifacts.ts):
   * a new build is a new manifest (always revalidated), new hashes, new
   * URLs. Revalidating each artifact on every Start cost a round trip
   * to the server each (35-150 ms from a busy dev server), the wasm's on
   * the path to the shell.
   */
  versioned(path: string): string {
    const hash = this.hashes.get(path);
    return hash ? `${path}?v=${hash.slice(0, 16)}` : path;
  }

  list(): BuildInfo[] {
    return this.builds.map(({ name, guest, version }) => ({ name, guest, version }));
  }

  /** Every name QEMU may exec for this guest: `v2`, `qemu-system-arm@v2`, `qemu-system-arm`. */
  execNames(guest: GuestName): string[] {
    const builds = this.list().filter((b) => b.guest === guest);
    return [...new Set(builds.flatMap((b) => [b.name, b.version, programOf(b.name)]))];
  }

  /** `undefined` (default), `v1`, `qemu-system-arm` or `qemu-system-arm@v1`. */
  resolve(guest: GuestName, build: string | undefined): ResolvedBuild {
    const mine = this.builds.filter((b) => b.guest === guest);
    if (mine.length === 0) {
      throw new PlaygroundError('load-failed', `no QEMU build for the ${guest} guest in the artifacts manifest; run \`npm run build:wasm\``);
    }
    if (build === undefined || build === `qemu-system-${guest}`) return mine[0]!;
    const found = mine.find((b) => b.name === build || b.version === build);
    if (found) return found;
    const other = this.builds.find((b) => b.name === build);
    if (other) {
      throw new PlaygroundError('bad-options', `build ${build} runs the ${other.guest} guest, not ${guest}; choose guest "${other.guest}"`);
    }
    const names = mine.flatMap((b) => [b.version, b.name]);
    const hint = suggest(build, names);
    throw new PlaygroundError(
      'bad-options',
      `unknown build "${build}".${hint ? ` Did you mean "${hint}"?` : ''} Builds for ${guest}: ${mine.map((b) => b.name).join(', ')}`,
    );
  }
}
