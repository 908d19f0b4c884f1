/** `calendar`: events with a start, an end, a location and attendees (emails). */
import { z } from 'zod';
import { ApiError, api, defineApp, fields, findById, paginate, removeById } from '../api.js';
import { allocateId } from '../world.js';
import { dateRange, inDateRange, loginApi, requireSomeField } from './common.js';

/** The calendar app. */
export const calendarApp = defineApp({ name: 'calendar', description: 'Your calendar events.', login: true }, [
  loginApi('calendar'),
  api({
    name: 'list_events',
    description: 'List events by start time, optionally between two dates.',
    returns: '{items: [{id, title, start, end, location}], page, next_page}',
    args: { ...dateRange },
    paginated: true,
    run(ctx, args) {
      const rows = ctx.world.tables.events
        .filter((e) => inDateRange(e.start, args.start_date, args.end_date))
        .sort((a, b) => (a.start === b.start ? a.id - b.id : a.start < b.start ? -1 : 1))
        .map(({ attendees: _attendees, ...rest }) => rest);
      return paginate(rows, args);
    },
  }),
  api({
    name: 'show_event',
    description: 'Show one event with its attendees.',
    returns: '{id, title, start, end, location, attendees}',
    args: { event_id: fields.id.describe('Id of the event.') },
    run(ctx, args) {
      return findById(ctx.world.tables.events, args.event_id, 'Event', 'event_id');
    },
  }),
  api({
    name: 'create_event',
    description: 'Create an event.',
    returns: '{event_id}',
    args: {
      title: fields.text(100).describe('Title.'),
      start: fields.dateTime.describe('Start, YYYY-MM-DDTHH:MM:SS.'),
      end: fields.dateTime.describe('End, after the start.'),
      location: z.string().max(100).default('').describe('Where.'),
      attendees: z.array(fields.email).max(20).default([]).describe('Emails of the people invited.'),
    },
    mutates: true,
    run(ctx, args) {
      if (args.end <= args.start) throw new ApiError(422, `The end ${args.end} must be after the start ${args.start}.`);
      const id = allocateId(ctx.world, 'events');
      ctx.world.tables.events.push({
        id,
        title: args.title,
        start: args.start,
        end: args.end,
        location: args.location,
        attendees: [...new Set(args.attendees)],
      });
      return { event_id: id };
    },
  }),
  api({
    name: 'update_event',
    description: 'Change the title, times or location of an event.',
    returns: '{message}',
    args: {
      event_id: fields.id.describe('Id of the event.'),
      title: fields.text(100).optional().describe('New title.'),
      start: fields.dateTime.optional().describe('New start.'),
      end: fields.dateTime.optional().describe('New end.'),
      location: z.string().max(100).optional().describe('New location.'),
    },
    mutates: true,
    run(ctx, args) {
      requireSomeField(args, ['title', 'start', 'end', 'location']);
      const event = findById(ctx.world.tables.events, args.event_id, 'Event', 'event_id');
      const start = args.start ?? event.start;
      const end = args.end ?? event.end;
      if (end <= start) throw new ApiError(422, `The end ${end} must be after the start ${start}.`);
      if (args.title !== undefined) event.title = args.title;
      if (args.location !== undefined) event.location = args.location;
      event.start = start;
      event.end = end;
      return { message: `Event ${event.id} updated.` };
    },
  }),
  api({
    name: 'delete_event',
    description: 'Delete an event.',
    returns: '{message}',
    args: { event_id: fields.id.describe('Id of the event.') },
    mutates: true,
    run(ctx, args) {
      findById(ctx.world.tables.events, args.event_id, 'Event', 'event_id');
      removeById(ctx.world.tables.events, args.event_id);
      return { message: `Event ${args.event_id} deleted.` };
    },
  }),
  api({
    name: 'add_attendee',
    description: 'Invite someone (by email) to an event.',
    returns: '{message}',
    args: { event_id: fields.id.describe('Id of the event.'), email: fields.email.describe('Email of the person.') },
    mutates: true,
    run(ctx, args) {
      const event = findById(ctx.world.tables.events, args.event_id, 'Event', 'event_id');
      if (event.attendees.includes(args.email)) throw new ApiError(409, `${args.email} is already invited to event ${event.id}.`);
      event.attendees.push(args.email);
      return { message: `${args.email} invited to event ${event.id}.` };
    },
  }),
]);
