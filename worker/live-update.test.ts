// Runs in Node (vitest): the pure parts of the live-update flow.
import { describe, expect, it } from 'vitest';
import { absolute, cprExecCommand, execName, parseEnv } from './live-update';

describe('live update helpers', () => {
  it('builds cpr-exec-command as QMP takes it: a list, no quoting', () => {
    expect(cprExecCommand('qemu-system-arm@v2', ['-m', '128', '-append', "console=ttyAMA0 it's"])).toEqual(
      ['qemu-system-arm@v2', '-m', '128', '-append', "console=ttyAMA0 it's", '-incoming', 'file:/vm.state'],
    );
  });

  it('parses QEMU environ and build names', () => {
    expect(parseEnv(['QEMU_CPR_EXEC_STATE=21', 'A=b=c', 'junk'])).toEqual({ QEMU_CPR_EXEC_STATE: '21', A: 'b=c' });
    expect(execName('/usr/bin/qemu-system-arm@v2')).toBe('qemu-system-arm@v2');
    expect(absolute('vm.state')).toBe('/vm.state');
  });
});
