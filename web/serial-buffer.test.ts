// Runs in Node (vitest).
import { describe, expect, it } from 'vitest';
import { SerialBuffer, toRegExp } from './serial-buffer';

const enc = new TextEncoder();

describe('SerialBuffer', () => {
  it('decodes UTF-8 split across chunks and drops CRs when read', () => {
    const b = new SerialBuffer();
    const bytes = enc.encode('héllo\r\n');
    b.append(bytes.slice(0, 2));
    b.append(bytes.slice(2));
    expect(b.read()).toBe('héllo\n');
  });

  it('resolves a waiter when the pattern arrives later, after `from`', async () => {
    const b = new SerialBuffer();
    b.append(enc.encode('42\n'));
    const from = b.end;
    const p = b.waitFor(/^42$/m, 1000, { from });
    b.append(enc.encode('echo $((6*7))\r\n4'));
    b.append(enc.encode('2\r\n/ # '));
    await expect(p).resolves.toBe('42');
  });

  it('treats string patterns literally', () => {
    expect(toRegExp('$((6*7))').test('echo $((6*7))')).toBe(true);
  });

  it('times out with the timeout code and the last output', async () => {
    const b = new SerialBuffer();
    b.append(enc.encode('Booting'));
    await expect(b.waitFor('ready', 10)).rejects.toMatchObject({ code: 'timeout', message: /Booting/ });
  });

  it('keeps offsets absolute when old text is dropped', () => {
    const b = new SerialBuffer(10);
    b.append(enc.encode('0123456789AB'));
    expect(b.end).toBe(12);
    expect(b.read(10)).toBe('AB');
  });

  it('cancel rejects waiters', async () => {
    const b = new SerialBuffer();
    const p = b.waitFor('x', 1000);
    b.cancel(new Error('stopped'));
    await expect(p).rejects.toThrow('stopped');
  });
});
