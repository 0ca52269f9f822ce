// The guest shell's prompt, for everything that types into a guest from
// Node (smoke tests, e2e tests, benchmarks).

/** The output ends at a prompt: the shell waits for input. busybox ash
 * asks the terminal for the cursor position (ESC[6n) right after the
 * prompt, often in the same chunk (a bare /# $/ then misses it), and input
 * typed before the answer is lost. */
export const SHELL_PROMPT = /# (\x1b\[6n)?$/;

/** A prompt at the end of any line: in a transcript, where kernel messages
 * may follow it. */
export const SHELL_PROMPT_LINE = new RegExp(SHELL_PROMPT.source, 'm');
