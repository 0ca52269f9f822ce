// Runs in Node (vitest).
import { describe, expect, it } from 'vitest';
import type { LiveUpdateResult } from '../worker/api';
import { CHART_BARS, pauseChart } from './pause-chart';

const r = (from: string, to: string, pauseMs: number): LiveUpdateResult => ({
  from,
  to,
  pauseMs,
  route: 'cpr-exec',
  startedEarly: false,
  phases: { stateSaveMs: 20, teardownMs: 80, clearMs: 20, instantiateMs: 60, qemuInitMs: 50, stateLoadMs: pauseMs - 230 },
});

describe('pauseChart', () => {
  it('draws one bar per update, split by phase, with the pause written beside it', () => {
    const svg = pauseChart([r('qemu-system-arm@v1', 'qemu-system-arm@v2', 310), r('qemu-system-arm@v2', 'qemu-system-arm@v1', 290)]);
    expect(svg).toMatch(/^<svg /);
    expect(svg).toContain('arm@v1 → arm@v2');
    expect(svg).toContain('310 ms');
    expect(svg.match(/<title>state load: 80 ms<\/title>/g)).toHaveLength(1);
    expect(svg.match(/<rect /g)).toHaveLength(6 + 2 * 6); // legend + two bars of six phases
  });

  it('shows the latest updates only, escapes its texts, and is empty without updates', () => {
    expect(pauseChart([])).toBe('');
    const many = Array.from({ length: CHART_BARS + 5 }, (_, i) => r('a', 'b', 300 + i));
    expect(pauseChart(many)).not.toContain('>300 ms<');
    expect(pauseChart(many)).toContain(`>${300 + CHART_BARS + 4} ms<`);
    expect(pauseChart([r('<x>', 'y&z', 300)])).toContain('&#60;x&#62; → y&#38;z');
  });
});
