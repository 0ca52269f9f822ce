// What a QEMU console printed so far, and waiting for a pattern in it:
// shared by the Node smoke tests.

export class Transcript {
  text = '';
  private readonly decoder = new TextDecoder();
  private waiters: Array<() => void> = [];

  /** Console bytes; a UTF-8 sequence split across chunks is kept whole. */
  pushBytes(bytes: Uint8Array): void {
    this.push(this.decoder.decode(bytes, { stream: true }));
  }

  push(text: string): void {
    this.text += text;
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves with the offset of `pattern` at or after `from`. */
  async waitFor(pattern: string | RegExp, timeoutMs: number, from = 0): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rest = this.text.slice(from);
      const at = typeof pattern === 'string' ? rest.indexOf(pattern) : rest.search(pattern);
      if (at >= 0) return from + at;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${String(pattern)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }
}
