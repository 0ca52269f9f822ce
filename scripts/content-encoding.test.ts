import { describe, expect, it } from 'vitest';
import { negotiateEncoding, parseAcceptEncoding } from './content-encoding';

const both = ['br', 'gzip'] as const;

describe('parseAcceptEncoding', () => {
  it('reads codings and weights, case-insensitively, with spaces', () => {
    expect([...parseAcceptEncoding(' GZip ;Q=0.5 , br, *;q=0')]).toEqual([
      ['gzip', 0.5],
      ['br', 1],
      ['*', 0],
    ]);
  });

  it('leaves out entries whose weight is not a qvalue, ignores other parameters', () => {
    expect([...parseAcceptEncoding('br;q=2, gzip;q=abc, deflate;q=0.1234, zstd;level=3, identity;q=1.000')]).toEqual([
      ['zstd', 1],
      ['identity', 1],
    ]);
  });

  it('treats x-gzip as gzip and keeps the higher of two weights', () => {
    expect([...parseAcceptEncoding('x-gzip;q=0.2, gzip;q=0.7, br;q=0.3, br;q=0')]).toEqual([
      ['gzip', 0.7],
      ['br', 0.3],
    ]);
  });

  it('skips empty list elements', () => {
    expect([...parseAcceptEncoding(', ,br,,')]).toEqual([['br', 1]]);
  });
});

describe('negotiateEncoding', () => {
  it('sends br to a browser (Chromium and Firefox send these)', () => {
    expect(negotiateEncoding('gzip, deflate, br, zstd', both)).toBe('br');
    expect(negotiateEncoding('gzip, deflate, br', both)).toBe('br');
  });

  it('sends gzip to a client without br, identity to one without either', () => {
    expect(negotiateEncoding('gzip, deflate', both)).toBe('gzip');
    expect(negotiateEncoding('deflate', both)).toBe('identity');
  });

  it('honours q=0 as "not acceptable"', () => {
    expect(negotiateEncoding('br;q=0, gzip', both)).toBe('gzip');
    expect(negotiateEncoding('br;q=0.0, gzip;q=0', both)).toBe('identity');
    expect(negotiateEncoding('br;q=0', both)).toBe('identity');
  });

  it('follows the weights, and prefers the smaller on a tie', () => {
    expect(negotiateEncoding('br;q=0.5, gzip', both)).toBe('gzip');
    expect(negotiateEncoding('gzip;q=0.8, br;q=0.8', both)).toBe('br');
    expect(negotiateEncoding('gzip;q=0.5, identity', both)).toBe('identity');
    expect(negotiateEncoding('gzip;q=1, identity;q=1', both)).toBe('gzip');
    expect(negotiateEncoding('gzip;q=0.3, identity;q=0.2', both)).toBe('gzip');
    expect(negotiateEncoding('br;q=0.001, identity;q=0', both)).toBe('br');
  });

  it('gives an identity the header does not name its lowest positive weight', () => {
    expect(negotiateEncoding('br;q=0.001', both)).toBe('br');
    expect(negotiateEncoding('br;q=0.001', ['gzip'])).toBe('identity');
    expect(negotiateEncoding('br;q=0.2, gzip;q=0.5', both)).toBe('gzip');
    expect(negotiateEncoding('br;q=0, gzip;q=0', both)).toBe('identity');
  });

  it('sends only what is there', () => {
    expect(negotiateEncoding('gzip, deflate, br', ['gzip'])).toBe('gzip');
    expect(negotiateEncoding('br', ['gzip'])).toBe('identity');
    expect(negotiateEncoding('gzip, br', [])).toBe('identity');
  });

  it('reads * as every coding not named', () => {
    expect(negotiateEncoding('*', both)).toBe('br');
    expect(negotiateEncoding('*, br;q=0', both)).toBe('gzip');
    expect(negotiateEncoding('*;q=0.5, gzip', both)).toBe('gzip');
    expect(negotiateEncoding('*;q=0, gzip;q=0.1', both)).toBe('gzip');
    expect(negotiateEncoding('*;q=0, identity', both)).toBe('identity');
  });

  it('sends identity without a header, with an empty one, or when nothing is acceptable', () => {
    expect(negotiateEncoding(undefined, both)).toBe('identity');
    expect(negotiateEncoding('', both)).toBe('identity');
    expect(negotiateEncoding('identity', both)).toBe('identity');
    // Not even identity is acceptable: the server ignores the header.
    expect(negotiateEncoding('*;q=0', both)).toBe('identity');
    expect(negotiateEncoding('identity;q=0, deflate', both)).toBe('identity');
  });

  it('ignores a weight that is not a qvalue (the coding counts as not named)', () => {
    expect(negotiateEncoding('br;q=2, gzip', both)).toBe('gzip');
    expect(negotiateEncoding('br;q=high', both)).toBe('identity');
  });

  it('reads repeated headers as one list', () => {
    expect(negotiateEncoding(['gzip', 'br;q=0'], both)).toBe('gzip');
    expect(negotiateEncoding(['gzip;q=0.5', 'br'], both)).toBe('br');
  });

  it('accepts x-gzip for gzip', () => {
    expect(negotiateEncoding('x-gzip', both)).toBe('gzip');
  });
});
