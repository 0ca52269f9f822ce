// Runs in Node (vitest): the file channel's protocol (worker/files.ts)
// against a scripted agent that speaks wasm/guest/cpr-files' wire format.
// The real agent in a real guest is tested in test/e2e/files.e2e.ts.
import { describe, expect, it, vi } from 'vitest';
import { FileChannel, guestPathProblem, MAX_FILE_BYTES } from './files';
import { PlaygroundError } from './api';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A guest agent: parses what the host sends, answers through `reply`. */
class Agent {
  readonly files = new Map<string, Uint8Array>();
  private buf: number[] = [];
  private put: { id: string; size: number; path: string; got: number[] } | null = null;
  /** Answers go through this (split in odd pieces, as a port delivers). */
  deliver: (bytes: Uint8Array) => void = () => undefined;
  silent = false;

  receive(bytes: Uint8Array): void {
    for (const b of bytes) {
      if (this.put) {
        this.put.got.push(b);
        if (this.put.got.length === this.put.size) this.finishPut();
        continue;
      }
      if (b !== 10) {
        this.buf.push(b);
        continue;
      }
      const line = dec.decode(new Uint8Array(this.buf));
      this.buf = [];
      if (!this.silent) this.onLine(line);
    }
  }

  private onLine(line: string): void {
    const [magic, op, id, arg, ...rest] = line.split(' ');
    const path = rest.join(' ');
    if (magic !== 'cpr1') return;
    if (op === 'ping') this.say(`cpr1 ${id} pong\n`);
    if (op === 'put') {
      this.put = { id: id!, size: Number(arg), path, got: [] };
      if (this.put.size === 0) this.finishPut();
    }
    if (op === 'get') {
      const f = this.files.get(path);
      if (!f) return this.say(`cpr1 ${id} error no such file\n`);
      const out = new Uint8Array([...enc.encode(`cpr1 ${id} file ${f.length}\n`), ...f, ...enc.encode(`cpr1 ${id} end\n`)]);
      // In three pieces, cut inside the header, the data and the end line.
      const a = 5, b = Math.max(a, out.length - 7);
      this.deliver(out.subarray(0, a));
      this.deliver(out.subarray(a, b));
      this.deliver(out.subarray(b));
    }
  }

  private finishPut(): void {
    const p = this.put!;
    this.put = null;
    this.files.set(p.path, new Uint8Array(p.got));
    this.say(`cpr1 ${p.id} ok ${p.got.length}\n`);
  }

  private say(text: string): void {
    this.deliver(enc.encode(text));
  }
}

function wired(): { channel: FileChannel; agent: Agent } {
  const agent = new Agent();
  const channel = new FileChannel((bytes) => queueMicrotask(() => agent.receive(bytes)));
  agent.deliver = (bytes) => {
    const copy = bytes.slice();
    queueMicrotask(() => channel.feed(copy));
  };
  return { channel, agent };
}

describe('FileChannel', () => {
  it('puts a file and gets it back, byte for byte', async () => {
    const { channel, agent } = wired();
    const data = new Uint8Array(70_000).map((_, i) => (i * 7) & 0xff);
    data[100] = 10; // a newline inside the data must not end anything
    expect(await channel.put('/root/a file.bin', data)).toBe(data.length);
    expect(agent.files.get('/root/a file.bin')).toEqual(data);
    expect(await channel.get('/root/a file.bin')).toEqual(data);
  });

  it('moves empty files', async () => {
    const { channel } = wired();
    expect(await channel.put('/tmp/empty', new Uint8Array())).toBe(0);
    expect(await channel.get('/tmp/empty')).toEqual(new Uint8Array());
  });

  it('runs requests one at a time, in order', async () => {
    const { channel } = wired();
    const [a, b, c] = await Promise.all([
      channel.put('/x', enc.encode('one')),
      channel.put('/x', enc.encode('three')),
      channel.get('/x'),
    ]);
    expect([a, b, dec.decode(c)]).toEqual([3, 5, 'three']);
  });

  it("reports the guest's error with the path", async () => {
    const { channel } = wired();
    await expect(channel.get('/nope')).rejects.toMatchObject({ code: 'file-failed', message: 'getFile /nope: no such file' });
  });

  it('refuses bad paths and oversize files before sending anything', async () => {
    const sent: Uint8Array[] = [];
    const channel = new FileChannel((b) => sent.push(b));
    await expect(channel.put('relative/path', new Uint8Array(1))).rejects.toMatchObject({ code: 'bad-options' });
    await expect(channel.get('/dir/')).rejects.toMatchObject({ code: 'bad-options' });
    await expect(channel.put('/big', new Uint8Array(MAX_FILE_BYTES + 1))).rejects.toThrow(/64 MiB/);
    expect(sent).toEqual([]);
    expect(guestPathProblem('/a\nb')).toMatch(/line breaks/);
    expect(guestPathProblem('/ok/path with spaces')).toBeUndefined();
  });

  it('says when no agent answers', async () => {
    vi.useFakeTimers();
    try {
      const { channel, agent } = wired();
      agent.silent = true;
      const put = channel.put('/x', enc.encode('data'));
      const seen = expect(put).rejects.toThrow(/file agent did not answer/);
      await vi.advanceTimersByTimeAsync(16_000);
      await seen;
    } finally {
      vi.useRealTimers();
    }
  });

  it('ignores the rest of an abandoned transfer and answers to old requests', async () => {
    const { channel, agent } = wired();
    await channel.put('/warm', enc.encode('x')); // the agent is known now
    channel.feed(enc.encode('\u0000binary rest of an old transfer\ncpr1 1 ok 99\n'));
    agent.files.set('/f', enc.encode('fine'));
    expect(dec.decode(await channel.get('/f'))).toBe('fine');
  });

  it('fails what is pending when the session ends', async () => {
    const { channel, agent } = wired();
    await channel.put('/warm', enc.encode('x'));
    agent.silent = true;
    const get = channel.get('/f');
    channel.close(new PlaygroundError('qemu-exited', 'QEMU exited'));
    await expect(get).rejects.toMatchObject({ code: 'qemu-exited' });
    await expect(channel.get('/f')).rejects.toMatchObject({ code: 'qemu-exited' });
  });
});
