// Runs in Node (vitest).
import { describe, expect, it } from 'vitest';
import { MonitorChannel, plainText } from './monitor';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A channel wired to a scripted HMP that answers each command. */
function scripted(answers: Record<string, string>) {
  const written: string[] = [];
  const lines: string[] = [];
  const ch: MonitorChannel = new MonitorChannel(
    (b) => {
      const cmd = dec.decode(b);
      written.push(cmd);
      const c = cmd.replace(/\r$/, '');
      // Echo in pieces, then answer, then prompt: split over many chunks.
      setTimeout(() => {
        for (const piece of [c.slice(0, 3), c.slice(3), '\r\n', answers[c] ?? '', '(qe', 'mu) ']) ch.feed(enc.encode(piece));
      }, 1);
    },
    (line) => lines.push(line),
  );
  return { ch, written, lines };
}

describe('MonitorChannel', () => {
  it('waits for the first prompt, then returns only the output', async () => {
    const { ch, written } = scripted({ 'info status': 'VM status: running\r\n' });
    const p = ch.command('info status');
    expect(written).toEqual([]);
    ch.feed(enc.encode("QEMU 10.2.2 monitor - type 'help' for more information\r\n(qemu) "));
    await expect(p).resolves.toBe('VM status: running');
    expect(written).toEqual(['info status\r']);
  });

  it('runs queued commands one at a time, in order', async () => {
    const { ch, written, lines } = scripted({ 'info version': '10.2.2\r\n', 'info status': 'VM status: paused\r\n', stop: '' });
    ch.feed(enc.encode('(qemu) '));
    const results = await Promise.all([ch.command('info version'), ch.command('stop'), ch.command('info status')]);
    expect(results).toEqual(['10.2.2', '', 'VM status: paused']);
    expect(written).toEqual(['info version\r', 'stop\r', 'info status\r']);
    expect(lines).toEqual(['info version', 'stop', 'info status']);
  });

  it('after reset (a new QEMU took over), waits for the new banner and does not resend a command in flight', async () => {
    const written: string[] = [];
    const ch: MonitorChannel = new MonitorChannel((b) => written.push(dec.decode(b)));
    ch.feed(enc.encode('(qemu) '));
    const migrate = ch.command('migrate -d file:vm.state');
    ch.feed(enc.encode('migrate -d file:vm.state\r\n')); // the old QEMU exec'd before its prompt
    ch.reset();
    await expect(migrate).resolves.toBe('');
    const status = ch.command('info status');
    expect(written).toEqual(['migrate -d file:vm.state\r']);
    ch.feed(enc.encode("QEMU 10.2.2 monitor - type 'help' for more information\r\n(qemu) "));
    expect(written).toEqual(['migrate -d file:vm.state\r', 'info status\r']);
    ch.feed(enc.encode('info status\r\nVM status: running\r\n(qemu) '));
    await expect(status).resolves.toBe('VM status: running');
  });

  it('keeps multi-line output intact', async () => {
    const { ch } = scripted({ 'info mtree': 'address-space: memory\r\n  0000000000000000-ffffffffffffffff (prio 0, i/o): system\r\n' });
    ch.feed(enc.encode('(qemu) '));
    await expect(ch.command('info mtree')).resolves.toBe(
      'address-space: memory\n  0000000000000000-ffffffffffffffff (prio 0, i/o): system',
    );
  });

  it('times out with the monitor-timeout code', async () => {
    const ch = new MonitorChannel(() => undefined);
    ch.feed(enc.encode('(qemu) '));
    await expect(ch.command('info status', 20)).rejects.toMatchObject({ code: 'monitor-timeout' });
  });

  it('fails waiting commands when closed', async () => {
    const ch = new MonitorChannel(() => undefined);
    const p = ch.command('info status');
    ch.close(new Error('QEMU exited'));
    await expect(p).rejects.toThrow('QEMU exited');
  });

  it('rejects multi-line commands', async () => {
    const ch = new MonitorChannel(() => undefined);
    await expect(ch.command('stop\ncont')).rejects.toMatchObject({ code: 'bad-options' });
  });
});

describe('plainText', () => {
  it('drops escapes and applies backspaces', () => {
    expect(plainText('in\x1b[Kfo\x08\x08fo status\r\n')).toBe('info status\n');
  });
});
