// Runs on the page's main thread; uses no DOM (unit-tested in Node).
//
// The advanced panel's "extra QEMU arguments": one line as a shell would
// split it (spaces separate, quotes group, backslash escapes), so that a
// command line copied from QEMU's documentation works as typed.

/** The words of `line`, or an error message for an unclosed quote. */
export function splitArgs(line: string): { args: string[] } | { error: string } {
  const args: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) word += line[++i];
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) args.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) return { error: `the ${quote === '"' ? 'double' : 'single'} quote opened in the extra QEMU arguments is not closed` };
  if (inWord) args.push(word);
  return { args };
}
