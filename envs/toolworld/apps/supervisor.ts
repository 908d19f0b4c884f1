/** `supervisor`: who the agent works for, the account passwords, and `complete_task` (ends the episode). */
import { z } from 'zod';
import { ApiError, api, defineApp } from '../api.js';

/** The supervisor app (no login). */
export const supervisorApp = defineApp(
  { name: 'supervisor', description: 'Your profile, your app passwords, and complete_task to finish.', login: false },
  [
    api({
      name: 'show_profile',
      description: 'Show your name, email and phone number.',
      returns: '{first_name, last_name, email, phone}',
      args: {},
      run(ctx) {
        const { passwords: _passwords, ...profile } = ctx.world.supervisor;
        return profile;
      },
    }),
    api({
      name: 'show_account_passwords',
      description: 'Show your password for each app that needs a login.',
      returns: '[{app, password}]',
      args: {},
      run(ctx) {
        return Object.entries(ctx.world.supervisor.passwords).map(([app, password]) => ({ app, password }));
      },
    }),
    api({
      name: 'show_current_time',
      description: 'Show the current date and time.',
      returns: '{now}',
      args: {},
      run(ctx) {
        return { now: ctx.world.now };
      },
    }),
    api({
      name: 'complete_task',
      description: 'Mark the task as done; give answer when the task asks a question.',
      returns: '{message}',
      args: {
        answer: z
          .union([z.string().max(2000), z.number()])
          .nullable()
          .optional()
          .describe('The answer, when the task asks for one (a number, a name, an email, a text).'),
      },
      mutates: true,
      run(ctx, args) {
        if (ctx.session.completed) throw new ApiError(409, 'The task is already complete.');
        ctx.session.completed = true;
        ctx.session.answer = args.answer ?? undefined;
        return { message: 'Task marked complete.' };
      },
    }),
  ],
);
