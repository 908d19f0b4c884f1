/** The app catalogue, in documentation order. */
import type { ApiDefinition, AppDefinition } from '../api.js';
import { apiDocsApp } from './api-docs.js';
import { calendarApp } from './calendar.js';
import { filesApp } from './files.js';
import { mailApp } from './mail.js';
import { notesApp } from './notes.js';
import { phoneApp } from './phone.js';
import { supervisorApp } from './supervisor.js';
import { todoApp } from './todo.js';
import { walletApp } from './wallet.js';

/** Every app by name. */
export const APPS: ReadonlyMap<string, AppDefinition> = new Map(
  [supervisorApp, apiDocsApp, phoneApp, mailApp, notesApp, walletApp, filesApp, calendarApp, todoApp].map((app) => [app.name, app]),
);

/** Every API of every app, `app.api` → definition. */
export const ALL_APIS: ReadonlyMap<string, ApiDefinition> = new Map(
  [...APPS.values()].flatMap((app) => [...app.apis.values()].map((api) => [`${app.name}.${api.name}`, api] as const)),
);

/** Names of the apps that hold data (everything but supervisor and api_docs). */
export const DATA_APPS: readonly string[] = [...APPS.values()].filter((app) => app.login).map((app) => app.name);

export { apiDoc, apiSignature, type ApiDoc, type ParameterDoc } from './api-docs.js';
