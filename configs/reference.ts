/**
 * Renders the configuration reference (docs/config-reference.md) from the zod schema: every field with
 * its type, default and description. The schema's descriptions are the single source of this text.
 */
import { z } from 'zod';
import { RunConfigSchema } from './schema.js';

interface FieldRow {
  readonly path: string;
  readonly type: string;
  readonly defaultValue: string;
  readonly description: string;
}

type AnySchema = z.ZodType & { def: Record<string, unknown> & { type: string }; description?: string };

/** Walk wrappers (default, optional, prefault, pipe) down to the base schema, collecting default and description. */
function unwrap(schema: AnySchema): { base: AnySchema; defaultValue?: unknown; optional: boolean; description?: string } {
  let current = schema;
  let defaultValue: unknown;
  let optional = false;
  let description = schema.description;
  for (let i = 0; i < 10; i++) {
    const def = current.def;
    if (def.type === 'default' || def.type === 'prefault') {
      const v = def.defaultValue;
      defaultValue ??= typeof v === 'function' ? (v as () => unknown)() : v;
      current = def.innerType as AnySchema;
    } else if (def.type === 'optional') {
      optional = true;
      current = def.innerType as AnySchema;
    } else if (def.type === 'pipe') {
      current = def.in as AnySchema;
    } else break;
    description ??= current.description;
  }
  return { base: current, defaultValue, optional, description };
}

function typeName(schema: AnySchema): string {
  const def = schema.def;
  switch (def.type) {
    case 'enum':
      return Object.values(def.entries as Record<string, string>)
        .map((v) => `\`${v}\``)
        .join(' \\| ');
    case 'literal':
      return (def.values as unknown[]).map((v) => JSON.stringify(v)).join(' \\| ');
    case 'record':
      return 'mapping';
    case 'array':
      return 'list';
    default:
      return def.type;
  }
}

function collect(schema: AnySchema, prefix: string, rows: FieldRow[]): void {
  const shape = (schema.def.shape ?? (schema as unknown as { shape?: Record<string, AnySchema> }).shape) as
    Record<string, AnySchema> | undefined;
  if (!shape) return;
  for (const [key, child] of Object.entries(shape)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const { base, defaultValue, optional, description } = unwrap(child);
    const isObject = base.def.type === 'object';
    rows.push({
      path,
      type: isObject ? 'section' : typeName(base),
      defaultValue: isObject
        ? ''
        : defaultValue !== undefined
          ? `\`${JSON.stringify(defaultValue)}\``
          : optional
            ? '(derived / unset)'
            : '(required)',
      description: (description ?? '').replace(/\|/g, '\\|'),
    });
    if (isObject) collect(base, path, rows);
  }
}

/** The reference as Markdown. */
export function renderConfigReference(): string {
  const rows: FieldRow[] = [];
  collect(unwrap(RunConfigSchema as unknown as AnySchema).base, '', rows);
  const lines = [
    '# Configuration reference',
    '',
    'Generated from the zod schema in `configs/schema.ts` by `horizon config-reference --out docs/config-reference.md`;',
    'do not edit by hand. Every field can be set in the YAML file or on the command line with `--set path=value`.',
    'Unknown keys are errors. `algorithm` presets fill `loop.*` fields you did not write (see `configs/presets.ts`).',
    '',
    '| field | type | default | description |',
    '|---|---|---|---|',
    ...rows.map((r) => `| \`${r.path}\` | ${r.type} | ${r.defaultValue} | ${r.description} |`),
    '',
  ];
  return lines.join('\n');
}
