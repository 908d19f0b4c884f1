/** Task templates of the calendar app (one with phone). */
import type { Rng } from '../../../core/rng.js';
import type { SolverContext } from '../solver.js';
import { EVENT_TITLES, LOCATIONS } from '../vocab.js';
import { addDays, allocateId, pick, sample, type World } from '../world.js';
import { findRelative } from './phone.js';
import { freshFrom, invoke, q, relativeContact, type TaskTemplate } from './template.js';

/** An event as list_events shows it. */
export interface EventItem {
  id: number;
  title: string;
  start: string;
  end: string;
}

/** Titles that only planted events use, so they are unique in their world. */
const PLANTED_TITLES = ['Vet', 'Tax prep', 'Recital', 'Workshop', 'Interview', 'Picnic', 'Checkup', 'Dance class'];

/** Plant an event with a title no other event has; returns its id, title and times. */
export function plantUniqueEvent(
  world: World,
  rng: Rng,
  day?: string,
  attendees: string[] = [],
): { id: number; title: string; start: string; end: string } | undefined {
  const title = freshFrom(
    rng,
    [...EVENT_TITLES, ...PLANTED_TITLES],
    world.tables.events.map((e) => e.title),
  );
  if (title === undefined) return undefined;
  const date = day ?? addDays(world.now, 1 + rng.int(10));
  const hour = 8 + rng.int(10);
  const start = `${date}T${String(hour).padStart(2, '0')}:30:00`;
  const end = `${date}T${String(hour + 1).padStart(2, '0')}:30:00`;
  const id = allocateId(world, 'events');
  world.tables.events.push({ id, title, start, end, location: pick(rng, LOCATIONS), attendees });
  return { id, title, start, end };
}

/** The event with this exact title (paging through the calendar until found). */
export function* findEvent(s: SolverContext, title: string) {
  const all = yield* s.listAll<EventItem>('calendar', 'list_events', {}, (e) => e.title === title);
  return s.choose(all, (e) => e.title === title);
}

export const calendarTemplates: TaskTemplate[] = [
  {
    name: 'calendar_create',
    apps: ['calendar'],
    level: 1,
    group: 'normal',
    example: 'Add "Yoga" to my calendar on 2024-05-20 from 10:00 to 11:00.',
    make(world, rng) {
      const title = pick(rng, EVENT_TITLES);
      const day = addDays(world.now, 1 + rng.int(14));
      const hour = 8 + rng.int(10);
      const start = `${day}T${String(hour).padStart(2, '0')}:00:00`;
      const end = `${day}T${String(hour + 1).padStart(2, '0')}:00:00`;
      return {
        instruction: `Add ${q(title)} to my calendar on ${day} from ${start.slice(11, 16)} to ${end.slice(11, 16)}.`,
        apply: (w) => invoke(w, 'calendar.create_event', { title, start, end }),
        apis: ['calendar.create_event'],
        *solve(s) {
          yield* s.finish([s.api('calendar', 'create_event', { title, start: s.copy(start), end })]);
        },
      };
    },
  },
  {
    name: 'calendar_cancel',
    apps: ['calendar'],
    level: 1,
    group: 'normal',
    example: 'Cancel my "Vet" event.',
    make(world, rng) {
      const event = plantUniqueEvent(world, rng);
      if (event === undefined) return undefined;
      return {
        instruction: `Cancel my ${q(event.title)} event.`,
        apply: (w) => invoke(w, 'calendar.delete_event', { event_id: event.id }),
        apis: ['calendar.list_events', 'calendar.delete_event'],
        *solve(s) {
          const found = yield* findEvent(s, event.title);
          yield* s.finish([s.api('calendar', 'delete_event', { event_id: found.id })]);
        },
      };
    },
  },
  {
    name: 'calendar_move',
    apps: ['calendar'],
    level: 1,
    group: 'normal',
    example: 'Move my "Picnic" event to 2024-05-30, same time.',
    make(world, rng) {
      const event = plantUniqueEvent(world, rng);
      if (event === undefined) return undefined;
      const day = addDays(event.start, 1 + rng.int(7));
      const start = `${day}${event.start.slice(10)}`;
      const end = `${day}${event.end.slice(10)}`;
      return {
        instruction: `Move my ${q(event.title)} event to ${day}, same time.`,
        apply: (w) => invoke(w, 'calendar.update_event', { event_id: event.id, start, end }),
        apis: ['calendar.list_events', 'calendar.update_event'],
        *solve(s) {
          const found = yield* findEvent(s, event.title);
          const newDay = s.copy(day);
          yield* s.finish([
            s.api('calendar', 'update_event', {
              event_id: found.id,
              start: `${newDay}${found.start.slice(10)}`,
              end: `${newDay}${found.end.slice(10)}`,
            }),
          ]);
        },
      };
    },
  },
  {
    name: 'calendar_count_day',
    apps: ['calendar'],
    level: 2,
    group: 'normal',
    example: 'How many events do I have on 2024-05-21?',
    make(world, rng) {
      const day = addDays(world.now, 1 + rng.int(7));
      if (plantUniqueEvent(world, rng, day) === undefined) return undefined;
      const count = world.tables.events.filter((e) => e.start.slice(0, 10) === day).length;
      return {
        instruction: `How many events do I have on ${day}?`,
        answer: count,
        apis: ['calendar.list_events'],
        *solve(s) {
          const all = yield* s.listAll<EventItem>('calendar', 'list_events', { start_date: day, end_date: day });
          yield* s.finish([], all.length);
        },
      };
    },
  },
  {
    name: 'calendar_invite_relative',
    apps: ['phone', 'calendar'],
    level: 2,
    group: 'normal',
    example: 'Invite my mother to my "Recital" event.',
    make(world, rng) {
      const relative = relativeContact(world, rng);
      const event = plantUniqueEvent(world, rng);
      if (event === undefined) return undefined;
      return {
        instruction: `Invite my ${relative.relationship} to my ${q(event.title)} event.`,
        apply: (w) => invoke(w, 'calendar.add_attendee', { event_id: event.id, email: relative.email }),
        apis: ['phone.list_contacts', 'calendar.list_events', 'calendar.add_attendee'],
        *solve(s) {
          const person = yield* findRelative(s, relative.relationship);
          const found = yield* findEvent(s, event.title);
          yield* s.finish([s.api('calendar', 'add_attendee', { event_id: found.id, email: person.email })]);
        },
      };
    },
  },
  {
    name: 'calendar_next_event',
    apps: ['calendar'],
    level: 2,
    group: 'normal',
    example: 'What is my next event? Answer with its title.',
    make(world, rng) {
      // Generated events start on the hour; this one is the only event later today or tomorrow morning.
      const now = world.now;
      const upcoming = world.tables.events.filter((e) => e.start > now);
      const soonest = upcoming.reduce<string | undefined>((min, e) => (min === undefined || e.start < min ? e.start : min), undefined);
      const startTime = `${now.slice(0, 10)}T${String(Number(now.slice(11, 13)) + 1).padStart(2, '0')}:15:00`;
      if (soonest !== undefined && soonest <= startTime) return undefined;
      const title = freshFrom(
        rng,
        [...EVENT_TITLES, ...PLANTED_TITLES],
        world.tables.events.map((e) => e.title),
      );
      if (title === undefined) return undefined;
      world.tables.events.push({
        id: allocateId(world, 'events'),
        title,
        start: startTime,
        end: `${startTime.slice(0, 14)}45:00`,
        location: pick(rng, LOCATIONS),
        attendees: sample(rng, world.tables.contacts, 1).map((c) => c.email),
      });
      return {
        instruction: 'What is my next event? Answer with its title.',
        answer: title,
        apis: ['supervisor.show_current_time', 'calendar.list_events'],
        *solve(s) {
          const time = yield* s.get<{ now: string }>('supervisor', 'show_current_time');
          const all = yield* s.listAll<EventItem>(
            'calendar',
            'list_events',
            { start_date: time.now.slice(0, 10) },
            (e) => e.start > time.now,
          );
          const next = s.choose(all, (e) => e.start > time.now);
          yield* s.finish([], next.title);
        },
      };
    },
  },
];
