// Runs in Node (vitest).
import { describe, expect, it } from 'vitest';
import { controlsFor, formatArgv, formatBytes, progressFraction, progressText } from './format';
import { isolationProblem } from './isolation';

describe('format', () => {
  it('formats bytes', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(31 * 1024 * 1024)).toBe('31.0 MiB');
  });

  it('quotes argv like a shell', () => {
    expect(formatArgv(['qemu-system-arm', '-M', 'virt', '-append', 'console=ttyAMA0 panic=-1'])).toBe(
      "qemu-system-arm -M virt -append 'console=ttyAMA0 panic=-1'",
    );
  });

  it('computes progress', () => {
    expect(progressFraction({ phase: 'download', label: 'x', loaded: 5, total: 10 })).toBe(0.5);
    expect(progressFraction({ phase: 'download', label: 'x', loaded: 5, total: 0 })).toBeNull();
    expect(progressFraction({ phase: 'boot', label: 'x', loaded: 0, total: 0 })).toBeNull();
    expect(progressText({ phase: 'download', label: 'downloading', loaded: 1024, total: 2048 })).toBe(
      'downloading — 1.0 KiB of 2.0 KiB',
    );
  });

  it('enables the controls that fit the state', () => {
    expect(controlsFor('idle')).toEqual({ boot: true, reset: false, stop: false });
    expect(controlsFor('running')).toEqual({ boot: true, reset: true, stop: true });
    expect(controlsFor('loading')).toEqual({ boot: false, reset: false, stop: true });
  });

  it('explains missing isolation with the exact headers', () => {
    expect(isolationProblem(true)).toBeNull();
    expect(isolationProblem(false)).toMatch(/Cross-Origin-Opener-Policy: same-origin.*Cross-Origin-Embedder-Policy: require-corp/);
    expect(isolationProblem(false)).not.toMatch(/iframe/);
    expect(isolationProblem(false, true)).toMatch(/iframe needs allow="cross-origin-isolated".*Cross-Origin-Resource-Policy: cross-origin/);
  });
});
