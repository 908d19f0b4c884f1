/** The template catalogue, in a fixed order (template ids are positions in it). */
import { calendarTemplates } from './calendar.js';
import { challengeTemplates } from './challenge.js';
import { filesTemplates } from './files.js';
import { mailTemplates } from './mail.js';
import { notesTemplates } from './notes.js';
import { phoneTemplates } from './phone.js';
import type { TaskTemplate } from './template.js';
import { walletTemplates } from './wallet.js';

/** Every template: the normal ones (train, dev, test-normal) first, then the challenge ones. */
export const TEMPLATES: readonly TaskTemplate[] = [
  ...notesTemplates,
  ...phoneTemplates,
  ...mailTemplates,
  ...walletTemplates,
  ...filesTemplates,
  ...calendarTemplates,
  ...challengeTemplates,
];

/** Templates by name. */
export const TEMPLATES_BY_NAME: ReadonlyMap<string, TaskTemplate> = new Map(TEMPLATES.map((t) => [t.name, t]));

if (TEMPLATES_BY_NAME.size !== TEMPLATES.length) throw new Error('toolworld: two templates share a name');

export type { Level, TaskDraft, TaskTemplate, TemplateGroup } from './template.js';
