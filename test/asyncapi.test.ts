import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { EventEnvelopeSchema, inboundEvents, outboundEvents } from '../src/events/catalog';

/**
 * docs/asyncapi.yaml against src/events/catalog.ts, the schemas the publishers are typed by:
 * the same channels, and for every message the same required fields and properties, nested
 * objects and array items included. Descriptions, formats and examples are the document's own.
 */

type Node = Record<string, unknown>;
interface Shape {
  required: string[];
  properties: Record<string, Shape>;
  items?: Shape;
}

const doc = parse(readFileSync(path.resolve(__dirname, '../docs/asyncapi.yaml'), 'utf8')) as Node;

function deref(node: Node, root: Node): Node {
  const ref = node.$ref;
  if (typeof ref !== 'string') return node;
  const target = ref
    .replace(/^#\//, '')
    .split('/')
    .reduce<unknown>((at, key) => (at as Node)[key], root);
  return deref(target as Node, root);
}

/** The comparable skeleton of a JSON schema: nullable unions collapse to their non-null branch. */
function shapeOf(raw: Node, root: Node): Shape {
  const node = deref(raw, root);
  const union = (node.anyOf ?? node.oneOf) as Node[] | undefined;
  if (union) {
    const branches = union.map((b) => deref(b, root)).filter((b) => b.type !== 'null');
    if (branches.length === 1 && branches[0]) return shapeOf(branches[0], root);
  }
  const properties = Object.fromEntries(
    Object.entries((node.properties ?? {}) as Record<string, Node>).map(([k, v]) => [k, shapeOf(v, root)]),
  );
  const shape: Shape = { required: [...((node.required ?? []) as string[])].sort(), properties };
  if (node.items) shape.items = shapeOf(node.items as Node, root);
  return shape;
}

function zodShape(schema: z.ZodType): Shape {
  const json = z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' }) as Node;
  return shapeOf(json, json);
}

interface Channel {
  address: string;
  messages: Record<string, Node>;
}

const channels = Object.values(doc.channels as Record<string, Channel>);
const messageOf = (channel: Channel): Node => deref(Object.values(channel.messages)[0] as Node, doc);

describe('AsyncAPI document (docs/asyncapi.yaml)', () => {
  it('has one channel per catalog subject, outbound and inbound, and no other', () => {
    const documented = channels.map((c) => c.address).sort();
    expect(documented).toEqual([...outboundEvents.keys(), ...inboundEvents.keys()].sort());
  });

  it('sends every outbound channel and receives every inbound one', () => {
    const operations = Object.values(doc.operations as Record<string, { action: string; channel: Node }>);
    for (const channel of channels) {
      const ops = operations.filter((op) => deref(op.channel, doc) === (channel as unknown as Node));
      const expected = inboundEvents.has(channel.address) ? 'receive' : 'send';
      expect({ address: channel.address, actions: ops.map((op) => op.action) }).toEqual({
        address: channel.address,
        actions: [expected],
      });
    }
  });

  it.each([...outboundEvents.entries()])('%s: envelope and data match the catalog', (subject, data) => {
    const channel = channels.find((c) => c.address === subject);
    expect(channel).toBeDefined();
    const payload = deref(messageOf(channel as Channel).payload as Node, doc);
    const [envelope, specific] = (payload.allOf as Node[]).map((n) => deref(n, doc));
    expect(shapeOf(envelope as Node, doc)).toEqual(zodShape(EventEnvelopeSchema));
    const props = (specific as Node).properties as Record<string, Node>;
    expect(props.type?.const).toBe(subject);
    expect(shapeOf(props.data as Node, doc)).toEqual(zodShape(data));
  });

  it.each([...inboundEvents.entries()])('%s: the report matches the catalog', (address, report) => {
    const channel = channels.find((c) => c.address === address);
    expect(channel).toBeDefined();
    const payload = messageOf(channel as Channel).payload as Node;
    expect(shapeOf(payload, doc)).toEqual(zodShape(report));
  });

  it('catches drift: a field the catalog does not have is reported', () => {
    const drifted = zodShape(z.object({ operator: z.object({ id: z.string() }), extra: z.string() }));
    const documented = shapeOf({ $ref: '#/components/schemas/OperatorData' }, doc);
    expect(documented).not.toEqual(drifted);
  });
});
