import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { APPS, ALL_APIS } from '../../../envs/toolworld/apps/index.js';
import { TEMPLATES } from '../../../envs/toolworld/templates/index.js';
import { REPO } from '../../helpers/services.js';

const doc = readFileSync(`${REPO}/docs/toolworld.md`, 'utf8');

describe('docs/toolworld.md', () => {
  it('states the catalogue sizes and lists every API under its app', () => {
    expect(doc).toContain(`**${ALL_APIS.size} APIs in ${APPS.size} apps**`);
    for (const app of APPS.values()) {
      const section = doc.slice(doc.indexOf(`**${app.name}** —`));
      const table = section.slice(0, section.indexOf('\n\n', section.indexOf('|---')));
      expect([...table.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1])).toEqual([...app.apis.keys()]);
    }
  });

  it('lists every template with its group, level and apps', () => {
    expect(doc).toContain(`**${TEMPLATES.length} task templates**`);
    for (const t of TEMPLATES) expect(doc).toContain(`| \`${t.name}\` | ${t.group} | ${t.level} | ${t.apps.join(', ')} |`);
  });

  it('says the AppWorld adapter has not been run against a real server', () => {
    expect(doc).toContain('**It has not been run against a real AppWorld server.**');
  });
});
