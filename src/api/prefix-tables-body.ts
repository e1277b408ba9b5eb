import type { IncomingMessage } from 'node:http';
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import { createBrotliDecompress, createUnzip } from 'node:zlib';
import { CsvError, parse as parseCsv } from 'csv-parse';
import { parser as jsonTokens } from 'stream-json';
import { normalizePrefix } from '../domain/routing';
import type { PrefixEntry, PrefixSource } from '../services/prefix-tables';
import { validationFailed } from '../services/shared/errors';
import {
  bodyReadProblem,
  contentEncodingOf,
  notJson,
  unsupportedEncoding,
  type BodyEncoding,
} from './shared/json-body';
import { HttpProblem } from './shared/problem';

/**
 * A prefix table's entries as the request sends them, streamed: `text/csv` (one prefix a line,
 * an optional `prefix` header, LF or CRLF, a UTF-8 BOM tolerated) or JSON `{"prefixes": [...]}`.
 * Nothing is held but the line in hand. The first bad line ends the stream with a 400 naming its
 * line (CSV) or index (JSON) and value; a body past `maxBytes` ends it with a 413. A body sent
 * compressed (a Content-Encoding the JSON parser takes too: BODY_ENCODINGS) is
 * decoded as it comes, and `maxBytes` counts what it decodes to.
 */

export const ENTRY_TYPES = ['text/csv', 'application/json'] as const;

export function readPrefixes(req: IncomingMessage, maxBytes: number): PrefixSource {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'text/csv' && type !== 'application/json') {
    throw new HttpProblem(415, 'Unsupported media type', `Send the prefixes as ${ENTRY_TYPES.join(' or ')}.`);
  }
  const body = decoded(req, maxBytes);
  if (type === 'text/csv') {
    const csv = parseCsv({
      bom: true,
      record_delimiter: ['\r\n', '\n'],
      relax_column_count: true,
      skip_empty_lines: false,
    });
    // pipeline, not pipe: a 413 from the limit must end the parser's iteration too.
    return {
      entries: csvPrefixes(pipeline(body, limit(maxBytes), csv, () => undefined)),
      where: (at) => `line ${at}`,
    };
  }
  const json = jsonTokens({ packValues: true, streamValues: false, streamKeys: false });
  return {
    entries: jsonPrefixes(pipeline(body, limit(maxBytes), json, () => undefined)),
    where: (at) => `prefixes[${at}]`,
  };
}

/**
 * The body as its Content-Encoding says to read it (a 415 for one not decoded here). An
 * uncompressed body announcing more than `maxBytes` is refused before it is read.
 */
function decoded(req: IncomingMessage, maxBytes: number): Readable {
  const encoding = contentEncodingOf(req);
  if (encoding === 'identity') {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
    return req;
  }
  // Own keys only: "constructor" or "__proto__" must be a 415 like any other unknown coding.
  if (!Object.hasOwn(DECODERS, encoding)) throw unsupportedEncoding();
  const decoder = DECODERS[encoding as Exclude<BodyEncoding, 'identity'>]();
  // pipeline, not pipe: a client gone mid-body must end the decoder (and the import) too.
  return pipeline(req, decoder, () => undefined);
}

/** A decoder for each of BODY_ENCODINGS but identity (createUnzip takes gzip and zlib's deflate). */
const DECODERS: Record<Exclude<BodyEncoding, 'identity'>, () => Transform> = {
  gzip: createUnzip,
  deflate: createUnzip,
  br: createBrotliDecompress,
};

function badEntry(field: string, value: string, message: string) {
  // A line is shown as it came, cut short: a pasted file must not flood the answer.
  const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
  return validationFailed([{ field, message: `${message}: ${JSON.stringify(shown)}` }]);
}

const NOT_A_PREFIX = 'not an E.164 prefix (1 to 15 digits, an optional leading +)';

/** Records, not lines: `relax_column_count` lets a line with a comma through, to be named here. */
async function* csvPrefixes(records: AsyncIterable<string[]>): AsyncGenerator<PrefixEntry> {
  let line = 0;
  try {
    for await (const record of records) {
      line++;
      const value = record.length === 1 ? (record[0] ?? '') : record.join(',');
      if (line === 1 && value.trim().toLowerCase() === 'prefix') continue;
      const prefix = record.length === 1 ? normalizePrefix(value.trim()) : undefined;
      if (prefix === undefined) throw badEntry(`line ${line}`, value, NOT_A_PREFIX);
      yield { prefix, at: line };
    }
  } catch (err) {
    // A quote left open, say: csv-parse knows where.
    if (err instanceof CsvError) throw badEntry(`line ${line + 1}`, '', 'not a CSV line');
    throw bodyReadProblem(err) ?? err;
  }
}

async function* jsonPrefixes(tokens: AsyncIterable<{ name: string; value?: unknown }>): AsyncGenerator<PrefixEntry> {
  const shape = () => validationFailed([{ field: 'body', message: 'a JSON object {"prefixes": [...]}' }]);
  // The one shape accepted: startObject, key "prefixes", startArray, strings, endArray, endObject.
  let state: 'start' | 'key' | 'array' | 'items' | 'end' | 'done' = 'start';
  let index = 0;
  try {
    for await (const token of tokens) {
      if (state === 'start' && token.name === 'startObject') state = 'key';
      else if ((state === 'key' || state === 'end') && token.name === 'keyValue') {
        if (token.value !== 'prefixes') {
          throw validationFailed([{ field: String(token.value), message: 'unknown field' }]);
        }
        state = 'array';
      } else if (state === 'array' && token.name === 'startArray') state = 'items';
      else if (state === 'items' && token.name === 'stringValue') {
        const prefix = normalizePrefix(String(token.value));
        if (prefix === undefined) throw badEntry(`prefixes[${index}]`, String(token.value), NOT_A_PREFIX);
        yield { prefix, at: index };
        index++;
      } else if (state === 'items' && token.name === 'endArray') state = 'end';
      else if (state === 'end' && token.name === 'endObject') state = 'done';
      else if (state === 'items') {
        throw validationFailed([{ field: `prefixes[${index}]`, message: 'a string of digits' }]);
      } else throw shape();
    }
  } catch (err) {
    const problem = bodyReadProblem(err);
    if (problem) throw problem;
    if (err instanceof Error && !('kind' in err) && !(err instanceof HttpProblem)) {
      throw notJson();
    }
    throw err;
  }
  if (state !== 'done') throw shape();
}

/** Passes the body on, failing with a 413 once more than maxBytes have come. */
function limit(maxBytes: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      seen += chunk.length;
      if (seen > maxBytes) done(tooLarge(maxBytes));
      else done(null, chunk);
    },
  });
}

function tooLarge(maxBytes: number): HttpProblem {
  return new HttpProblem(413, 'Content too large', `A prefix import is at most ${maxBytes} bytes.`);
}
