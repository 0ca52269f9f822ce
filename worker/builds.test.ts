// Runs in Node (vitest).
import { describe, expect, it } from 'vitest';
import { MANIFEST } from '../test/fakes/fake-qemu';
import { BuildRegistry, parseManifest, programOf } from './builds';

describe('BuildRegistry', () => {
  const two = {
    ...MANIFEST,
    qemu: { builds: ['v1', 'v2'] },
    artifacts: [...MANIFEST.artifacts, { path: 'qemu/v2/qemu-system-arm.js.gz' }, { path: 'qemu/v2/qemu-system-arm.wasm.gz' }],
  };

  it('lists builds by name, default first', () => {
    expect(new BuildRegistry(parseManifest(two)).list()).toEqual([
      { name: 'qemu-system-arm@v1', guest: 'arm', version: 'v1' },
      { name: 'qemu-system-i386@v1', guest: 'i386', version: 'v1' },
      { name: 'qemu-system-arm@v2', guest: 'arm', version: 'v2' },
    ]);
  });

  it('resolves short and full names to unpacked paths', () => {
    const r = new BuildRegistry(parseManifest(two));
    expect(r.resolve('arm', undefined).name).toBe('qemu-system-arm@v1');
    expect(r.resolve('arm', 'v2')).toMatchObject({ jsPath: 'qemu/v2/qemu-system-arm.js', wasmPath: 'qemu/v2/qemu-system-arm.wasm' });
    expect(r.resolve('arm', 'qemu-system-arm@v2').version).toBe('v2');
    expect(r.resolve('i386', 'qemu-system-i386').name).toBe('qemu-system-i386@v1');
  });

  it('gives every name QEMU may exec for a guest', () => {
    expect(new BuildRegistry(parseManifest(two)).execNames('arm')).toEqual(['qemu-system-arm@v1', 'v1', 'qemu-system-arm', 'qemu-system-arm@v2', 'v2']);
    expect(programOf('qemu-system-arm@v2')).toBe('qemu-system-arm');
  });

  it('explains unknown and mismatched builds', () => {
    const r = new BuildRegistry(parseManifest(two));
    expect(() => r.resolve('arm', 'v3')).toThrow(/unknown build "v3". Did you mean "v1"\?/);
    expect(() => r.resolve('i386', 'qemu-system-arm@v2')).toThrow(/runs the arm guest/);
  });

  it('versions the paths of artifacts whose hash the manifest gives', () => {
    const hash = 'ab'.repeat(32);
    const r = new BuildRegistry(parseManifest({ ...MANIFEST, artifacts: [{ path: 'guest/arm/kernel.gz', rawSha256: hash }, { path: 'guest/arm/initrd.gz' }] }));
    expect(r.versioned('guest/arm/kernel')).toBe(`guest/arm/kernel?v=${hash.slice(0, 16)}`);
    expect(r.versioned('guest/arm/initrd')).toBe('guest/arm/initrd');
  });

  it('rejects what is not a manifest', () => {
    expect(() => parseManifest({})).toThrow(/not an artifacts manifest/);
    expect(() => parseManifest({ format: 2, artifacts: [] })).toThrow(/format 2/);
  });
});
