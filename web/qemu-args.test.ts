import { describe, expect, it } from 'vitest';
import { splitArgs } from './qemu-args';

describe('splitArgs', () => {
  it('splits as a shell does: spaces, quotes, escapes', () => {
    expect(splitArgs('')).toEqual({ args: [] });
    expect(splitArgs('  -S   -d  guest_errors ')).toEqual({ args: ['-S', '-d', 'guest_errors'] });
    expect(splitArgs(`-append "console=ttyAMA0 quiet" -name 'my vm'`)).toEqual({ args: ['-append', 'console=ttyAMA0 quiet', '-name', 'my vm'] });
    expect(splitArgs('-name a\\ b -name ""')).toEqual({ args: ['-name', 'a b', '-name', ''] });
    expect(splitArgs('-name "say \\"hi\\""')).toEqual({ args: ['-name', 'say "hi"'] });
  });

  it('says which quote is not closed', () => {
    expect(splitArgs('-name "oops')).toEqual({ error: expect.stringMatching(/double quote .* not closed/) });
    expect(splitArgs("-name 'oops")).toEqual({ error: expect.stringMatching(/single quote/) });
  });
});
