// Runs in Node, inside Vite (dev and preview servers): which precompressed
// form of an artifact to send for a request's Accept-Encoding.
//
// RFC 9110, section 12.5.3: codings are case-insensitive tokens, each with
// an optional weight `;q=` from 0 to 1 (default 1); q=0 means "not
// acceptable"; `*` stands for every coding the header does not name;
// `identity` (no coding) is acceptable unless it is given q=0, or `*` is
// and identity is not named. A coding the header does not name (and no
// `*`) is not acceptable. x-gzip is gzip. The RFC gives an identity the
// header does not name no weight; here it gets the lowest positive weight
// of the header (as the negotiator package used by Express does), so
// `gzip;q=0.5` still means "gzip rather than nothing".

/** The encodings the servers can send, smallest first (our preference). */
export type Encoding = 'br' | 'gzip' | 'identity';
const PREFERENCE: readonly Encoding[] = ['br', 'gzip', 'identity'];

/** Coding (lower case) → its weight, as the header gives them. An entry
 * whose weight is not a valid qvalue is left out, as if absent. */
export function parseAcceptEncoding(header: string): Map<string, number> {
  const weights = new Map<string, number>();
  for (const item of header.split(',')) {
    const [name, ...params] = item.split(';').map((s) => s.trim());
    if (!name) continue;
    let q = 1;
    let valid = true;
    for (const p of params) {
      const m = /^q\s*=\s*(.*)$/i.exec(p);
      if (!m) continue; // no other parameters are defined; ignore them
      if (!/^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/.test(m[1]!)) valid = false;
      else q = Number(m[1]);
    }
    if (!valid) continue;
    const coding = name.toLowerCase() === 'x-gzip' ? 'gzip' : name.toLowerCase();
    // Named twice: the higher weight wins (a client's intent is unclear).
    weights.set(coding, Math.max(q, weights.get(coding) ?? 0));
  }
  return weights;
}

/** The weight the header gives `coding`. */
function weight(weights: Map<string, number>, coding: Encoding): number {
  const named = weights.get(coding);
  if (named !== undefined) return named;
  const star = weights.get('*');
  if (star !== undefined) return star;
  if (coding !== 'identity') return 0;
  const positive = [...weights.values()].filter((q) => q > 0);
  return positive.length ? Math.min(...positive) : 1;
}

/**
 * The encoding to send: the acceptable one (q > 0) with the highest
 * weight among `available` and identity; on equal weights the smaller
 * (br, then gzip, then identity). No header: identity (RFC 9110 lets any
 * coding be sent then, but a client that sends none, such as curl
 * without --compressed, expects none). When nothing is acceptable, not
 * even identity, identity all the same: RFC 9110 lets a server ignore
 * the header rather than answer 406, and an unencoded body is the one
 * every client can read.
 */
export function negotiateEncoding(header: string | string[] | undefined, available: readonly Encoding[]): Encoding {
  if (header === undefined) return 'identity';
  const weights = parseAcceptEncoding(Array.isArray(header) ? header.join(',') : header);
  let best: Encoding = 'identity';
  let bestQ = 0;
  for (const coding of PREFERENCE) {
    if (coding !== 'identity' && !available.includes(coding)) continue;
    const q = weight(weights, coding);
    if (q > bestQ) {
      best = coding;
      bestQ = q;
    }
  }
  return best;
}
