/**
 * `api_docs`: the documentation of every app, served as APIs (spec "Shape"): the agent lists the apps,
 * the APIs of an app, and the full documentation of one API (parameters with types, defaults and limits,
 * what it returns). Parameter documentation is generated from the same zod schema that validates calls.
 */
import { z } from 'zod';
import { ApiError, api, defineApp, type ApiContext, type ApiDefinition, type AppDefinition } from '../api.js';

/** One documented parameter. */
export interface ParameterDoc {
  readonly name: string;
  readonly type: string;
  readonly required: boolean;
  readonly description: string;
  readonly default?: unknown;
  readonly constraints?: string;
}

/** What `show_api_doc` returns. */
export interface ApiDoc {
  readonly app: string;
  readonly api: string;
  readonly description: string;
  readonly parameters: readonly ParameterDoc[];
  readonly returns: string;
}

const docCache = new WeakMap<ApiDefinition, ApiDoc>();

interface JsonSchemaProperty {
  type?: string | string[];
  enum?: unknown[];
  items?: JsonSchemaProperty;
  description?: string;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  anyOf?: JsonSchemaProperty[];
}

function typeName(p: JsonSchemaProperty): string {
  if (p.enum) return p.enum.map(String).join('|');
  if (p.anyOf) return p.anyOf.map(typeName).join('|');
  if (Array.isArray(p.type)) return p.type.join('|');
  if (p.type === 'array') return `list of ${p.items ? typeName(p.items) : 'values'}`;
  return p.type ?? 'any';
}

function constraintsOf(p: JsonSchemaProperty): string | undefined {
  const parts: string[] = [];
  if (p.minimum !== undefined && p.minimum > -Number.MAX_SAFE_INTEGER) parts.push(`>= ${p.minimum}`);
  if (p.maximum !== undefined && p.maximum < Number.MAX_SAFE_INTEGER) parts.push(`<= ${p.maximum}`);
  if (p.minLength !== undefined && p.minLength > 0) parts.push(`at least ${p.minLength} character${p.minLength === 1 ? '' : 's'}`);
  if (p.maxLength !== undefined) parts.push(`at most ${p.maxLength} characters`);
  return parts.length > 0 ? parts.join(', ') : undefined;
}

/** The documentation of one API (cached per definition). */
export function apiDoc(api: ApiDefinition): ApiDoc {
  const cached = docCache.get(api);
  if (cached) return cached;
  const json = z.toJSONSchema(api.schema, { io: 'input', unrepresentable: 'any' }) as {
    properties?: Record<string, JsonSchemaProperty>;
    required?: string[];
  };
  const required = new Set(json.required ?? []);
  const parameters = Object.entries(json.properties ?? {}).map(([name, p]): ParameterDoc => {
    const doc: { -readonly [K in keyof ParameterDoc]: ParameterDoc[K] } = {
      name,
      type: typeName(p),
      required: required.has(name),
      description: p.description ?? '',
    };
    if (p.default !== undefined) doc.default = p.default;
    const constraints = constraintsOf(p);
    if (constraints) doc.constraints = constraints;
    return doc;
  });
  const doc: ApiDoc = { app: api.app, api: api.name, description: api.description, parameters, returns: api.returns };
  docCache.set(api, doc);
  return doc;
}

/** A one-line signature, `notes.delete_note {note_id}` (optional parameters in brackets, tokens left out). */
export function apiSignature(api: ApiDefinition): string {
  const params = apiDoc(api)
    .parameters.filter((p) => p.name !== 'access_token')
    .map((p) => (p.required ? p.name : `[${p.name}]`));
  return `${api.app}.${api.name}${params.length > 0 ? ` {${params.join(', ')}}` : ''}`;
}

function appNamed(ctx: ApiContext, name: string): AppDefinition {
  const app = ctx.apps.get(name);
  if (app === undefined) throw new ApiError(404, `No app named ${name}; apps: ${[...ctx.apps.keys()].join(', ')}.`);
  return app;
}

/** The api_docs app (no login). */
export const apiDocsApp = defineApp({ name: 'api_docs', description: 'Documentation of every app and API.', login: false }, [
  api({
    name: 'show_app_descriptions',
    description: 'List the apps with a one-line description each.',
    returns: '[{name, description}]',
    args: {},
    run(ctx) {
      return [...ctx.apps.values()].map((app) => ({ name: app.name, description: app.description }));
    },
  }),
  api({
    name: 'show_api_descriptions',
    description: 'List the APIs of an app with a one-line description each.',
    returns: '[{name, description}]',
    args: { app_name: z.string().min(1).describe('Name of the app.') },
    run(ctx, args) {
      return [...appNamed(ctx, args.app_name).apis.values()].map((api) => ({ name: api.name, description: api.description }));
    },
  }),
  api({
    name: 'show_api_doc',
    description: 'Show the full documentation of one API: parameters and what it returns.',
    returns: '{app, api, description, parameters: [{name, type, required, description, default?, constraints?}], returns}',
    args: {
      app_name: z.string().min(1).describe('Name of the app.'),
      api_name: z.string().min(1).describe('Name of the API.'),
    },
    run(ctx, args) {
      const app = appNamed(ctx, args.app_name);
      const api = app.apis.get(args.api_name);
      if (api === undefined) {
        throw new ApiError(404, `App ${app.name} has no API named ${args.api_name}; APIs: ${[...app.apis.keys()].join(', ')}.`);
      }
      ctx.session.docsShown.add(`${app.name}.${api.name}`);
      return apiDoc(api);
    },
  }),
]);
