// Runs in Node (vitest).
import { describe, expect, it } from 'vitest';
import { consoleArgv, filesArgv, hasFilesPort, withQmpConsole } from './consoles';

describe('consoles', () => {
  it('wire serial, HMP and QMP, each to its own device', () => {
    const argv = consoleArgv();
    expect(argv.filter((a) => a === '-chardev')).toHaveLength(3);
    expect(argv).toContain('chardev=monitor0,mode=readline');
    expect(argv).toContain('chardev=qmp0,mode=control');
  });

  it('add the host\'s QMP console to a command line that lacks it, once', () => {
    expect(withQmpConsole(['-M', 'virt'])).toEqual(['-M', 'virt', '-chardev', 'pipe,id=qmp0,path=/dev/cpr-qmp', '-mon', 'chardev=qmp0,mode=control']);
    expect(withQmpConsole(consoleArgv())).toEqual(consoleArgv());
  });

  it('tell a command line with the file channel from one without', () => {
    expect(hasFilesPort(['-M', 'virt', ...consoleArgv(), ...filesArgv('virtio-serial-device')])).toBe(true);
    expect(hasFilesPort(['-M', 'pc', ...consoleArgv(), ...filesArgv('virtio-serial-pci')])).toBe(true);
    expect(hasFilesPort(['-M', 'virt', ...consoleArgv()])).toBe(false);
    expect(hasFilesPort(['-device', 'virtserialport,chardev=c0,name=org.qemu.guest_agent.0'])).toBe(false);
  });
});
