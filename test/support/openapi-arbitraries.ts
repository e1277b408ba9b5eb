import fc from 'fast-check';

/**
 * fast-check arbitraries from the JSON Schemas of an OpenAPI 3.1 document: values the schema
 * allows (`valid`), and values it refuses (`invalid`), for a property-based test driven by the
 * document alone.
 */

export interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  not?: JsonSchema;
  minProperties?: number;
  allOf?: JsonSchema[];
  default?: unknown;
}

export type Resolve = (schema: JsonSchema) => JsonSchema;

export function resolver(components: Record<string, JsonSchema>): Resolve {
  return (schema) => {
    let s = schema;
    while (s.$ref) {
      const name = s.$ref.replace('#/components/schemas/', '');
      const next = components[name];
      if (!next) throw new Error(`unknown $ref ${s.$ref}`);
      s = next;
    }
    return s;
  };
}

const MAX_DEPTH = 4;

/** A value the schema allows (the common keywords; patterns through fc.stringMatching). */
export function valid(schema: JsonSchema, resolve: Resolve, depth = 0): fc.Arbitrary<unknown> {
  const s = resolve(schema);
  if (s.const !== undefined) return fc.constant(s.const);
  if (s.enum) return fc.constantFrom(...s.enum);
  const alternatives = s.anyOf ?? s.oneOf;
  if (alternatives && s.properties) {
    // An object whose branches only add `required`: one branch each, without what the others require.
    return fc.oneof(
      ...alternatives.map((branch, i) => {
        const others = alternatives
          .flatMap((b, j) => (j === i ? [] : (b.required ?? [])))
          .filter((k) => !branch.required?.includes(k));
        const properties = Object.fromEntries(Object.entries(s.properties ?? {}).filter(([k]) => !others.includes(k)));
        return valid(
          {
            ...s,
            oneOf: undefined,
            anyOf: undefined,
            properties,
            required: [...(s.required ?? []), ...(branch.required ?? [])],
          },
          resolve,
          depth,
        );
      }),
    );
  }
  if (alternatives) return fc.oneof(...alternatives.map((a) => valid(a, resolve, depth)));
  if (s.allOf?.length === 1) return valid(s.allOf[0]!, resolve, depth);
  const types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
  if (types.length > 1) return fc.oneof(...types.map((t) => valid({ ...s, type: t }, resolve, depth)));
  switch (types[0]) {
    case 'null':
      return fc.constant(null);
    case 'boolean':
      return fc.boolean();
    case 'integer':
      return fc.integer({
        min: s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : -1_000_000),
        max: s.maximum ?? (s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - 1 : 1_000_000),
      });
    case 'number':
      return fc.double({
        min: s.minimum ?? s.exclusiveMinimum ?? -1e6,
        max: s.maximum ?? s.exclusiveMaximum ?? 1e6,
        noNaN: true,
        noDefaultInfinity: true,
        minExcluded: s.exclusiveMinimum !== undefined,
        maxExcluded: s.exclusiveMaximum !== undefined,
      });
    case 'string':
      return validString(s);
    case 'array': {
      // Deep down only as many items as the schema requires, so the value stays valid.
      const minLength = s.minItems ?? 0;
      const maxLength = depth >= MAX_DEPTH ? minLength : Math.max(minLength, Math.min(s.maxItems ?? 3, 3));
      const items = valid(s.items ?? {}, resolve, depth + 1);
      return s.uniqueItems
        ? fc.uniqueArray(items, { minLength, maxLength, selector: (v) => JSON.stringify(v) })
        : fc.array(items, { minLength, maxLength });
    }
    case 'object':
    default: {
      if (!s.properties) return fc.constant({});
      const required = new Set(s.required ?? []);
      const record: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [name, prop] of Object.entries(s.properties)) record[name] = valid(prop, resolve, depth + 1);
      const forbidden = s.not?.required;
      return fc
        .record(record, { requiredKeys: [...required].filter((k) => k in record) })
        .filter((o) => Object.keys(o).length >= (s.minProperties ?? 0))
        .filter((o) => !forbidden || !forbidden.every((k) => k in o));
    }
  }
}

function validString(s: JsonSchema): fc.Arbitrary<string> {
  if (s.format === 'uuid') return fc.uuid();
  if (s.format === 'date-time') {
    return fc
      .date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true })
      .map((d) => d.toISOString());
  }
  const min = s.minLength ?? 0;
  const max = Math.min(s.maxLength ?? 40, 200);
  if (s.pattern) {
    return fc.stringMatching(new RegExp(s.pattern)).filter((v) => v.length >= min && v.length <= max);
  }
  return fc.string({ minLength: min, maxLength: Math.max(min, max) });
}

/** Something no schema of a parameter allows: to see the server refuse it with a documented 4xx. */
export const garbage: fc.Arbitrary<string> = fc.oneof(
  fc.constant(''),
  fc.constant('%00'),
  fc.constant('not-a-uuid'),
  fc.string({ maxLength: 300 }),
  fc.constantFrom('-1', '0', '1e309', 'NaN', 'null', '[]', '{}', '../..', '9'.repeat(40)),
);
