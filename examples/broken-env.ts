/**
 * A deliberately broken plug-in, to show what the loader reports: the definition is fine, but the Env
 * that `create` returns has no `step`. Loading it succeeds; creating an env fails with
 * "env module ./examples/broken-env.ts: create() returned an object that does not satisfy the Env
 * contract: missing `step`".
 */
import type { TaskRef } from '../envs/types.js';

export default {
  name: 'example/broken',
  description: 'Fails the Env contract on purpose (no step method).',
  taskCount: (split: string) => (split === 'train' ? 10 : 0),
  create: () => ({
    reset: (task: TaskRef) => `Task ${task.index}: say hello.\n`,
    score: () => ({ total: 0, parts: {} }),
  }),
};
