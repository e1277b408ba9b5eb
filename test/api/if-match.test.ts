import fc from 'fast-check';
import { IF_MATCH_PATTERN, namesCurrentEtag, parseIfMatch, requiredIfMatch } from '../../src/api/shared/http';
import { checkVersion, ServiceError } from '../../src/services/shared/errors';

/** If-Match per RFC 9110 13.1.1, parsed and compared strongly against the current version. */

const matches = (header: string, current: number) => {
  const expected = parseIfMatch(header);
  if (expected === undefined) return 'absent';
  try {
    checkVersion(expected, current);
    return 'matches';
  } catch (err) {
    return (err as ServiceError).kind;
  }
};

describe('If-Match', () => {
  it.each([
    ['"7"', 'matches'],
    ['*', 'matches'],
    [' "7" ', 'matches'],
    ['"3", "7"', 'matches'],
    ['"3","7"', 'matches'],
    ['"3", , "7",', 'matches'],
    ['"3"', 'precondition_failed'],
    ['W/"7"', 'precondition_failed'],
    ['W/"7", "3"', 'precondition_failed'],
    ['"v1"', 'precondition_failed'],
    ['"7,8"', 'precondition_failed'],
    ['""', 'precondition_failed'],
    ['', 'absent'],
  ])('%s against version 7: %s', (header, outcome) => {
    expect(matches(header, 7)).toBe(outcome);
  });

  it.each(['7', '"7', 'W/7', '"7" "8"', 'w/"7"', ',', '"7";', '* , "7"', '"a"b"'])(
    'refuses %s as malformed (400 naming If-Match)',
    (header) => {
      expect(() => parseIfMatch(header)).toThrow(expect.objectContaining({ kind: 'validation' }));
      try {
        parseIfMatch(header);
      } catch (err) {
        expect(JSON.stringify((err as ServiceError).extra)).toContain('If-Match');
      }
    },
  );

  it('takes exactly the headers the OpenAPI pattern describes', () => {
    const piece = fc.constantFrom(' ', '\t', ',', '*', 'W/', '"', '7', 'v', '\x80', '\x7f', "'", '\xa0');
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 12 }).map((p) => p.join('')),
        (header) => {
          let parsed = true;
          try {
            parseIfMatch(header);
          } catch {
            parsed = false;
          }
          expect(parsed).toBe(IF_MATCH_PATTERN.test(header));
        },
      ),
      { numRuns: 5000, seed: 20261202 },
    );
  });

  it('is required where a write must name its version: absent is 428', () => {
    expect(() => requiredIfMatch('')).toThrow(expect.objectContaining({ kind: 'precondition_required' }));
    expect(requiredIfMatch('*')).toBe('any');
  });
});

describe('If-None-Match', () => {
  it('names the current ETag by *, by a tag of its list, or by a weak tag; nothing else does', () => {
    for (const header of ['"3"', '*', ' "1", W/"3" ', 'W/"3"']) expect(namesCurrentEtag(header, '"3"')).toBe(true);
    for (const header of ['"2"', '3', '"33"', 'W/"2", "4"', 'garbage'])
      expect(namesCurrentEtag(header, '"3"')).toBe(false);
  });
});
