import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, EnvError } from '../../../core/errors.js';
import { validateEnvOptions } from '../../../envs/loader.js';
import { getBuiltinEnv } from '../../../envs/registry.js';
import {
  NO_CALL_REPLY,
  TURN_LIMIT_NOTE,
  ToolworldEnv,
  runSolver,
  toolworldDemonstration,
  toolworldEnv,
} from '../../../envs/toolworld/env.js';
import { toolworldOptionsSchema, type ToolworldOptions } from '../../../envs/toolworld/options.js';
import { SPLITS, taskCount, templatePool } from '../../../envs/toolworld/tasks.js';

const FULL = toolworldOptionsSchema.parse({});
const COMPACT = toolworldOptionsSchema.parse({ prompt: 'compact', docs: 'off', auth: false, worldSize: 'tiny', reminder: false });
const task = { split: 'train', index: 0, seed: 0 }; // template notes_delete (first in the catalogue)

function started(options: ToolworldOptions = FULL): ToolworldEnv {
  const env = new ToolworldEnv(options);
  env.reset(task);
  return env;
}

describe('toolworld registration and options', () => {
  it('is the built-in `toolworld`, with described defaults', () => {
    expect(getBuiltinEnv('toolworld')).toBe(toolworldEnv);
    for (const field of Object.values(toolworldOptionsSchema.shape)) expect(field.description).toBeTruthy();
    expect(FULL).toMatchObject({ prompt: 'full', docs: 'lookup', auth: true, worldSize: 'full', pageSize: 5, maxTurns: 30 });
  });

  it('refuses unknown options and unknown template names with a ConfigError naming them', () => {
    expect(() => validateEnvOptions(toolworldEnv, { templats: [] })).toThrow(/unknown option `templats`/);
    expect(() => validateEnvOptions(toolworldEnv, { templates: ['notes_delete', 'nope'] })).toThrow(ConfigError);
    expect(() => validateEnvOptions(toolworldEnv, { templates: ['nope'] })).toThrow(/unknown template nope; valid templates: notes_delete/);
  });

  it('has four splits of 3 tasks per scenario; filters shrink the pools; an emptied split has no tasks', () => {
    expect(SPLITS.map((s) => taskCount(s, FULL))).toEqual([30_000, 300, 600, 600]);
    expect(taskCount('eval', FULL)).toBe(0);
    const notesOnly = toolworldOptionsSchema.parse({ apps: ['notes'], levels: [1] });
    expect(templatePool('train', notesOnly).every((t) => t.apps.every((a) => a === 'notes') && t.level === 1)).toBe(true);
    expect(taskCount('test-challenge', notesOnly)).toBe(0);
    const chosen = toolworldOptionsSchema.parse({ templates: ['notes_delete', 'phone_text_name'], challengeTemplates: ['todo_create'] });
    expect(templatePool('dev', chosen).map((t) => t.name)).toEqual(['notes_delete', 'phone_text_name']);
    expect(templatePool('test-challenge', chosen).map((t) => t.name)).toEqual(['todo_create']);
  });

  it('refuses a task outside its split', () => {
    expect(() => new ToolworldEnv(FULL).reset({ split: 'train', index: 30_000, seed: 0 })).toThrow(/outside split 'train'/);
    expect(() => new ToolworldEnv(FULL).reset({ split: 'eval', index: 0, seed: 0 })).toThrow(ConfigError);
  });
});

describe('toolworld episodes', () => {
  it('replays the transcript of the env module comment', () => {
    const env = new ToolworldEnv(COMPACT);
    expect(env.reset(task)).toBe('Today: 2024-08-26T10:00:00\nTask: Delete my note "garden".\n');
    expect(env.step('notes.search_notes {"query":"garden"}')).toEqual({
      observation:
        'notes.search_notes: {"items":[{"id":2,"title":"garden","tags":["travel","money"],"created_at":"2024-08-12T09:00:00"}],"page":0,"next_page":null}\n',
      done: false,
    });
    expect(env.step('notes.delete_note {"note_id":2}\nsupervisor.complete_task')).toEqual({
      observation: 'notes.delete_note: {"message":"Note 2 deleted."}\nsupervisor.complete_task: {"message":"Task marked complete."}\n',
      done: true,
    });
    expect(env.checks()).toEqual([
      { name: 'deleted notes#2', passed: true },
      { name: 'nothing_extraneous', passed: true },
    ]);
    expect(env.score().total).toBe(1);
  });

  it('is reproducible per TaskRef and differs between splits, seeds and variants', () => {
    const prompt = (t: typeof task) => new ToolworldEnv(FULL).reset(t);
    expect(prompt(task)).toBe(prompt(task));
    const others = [
      { ...task, split: 'dev' },
      { ...task, seed: 1 },
      { ...task, index: 1 },
    ].map(prompt);
    for (const other of others) expect(other).not.toBe(prompt(task));
  });

  it('writes a full prompt that explains the call format, docs, logins and pagination, and a compact one', () => {
    const full = new ToolworldEnv(FULL).reset(task);
    expect(full).toMatch(/^I am \w+ \w+ \([a-z.]+@mail\.com\)\. It is 2024-\d\d-\d\dT\d\d:00:00\.\nTask: Delete my note "\w+"\.\n/);
    for (const hint of [
      'app.api {"arg": value}',
      'api_docs.show_api_doc',
      'supervisor.show_account_passwords',
      'next_page is null',
      'supervisor.complete_task',
    ])
      expect(full).toContain(hint);
    expect(new ToolworldEnv(COMPACT).reset(task)).toMatch(/^Today: 2024-\d\d-\d\dT\d\d:00:00\nTask: Delete my note "\w+"\.\n$/);
    const withSignatures = new ToolworldEnv(toolworldOptionsSchema.parse({ ...COMPACT, docs: 'prompt' })).reset(task);
    expect(withSignatures).toContain('notes.delete_note {note_id}');
    expect(withSignatures).toContain('supervisor.complete_task {[answer]}');
    expect(withSignatures).not.toContain('notes.login');
  });

  it('answers malformed messages with observations: bad JSON, unknown app or API, no call, too long', () => {
    const env = started();
    expect(env.step('notes.search_notes {"query": milk}').observation).toMatch(
      /^error: line 1: arguments of notes\.search_notes are not valid JSON .*Nothing was run\./,
    );
    expect(env.step('nots.search {"query": "milk"}').observation).toMatch(
      /^nots\.search: error 404: No app named nots; apps: supervisor, api_docs/,
    );
    expect(env.step('notes.erase {"note_id": 1}').observation).toMatch(/^notes\.erase: error 404: App notes has no API named erase/);
    expect(env.step('Sure! I will delete it.').observation).toMatch(/^error: line 1: expected a call like/);
    expect(env.step('').observation).toBe(`${NO_CALL_REPLY}\nTask: ${env.generated.draft.instruction}\n`);
    expect(env.step('x'.repeat(5000)).observation).toMatch(/^error: the message is 5000 characters long; the limit is 2000\./);
    expect(env.score().parts).toMatchObject({ parse_errors: 4, api_calls: 2, api_errors: 2, completed: 0 });
  });

  it('stops a message at the first failing call and says how many were not run', () => {
    const env = started(COMPACT);
    const reply = env.step('notes.show_note {"note_id": 999}\nnotes.list_notes\nsupervisor.complete_task');
    expect(reply).toEqual({
      observation: 'notes.show_note: error 404: Note with note_id 999 does not exist.\n(2 later calls not run because of the error)\n',
      done: false,
    });
  });

  it('truncates long results and long observations with a note', () => {
    const env = started(toolworldOptionsSchema.parse({ auth: false, maxResultChars: 100, maxObservationChars: 300 }));
    const one = env.step('api_docs.show_api_doc {"app_name": "notes", "api_name": "create_note"}').observation;
    const line = one.split('\n')[0];
    expect(line.length).toBe('api_docs.show_api_doc: '.length + 100);
    expect(line).toMatch(/\.\.\.\[truncated: \d+ more characters; ask for less: page_size, a filter, or one item\]$/);
    const many = env.step(Array.from({ length: 6 }, () => 'api_docs.show_app_descriptions').join('\n')).observation;
    expect(many.length).toBeLessThanOrEqual(300);
    expect(many).toMatch(/\.\.\.\[truncated: \d+ more characters\]\n$/);
  });

  it('ends at complete_task, or at the turn cap with a note; stepping afterwards is an error', () => {
    const env = started(COMPACT);
    expect(env.step('supervisor.complete_task')).toEqual({
      observation: 'supervisor.complete_task: {"message":"Task marked complete."}\n',
      done: true,
    });
    expect(() => env.step('supervisor.complete_task')).toThrow(EnvError);
    const capped = started(toolworldOptionsSchema.parse({ ...COMPACT, maxTurns: 2 }));
    expect(capped.step('notes.list_notes').done).toBe(false);
    const last = capped.step('notes.list_notes');
    expect(last.done).toBe(true);
    expect(last.observation.endsWith(`${TURN_LIMIT_NOTE}\n`)).toBe(true);
  });

  it('never throws on arbitrary messages', () => {
    const env = new ToolworldEnv(toolworldOptionsSchema.parse({ maxTurns: 1000 }));
    env.reset(task);
    const lines = fc.oneof(
      fc.string({ maxLength: 60 }),
      fc.constantFrom(
        'notes.list_notes',
        'notes.show_note {"note_id": -1}',
        'wallet.send_money {"amount": 1e308}',
        'files.show_file {"path": "/../x"}',
        '{"app": "x"}',
      ),
      fc
        .tuple(
          fc.constantFrom('notes.create_note', 'phone.add_contact', 'mail.send_email', 'supervisor.show_profile'),
          fc.jsonValue({ maxDepth: 2 }),
        )
        .map(([c, v]) => `${c} ${JSON.stringify(v)}`),
    );
    fc.assert(
      fc.property(fc.array(lines, { maxLength: 5 }), (msg) => {
        if (env.done) env.reset(task);
        const { observation } = env.step(msg.join('\n'));
        expect(typeof observation).toBe('string');
      }),
      { numRuns: 400 },
    );
  });

  it('scores with the share of checks passed and the parts the metrics read', () => {
    const { env } = runSolver(task, FULL, { mistake: 0, slip: 0 });
    expect(env.score()).toEqual({
      total: 1,
      parts: {
        passed_all: 1,
        checks_passed: 2,
        checks_total: 2,
        completed: 1,
        answered: 0,
        turns: 4,
        api_calls: 8,
        api_errors: 0,
        parse_errors: 0,
      },
    });
  });
});

describe('demonstrations', () => {
  it('are reproducible, start with the prompt and alternate env and policy turns', () => {
    const a = toolworldDemonstration(task, FULL);
    expect(toolworldDemonstration(task, FULL)).toEqual(a);
    expect(a.turns[0]).toEqual({ role: 'env', text: new ToolworldEnv(FULL).reset(task) });
    a.turns.forEach((t, i) => expect(t.role).toBe(i % 2 === 0 ? 'env' : 'policy'));
  });

  it('look up docs, get passwords and log in before acting, in the full world', () => {
    const policy = toolworldDemonstration(task, { ...FULL, demoSlip: 0, demoNoise: 0 })
      .turns.filter((t) => t.role === 'policy')
      .map((t) => t.text);
    expect(policy[0]).toBe('api_docs.show_api_descriptions {"app_name":"notes"}\nsupervisor.show_account_passwords');
    expect(policy[1]).toMatch(
      /^api_docs\.show_api_doc \{"app_name":"notes","api_name":"search_notes"\}\napi_docs\.show_api_doc \{"app_name":"notes","api_name":"delete_note"\}\nnotes\.login \{"username":"[^"]+","password":"\w+"\}$/,
    );
    expect(policy.at(-1)).toMatch(/^notes\.delete_note \{"note_id":\d+,"access_token":"\w+"\}\nsupervisor\.complete_task$/);
  });

  it('are imperfect at the configured noise: about 1 − demoNoise per decision point succeed', () => {
    const noisy = toolworldOptionsSchema.parse({ worldSize: 'small', demoNoise: 0.3, demoSlip: 0.5 });
    let passed = 0;
    let mistaken = 0;
    let slips = 0;
    const n = 150;
    for (let index = 0; index < n; index++) {
      const run = runSolver({ split: 'train', index, seed: 3 }, noisy, { mistake: noisy.demoNoise, slip: noisy.demoSlip });
      passed += run.env.score().parts.passed_all;
      mistaken += run.mistaken ? 1 : 0;
      slips += run.env.score().parts.api_errors > 0 && !run.mistaken ? 1 : 0;
      if (!run.mistaken) expect(run.env.score().parts.passed_all).toBe(1); // slips alone never fail a task
    }
    expect(mistaken / n).toBeGreaterThan(0.2);
    expect(mistaken / n).toBeLessThan(0.6);
    expect(passed).toBeLessThan(n - mistaken / 2);
    expect(slips).toBeGreaterThan(n * 0.2);
  });
});
