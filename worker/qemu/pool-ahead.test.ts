import { describe, expect, it } from 'vitest';
import { loadPoolAhead } from './pool-ahead';

/** A pool worker as the glue sees one: messages out, events in. */
class FakeWorker extends EventTarget {
  sent: unknown[] = [];
  onmessage: ((this: Worker, ev: MessageEvent) => unknown) | null = null;
  postMessage(message: unknown): void {
    this.sent.push(message);
  }
  /** The worker answers: listeners and the glue's handler both hear it. */
  answer(data: unknown): void {
    const ev = new MessageEvent('message', { data });
    this.dispatchEvent(ev);
    this.onmessage?.call(this as unknown as Worker, ev);
  }
}

const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
// The smallest module there is: eight bytes.
const wasmModule = new WebAssembly.Module(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
const glueLoad = { cmd: 1, handlers: ['print'], wasmMemory: memory, wasmModule };
const moduleObject = { print: () => undefined, other: 1 };

describe('loadPoolAhead', () => {
  it('sends the load the glue would send, with the handlers the module has', () => {
    const w = new FakeWorker();
    loadPoolAhead([w], moduleObject, memory, wasmModule);
    expect(w.sent).toEqual([glueLoad]);
  });

  it("drops the glue's own load; the answer that comes later reaches the glue's handler", () => {
    const w = new FakeWorker();
    loadPoolAhead([w], moduleObject, memory, wasmModule);
    const heard: unknown[] = [];
    w.onmessage = (ev) => heard.push(ev.data);
    w.postMessage(glueLoad);
    expect(w.sent).toHaveLength(1);
    w.answer({ cmd: 3 });
    expect(heard).toEqual([{ cmd: 3 }]);
  });

  it('hands the glue an answer that came before it listened', async () => {
    const w = new FakeWorker();
    loadPoolAhead([w], moduleObject, memory, wasmModule);
    w.answer({ cmd: 3 });
    const heard: unknown[] = [];
    w.onmessage = (ev) => heard.push(ev.data);
    w.postMessage(glueLoad);
    await new Promise((r) => setTimeout(r, 5));
    expect(heard).toEqual([{ cmd: 3 }]);
    expect(w.sent).toHaveLength(1);
  });

  it('passes every other message on, and a load for another module', () => {
    const w = new FakeWorker();
    loadPoolAhead([w], moduleObject, memory, wasmModule);
    const run = { cmd: 2, pthread_ptr: 64 };
    const other = { ...glueLoad, wasmModule: new WebAssembly.Module(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0])) };
    w.postMessage(run);
    w.postMessage(other);
    expect(w.sent).toEqual([glueLoad, run, other]);
  });

  it("keeps a worker's failure to load from its parent until the glue takes the worker", () => {
    const w = new FakeWorker();
    loadPoolAhead([w], moduleObject, memory, wasmModule);
    const early = new Event('error', { cancelable: true });
    w.dispatchEvent(early);
    expect(early.defaultPrevented).toBe(true);
    w.postMessage(glueLoad);
    const late = new Event('error', { cancelable: true });
    w.dispatchEvent(late);
    expect(late.defaultPrevented).toBe(false);
  });
});
