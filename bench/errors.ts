// Runs in Node: an error as the one line the results and the log keep.

/** The first line of an error, without Playwright's "page.evaluate: " prefix. */
export const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0]!.replace(/^page\.evaluate: /, '').slice(0, 300);
