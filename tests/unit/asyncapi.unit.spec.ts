import { readFile } from 'node:fs/promises';
import { Parser } from '@asyncapi/parser';
import { ProtoBuffSchemaParser } from '@asyncapi/protobuf-schema-parser';
import { ScalarType, type DescField } from '@bufbuild/protobuf';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { EVENT_TYPES } from '../../packages/events/src/index.js';
import { file_identity_v1_events } from '../../src/gen/identity/v1/events_pb.js';
import { SUBJECTS, subjectFor } from '../../src/infrastructure/outbox/event-codec.js';

/**
 * asyncapi.yaml against what it describes: the AsyncAPI parser (protobuf payloads included),
 * events.proto (through its generated descriptors) and the relay's subject table, each both
 * ways, so that none of the three can change without the others.
 */
const SOURCE = await readFile(new URL('../../asyncapi.yaml', import.meta.url), 'utf8');
const PREFIX = 'identity';
const HEADERS = ['Nats-Msg-Id', 'ce-specversion', 'ce-id', 'ce-type', 'ce-source', 'ce-time', 'content-type'];

interface RawMessage {
  readonly name: string;
  readonly headers: { allOf: { $ref?: string; properties?: Record<string, { const?: string }> }[] };
  readonly payload: { schemaFormat: string; schema: string };
}
interface RawDocument {
  readonly channels: Record<string, { address: string; messages: Record<string, { $ref: string }> }>;
  readonly components: { messages: Record<string, RawMessage>; schemas: { CloudEventHeaders: { required: string[] } } };
}
const raw = parseYaml(SOURCE) as RawDocument;

/** Events are the messages of events.proto with an event id (all of them today). */
const protoEvents = file_identity_v1_events.messages.filter((message) => message.fields.some((field) => field.name === 'event_id'));

/** `type name = number;` of each field, as written in the document's protobuf text. */
function fieldsInText(text: string, message: string): string[] {
  const body = new RegExp(`message ${message} \\{([^}]*)\\}`).exec(text)?.[1] ?? '';
  return [...body.matchAll(/^\s*([\w.]+)\s+(\w+)\s*=\s*(\d+);/gm)].map(([, type, name, number]) => `${type} ${name} = ${number}`);
}

/** The same from the descriptor generated from events.proto. */
function fieldsInProto(field: DescField): string {
  const type =
    field.fieldKind === 'scalar' ? ScalarType[field.scalar].toLowerCase() : field.fieldKind === 'enum' ? field.enum.name : field.fieldKind === 'message' ? field.message.typeName : field.fieldKind;
  return `${type} ${field.name} = ${field.number}`;
}

describe('asyncapi.yaml', () => {
  let diagnostics: { severity: number; message: string; path: (string | number)[] }[];
  let channelAddresses: string[];

  beforeAll(async () => {
    const parser = new Parser();
    parser.registerSchemaParser(ProtoBuffSchemaParser());
    const parsed = await parser.parse(SOURCE);
    diagnostics = parsed.diagnostics;
    channelAddresses = parsed.document?.channels().all().map((channel) => channel.address() ?? '') ?? [];
  });

  it('is valid AsyncAPI 3.0 for the parser, protobuf payloads included', () => {
    // Severity 0 is an error; warnings (hints about descriptions, licences) do not fail it.
    expect(diagnostics.filter((d) => d.severity === 0).map((d) => `${d.path.join('.')}: ${d.message}`)).toEqual([]);
    expect(channelAddresses).toHaveLength(Object.keys(raw.channels).length);
  });

  it('has one message per event of events.proto, and no other', () => {
    expect(Object.keys(raw.components.messages).sort()).toEqual(protoEvents.map((message) => message.name).sort());
  });

  it('gives each message the fields, types and numbers of events.proto', () => {
    for (const event of protoEvents) {
      const message = raw.components.messages[event.name]!;
      expect(message.payload.schemaFormat).toBe('application/vnd.google.protobuf;version=3');
      expect(message.payload.schema).toContain('package identity.v1;');
      expect(fieldsInText(message.payload.schema, event.name), event.name).toEqual(event.fields.map(fieldsInProto));
    }
  });

  it('names every header on every message, with its ce-type', () => {
    expect(raw.components.schemas.CloudEventHeaders.required.sort()).toEqual([...HEADERS].sort());
    for (const [name, message] of Object.entries(raw.components.messages)) {
      expect(message.headers.allOf[0]?.$ref).toBe('#/components/schemas/CloudEventHeaders');
      expect(message.headers.allOf[1]?.properties?.['ce-type']?.const).toBe(`identity.v1.${name}`);
    }
  });

  it('has a channel for each subject the relay publishes, and only those', () => {
    const published = Object.keys(SUBJECTS).map((type) => subjectFor(PREFIX, type));
    expect([...channelAddresses].sort()).toEqual([...published].sort());
  });

  it('puts each message on the subject the relay publishes its type on', () => {
    for (const channel of Object.values(raw.channels)) {
      const names = Object.keys(channel.messages);
      expect(names).toHaveLength(1);
      expect(subjectFor(PREFIX, `identity.v1.${names[0]}`)).toBe(channel.address);
    }
  });

  it('agrees with the subscriber package on types and subjects', () => {
    expect(Object.fromEntries(Object.entries(EVENT_TYPES).map(([type, { subject }]) => [type, subject]))).toEqual(SUBJECTS);
  });
});
