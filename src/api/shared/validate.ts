import type { z } from 'zod';
import { unprocessable, validationFailed, type FieldError } from '../../services/shared/errors';

/**
 * Marks a refinement the OpenAPI document cannot state (one field against another): failing only
 * such checks is a 422, so every request the document allows is either taken or refused with an
 * answer it lists for a reason the schemas cannot see.
 */
export const BEYOND_SCHEMA = { beyondSchema: true } as const;

function fieldName(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)),
    '',
  );
}

/** Parses a request part with its schema; a failure names every bad field (400, or 422: BEYOND_SCHEMA). */
export function parse<S extends z.ZodType>(schema: S, value: unknown, part: 'body' | 'query' | 'path'): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const errors: FieldError[] = result.error.issues.flatMap((issue) => {
    const base = fieldName(issue.path);
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ field: base ? `${base}.${key}` : key, message: 'unknown field' }));
    }
    return [{ field: base || part, message: issue.message }];
  });
  const beyondSchema = result.error.issues.every(
    (issue) => issue.code === 'custom' && (issue.params as { beyondSchema?: boolean } | undefined)?.beyondSchema,
  );
  throw beyondSchema ? unprocessable(errors) : validationFailed(errors);
}
