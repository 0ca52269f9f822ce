// Runs in Node (vitest): what the host tells the page (worker/page-link.ts).
import { describe, expect, it, vi } from 'vitest';
import { PlaygroundError, type WorkerListener } from './api';
import { PageLink } from './page-link';

function listener(calls: string[], serial: Uint8Array[] = []): WorkerListener {
  return {
    status: (s) => calls.push(`status ${s.seq} ${s.state}`),
    progress: (p) => calls.push(`progress ${p.phase}`),
    serial: (b) => serial.push(b),
    monitor: () => calls.push('monitor'),
    log: (line) => calls.push(`log ${line}`),
    liveUpdate: () => calls.push('liveUpdate'),
  };
}

describe('PageLink', () => {
  it('numbers each status change and hands out copies', () => {
    const calls: string[] = [];
    const page = new PageLink();
    page.connect(listener(calls));
    page.set({ state: 'loading', argv: ['a'] });
    const copy = page.status();
    copy.argv.push('b');
    expect(page.status().argv).toEqual(['a']);
    expect(page.state).toBe('loading');
    expect(calls).toEqual(['status 0 idle', 'status 1 loading']);
  });

  it('records a failure in the status and returns it as a PlaygroundError', () => {
    const page = new PageLink();
    const err = page.fail(new Error('boom'));
    expect(err).toBeInstanceOf(PlaygroundError);
    expect(page.status()).toMatchObject({ state: 'error', error: { message: 'boom' } });
  });

  it('survives a listener that throws or rejects', () => {
    const page = new PageLink();
    page.connect({
      ...listener([]),
      log: () => {
        throw new Error('the page went away');
      },
      progress: () => Promise.reject(new Error('closed')),
    });
    expect(() => page.call('log', 'x')).not.toThrow();
    expect(() => page.progress({ phase: 'done', label: '', loaded: 0, total: 0 })).not.toThrow();
  });

  it('batches serial output until the timer or a flush', () => {
    vi.useFakeTimers();
    try {
      const serial: Uint8Array[] = [];
      const page = new PageLink();
      page.connect(listener([], serial));
      page.serial(new Uint8Array([1]));
      page.serial(new Uint8Array([2]));
      expect(serial).toEqual([]);
      vi.advanceTimersByTime(10);
      expect(serial).toEqual([new Uint8Array([1, 2])]);
      page.serial(new Uint8Array([3]));
      page.flushSerial();
      expect(serial).toEqual([new Uint8Array([1, 2]), new Uint8Array([3])]);
      page.flushSerial(); // nothing held: nothing sent
      expect(serial).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });
});
