/**
 * Every task template, on a sample of seeds: the scripted solver passes all checks; an agent that does
 * nothing passes none; an agent that does the task plus extra damage fails exactly "nothing extraneous".
 */
import { describe, expect, it } from 'vitest';
import { ToolworldEnv, runSolver } from '../../../envs/toolworld/env.js';
import { toolworldOptionsSchema, type ToolworldOptions } from '../../../envs/toolworld/options.js';
import { formatCalls } from '../../../envs/toolworld/parser.js';
import { locateTask, templatePool } from '../../../envs/toolworld/tasks.js';
import { TEMPLATES } from '../../../envs/toolworld/templates/index.js';
import type { TaskRef } from '../../../envs/types.js';

const FULL = toolworldOptionsSchema.parse({});
const COMPACT = toolworldOptionsSchema.parse({
  prompt: 'compact',
  docs: 'off',
  auth: false,
  worldSize: 'tiny',
  reminder: false,
  maxCallsPerTurn: 4,
});
const ENFORCED = toolworldOptionsSchema.parse({ docs: 'enforced', worldSize: 'small', pageSize: 2 });
const clean = { mistake: 0, slip: 0 };

/** The three variants (and two seeds) of the first scenario of `name` in its split. */
function tasksOf(name: string, options: ToolworldOptions): TaskRef[] {
  const template = TEMPLATES.find((t) => t.name === name)!;
  const split = template.group === 'challenge' ? 'test-challenge' : 'train';
  const position = templatePool(split, options).findIndex((t) => t.name === name);
  return [0, 1].flatMap((seed) => [0, 1, 2].map((variant) => ({ split, index: 3 * position + variant, seed })));
}

describe('the template catalogue', () => {
  it('has at least 50 templates, normal and challenge ones, at every level', () => {
    expect(TEMPLATES.length).toBeGreaterThanOrEqual(50);
    expect(new Set(TEMPLATES.map((t) => t.level))).toEqual(new Set([1, 2, 3]));
    expect(TEMPLATES.filter((t) => t.group === 'challenge').length).toBeGreaterThanOrEqual(10);
  });

  it('makes test-challenge need an unseen app or an unseen composition of apps', () => {
    const normal = TEMPLATES.filter((t) => t.group === 'normal');
    const seenApps = new Set(normal.flatMap((t) => t.apps));
    const seenCombos = new Set(normal.map((t) => [...t.apps].sort().join('+')));
    for (const t of TEMPLATES.filter((x) => x.group === 'challenge')) {
      const unseenApp = t.apps.some((a) => !seenApps.has(a));
      expect(unseenApp || (t.apps.length > 1 && !seenCombos.has([...t.apps].sort().join('+'))), t.name).toBe(true);
    }
    expect(seenApps.has('todo')).toBe(false);
  });
});

describe.each(TEMPLATES.map((t) => t.name))('template %s', (name) => {
  it('is solved by the scripted solver on every sampled task (full, compact and docs-enforced worlds)', () => {
    for (const options of [FULL, COMPACT, ENFORCED]) {
      for (const task of tasksOf(name, options)) {
        expect(locateTask(task, options).template.name).toBe(name);
        const { env, demonstration } = runSolver(task, options, clean);
        const checks = env.checks();
        expect(
          checks.every((c) => c.passed),
          `${JSON.stringify(task)}: ${JSON.stringify(checks)}\n${demonstration.turns.map((t) => t.text).join('\n')}`,
        ).toBe(true);
        expect(env.score()).toMatchObject({ total: 1, parts: { passed_all: 1, completed: 1 } });
      }
    }
  });

  it('gives an agent that does nothing no check (completing at once, or never acting)', () => {
    for (const task of tasksOf(name, FULL)) {
      const quitter = new ToolworldEnv(FULL);
      quitter.reset(task);
      expect(quitter.step('supervisor.complete_task').done).toBe(true);
      expect(quitter.checks().filter((c) => c.passed)).toEqual([]);
      const idle = new ToolworldEnv({ ...FULL, maxTurns: 2 });
      idle.reset(task);
      idle.step('I am not sure.');
      expect(idle.step('# thinking').done).toBe(true);
      expect(idle.score()).toMatchObject({ total: 0, parts: { checks_passed: 0, completed: 0 } });
    }
  });

  it('fails only "nothing extraneous" when the agent also damages unrelated data', () => {
    for (const options of [FULL, COMPACT]) {
      for (const task of tasksOf(name, options).slice(0, 3)) {
        const policyTurns = runSolver(task, options, clean)
          .demonstration.turns.filter((t) => t.role === 'policy')
          .map((t) => t.text);
        const env = new ToolworldEnv(options);
        env.reset(task);
        for (const text of policyTurns.slice(0, -1)) env.step(text);
        const { supervisor } = env.generated.initial;
        let token: string | undefined;
        if (options.auth) {
          env.step(`notes.login ${JSON.stringify({ username: supervisor.email, password: supervisor.passwords.notes })}`);
          const outcome = env.lastOutcomes[0];
          token = outcome.ok ? (outcome.value as { access_token: string }).access_token : undefined;
        }
        const damage = { title: 'zz unrelated', content: 'oops', ...(token === undefined ? {} : { access_token: token }) };
        env.step(formatCalls([{ app: 'notes', api: 'create_note', args: damage }]));
        expect(env.lastOutcomes[0].ok).toBe(true);
        env.step(policyTurns.at(-1)!);
        const checks = env.checks();
        expect(
          checks.filter((c) => !c.passed).map((c) => c.name),
          JSON.stringify(checks),
        ).toEqual(['nothing_extraneous']);
      }
    }
  });
});
