import { describe, expect, it } from 'vitest';
import { CursorLeftAsBackspace } from './hmp-redraw';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('CursorLeftAsBackspace', () => {
  it('turns each ESC [ D into a backspace and keeps everything else', () => {
    const t = new CursorLeftAsBackspace();
    expect(dec(t.transform(enc('ab\x1b[D\x1b[Dabc\x1b[K\x1b[C')))).toBe('ab\b\babc\x1b[K\x1b[C');
  });

  it('handles the sequence split across chunks, at every split point', () => {
    const whole = 'x\x1b[Dy\x1b[Kz';
    for (let cut = 0; cut <= whole.length; cut++) {
      const t = new CursorLeftAsBackspace();
      const out = dec(t.transform(enc(whole.slice(0, cut)))) + dec(t.transform(enc(whole.slice(cut))));
      expect(out).toBe('x\by\x1b[Kz');
    }
  });

  it('passes other escapes through, and a lone ESC once more bytes come', () => {
    const t = new CursorLeftAsBackspace();
    expect(dec(t.transform(enc('\x1b')))).toBe('');
    expect(dec(t.transform(enc('c')))).toBe('\x1bc');
    expect(dec(t.transform(enc('\x1b[2J')))).toBe('\x1b[2J');
  });
});
