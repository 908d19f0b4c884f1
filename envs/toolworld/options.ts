/**
 * `env.options` of `toolworld`. The defaults are the full world (every app, template and rule); the
 * knobs make a compact version a small byte-level policy can learn in minutes: short prompts, small
 * worlds, no logins or doc lookups, a subset of templates, short observations.
 */
import { z } from 'zod';
import { DATA_APPS } from './apps/index.js';
import { TEMPLATES_BY_NAME } from './templates/index.js';

const splitSize = (fallback: number, what: string) =>
  z.number().int().min(0).max(10_000_000).default(fallback).describe(`Scenarios (3 tasks each) in ${what}.`);

/** `env.options` of toolworld. */
export const toolworldOptionsSchema = z
  .object({
    prompt: z
      .enum(['full', 'compact'])
      .default('full')
      .describe('`full`: who the supervisor is, the date, the task and how to act; `compact`: the date and the task only.'),
    docs: z
      .enum(['lookup', 'enforced', 'prompt', 'off'])
      .default('lookup')
      .describe(
        "API documentation: `lookup` = only through the api_docs app (the prompt says so; the solver looks up every API it uses); `enforced` = as lookup, and an API called before its api_docs.show_api_doc fails; `prompt` = the prompt lists the signatures of the task's apps; `off` = nothing is said (the policy learns the APIs from demonstrations).",
      ),
    auth: z
      .boolean()
      .default(true)
      .describe('App APIs need an access_token from `<app>.login` (passwords from `supervisor.show_account_passwords`).'),
    worldSize: z
      .enum(['tiny', 'small', 'full'])
      .default('full')
      .describe('Rows per table of a generated world (tiny ≈ 3–5, small ≈ 7–14, full ≈ 14–40).'),
    pageSize: z.number().int().min(1).max(20).default(5).describe('Default page_size of paginated APIs.'),
    templates: z.array(z.string()).min(1).optional().describe('Templates of train, dev and test-normal (default: every normal template).'),
    challengeTemplates: z
      .array(z.string())
      .optional()
      .describe('Templates of test-challenge (default: every challenge template; [] = no test-challenge tasks).'),
    levels: z
      .array(z.number().int().min(1).max(3))
      .min(1)
      .default([1, 2, 3])
      .describe(
        'Keep only templates of these levels (1 = one app, one lookup, one write or answer; 2 = lists, filters, several rows; 3 = compositions).',
      ),
    apps: z
      .array(z.enum(DATA_APPS as [string, ...string[]]))
      .min(1)
      .optional()
      .describe('Keep only templates whose apps are all in this list.'),
    maxTurns: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(30)
      .describe('Agent turns per episode; the episode ends (and is scored) at the cap.'),
    maxActionChars: z
      .number()
      .int()
      .min(16)
      .max(1_000_000)
      .default(2000)
      .describe('Longest agent message accepted (characters); a longer one runs nothing.'),
    maxCallsPerTurn: z.number().int().min(1).max(100).default(10).describe('Most calls per agent message.'),
    maxResultChars: z
      .number()
      .int()
      .min(32)
      .max(1_000_000)
      .default(1500)
      .describe('One call result longer than this is truncated with a note.'),
    maxObservationChars: z
      .number()
      .int()
      .min(64)
      .max(10_000_000)
      .default(3000)
      .describe('A whole observation longer than this is truncated with a note.'),
    reminder: z.boolean().default(true).describe('End every observation with the task text.'),
    scenarios: z
      .object({
        train: splitSize(10_000, 'train'),
        dev: splitSize(100, 'dev'),
        'test-normal': splitSize(200, 'test-normal'),
        'test-challenge': splitSize(200, 'test-challenge'),
      })
      .strict()
      .prefault({})
      .describe('Scenarios per split; a split has 3 tasks per scenario.'),
    demoNoise: z
      .number()
      .min(0)
      .max(1)
      .default(0.1)
      .describe(
        'Demonstrations: probability that a decision (a pick, a copied value, an answer) goes wrong; at most one mistake per demonstration.',
      ),
    demoSlip: z
      .number()
      .min(0)
      .max(1)
      .default(0.2)
      .describe(
        'Demonstrations: probability of one harmless slip (a write first sent with an argument missing, then corrected after the error).',
      ),
  })
  .strict()
  .superRefine((options, ctx) => {
    for (const key of ['templates', 'challengeTemplates'] as const) {
      for (const [i, name] of (options[key] ?? []).entries()) {
        if (!TEMPLATES_BY_NAME.has(name)) {
          ctx.addIssue({
            code: 'custom',
            path: [key, i],
            message: `unknown template ${name}; valid templates: ${[...TEMPLATES_BY_NAME.keys()].join(', ')}`,
          });
        }
      }
    }
  });

/** Parsed toolworld options. */
export type ToolworldOptions = z.output<typeof toolworldOptionsSchema>;

/** Options as written in a config (every field optional). */
export type ToolworldOptionsInput = z.input<typeof toolworldOptionsSchema>;
