/**
 * Fixed vocabularies the world generator and the task templates draw from. Short words on purpose: a
 * byte-level policy pays one token per character.
 */

/** First names (distinct within a world). */
export const FIRST_NAMES: readonly string[] = [
  'Ana',
  'Ben',
  'Cara',
  'Dan',
  'Eva',
  'Finn',
  'Gia',
  'Hugo',
  'Ines',
  'Jon',
  'Kai',
  'Lea',
  'Max',
  'Nia',
  'Omar',
  'Pia',
  'Quinn',
  'Rosa',
  'Sam',
  'Tara',
  'Uma',
  'Vic',
  'Wes',
  'Xena',
  'Yara',
  'Zed',
  'Alma',
  'Bo',
  'Cy',
  'Dora',
  'Eli',
  'Fay',
  'Gus',
  'Hana',
  'Ivo',
  'Jade',
  'Kim',
  'Liv',
  'Milo',
  'Nora',
];

/** Last names (distinct within a world). */
export const LAST_NAMES: readonly string[] = [
  'Diaz',
  'Kim',
  'Lopez',
  'Nagy',
  'Okafor',
  'Park',
  'Reyes',
  'Silva',
  'Tan',
  'Vogel',
  'Wang',
  'Young',
  'Adams',
  'Berg',
  'Cruz',
  'Dahl',
  'Ellis',
  'Ford',
  'Gray',
  'Hale',
  'Ito',
  'Jones',
  'Kerr',
  'Lund',
  'Moss',
  'Neal',
  'Ortiz',
  'Price',
  'Quist',
  'Rossi',
];

/** Relationships that occur at most once per world ("my sister"). */
export const UNIQUE_RELATIONSHIPS: readonly string[] = ['sister', 'brother', 'mother', 'father', 'boss', 'roommate'];

/** Every relationship a contact may have. */
export const RELATIONSHIPS: readonly string[] = [...UNIQUE_RELATIONSHIPS, 'friend', 'coworker', 'cousin', 'neighbor'];

/** Short text messages (also used for email bodies). */
export const TEXT_MESSAGES: readonly string[] = [
  'see you soon',
  'call me later',
  'running late',
  'thanks a lot',
  'on my way',
  'lunch today?',
  'got it',
  'miss you',
  'happy birthday',
  'where are you?',
  'good luck',
  'sounds great',
  'all done',
  'nice work',
  'let me know',
  'at the store',
];

/** Email subjects. */
export const EMAIL_SUBJECTS: readonly string[] = [
  'Dinner plans',
  'Trip photos',
  'Rent',
  'Meeting notes',
  'Weekend',
  'Invoice',
  'Book club',
  'Hello',
  'Quick question',
  'Report',
  'Party',
  'Tickets',
  'Recipe',
  'Schedule',
  'Gift ideas',
  'Update',
];

/** Note titles (distinct within a world). */
export const NOTE_TITLES: readonly string[] = [
  'groceries',
  'ideas',
  'packing',
  'recipes',
  'books',
  'goals',
  'gifts',
  'workout',
  'budget',
  'movies',
  'errands',
  'garden',
  'quotes',
  'travel',
  'music',
  'plans',
  'chores',
  'repairs',
  'meals',
  'podcasts',
  'wishlist',
  'passwords',
  'birthdays',
  'projects',
];

/** Words notes and files are made of. */
export const NOTE_WORDS: readonly string[] = [
  'milk',
  'eggs',
  'bread',
  'tea',
  'rice',
  'soap',
  'paint',
  'maps',
  'socks',
  'lamp',
  'pasta',
  'apples',
  'keys',
  'tape',
  'jam',
  'salt',
  'beans',
  'cards',
  'glue',
  'pens',
];

/** Note tags. */
export const TAGS: readonly string[] = ['work', 'home', 'ideas', 'travel', 'food', 'books', 'health', 'money'];

/** Spending categories of wallet payments. */
export const CATEGORIES: readonly string[] = ['groceries', 'dining', 'rent', 'utilities', 'travel', 'fun', 'shopping', 'health'];

/** Top-level folders of the file system. */
export const DIRECTORIES: readonly string[] = ['docs', 'photos', 'work', 'notes', 'music', 'taxes'];

/** File name stems (distinct within a world). */
export const FILE_STEMS: readonly string[] = [
  'plan',
  'list',
  'draft',
  'todo',
  'log',
  'memo',
  'budget',
  'story',
  'scores',
  'menu',
  'trip',
  'notes',
  'ideas',
  'data',
  'cv',
  'poem',
  'letter',
  'index',
  'report',
  'summary',
  'tasks',
  'quotes',
];

/** Calendar event titles. */
export const EVENT_TITLES: readonly string[] = [
  'Dentist',
  'Yoga',
  'Team sync',
  'Lunch',
  'Book club',
  'Haircut',
  'Gym',
  'Dinner',
  'Review',
  'Call',
  'Movie',
  'Concert',
  'Standup',
  'Piano',
  'Soccer',
  'Brunch',
];

/** Event locations. */
export const LOCATIONS: readonly string[] = ['home', 'office', 'cafe', 'park', 'gym', 'online', 'downtown'];

/** To-do list names. */
export const TODO_LISTS: readonly string[] = ['home', 'work', 'errands', 'health', 'shopping'];

/** To-do titles (distinct within a world). */
export const TODO_TITLES: readonly string[] = [
  'buy milk',
  'pay rent',
  'call mom',
  'fix sink',
  'book flight',
  'walk dog',
  'clean desk',
  'send card',
  'water plants',
  'renew id',
  'wash car',
  'file taxes',
  'read book',
  'sort mail',
  'charge bike',
  'back up phone',
  'order filters',
  'plan trip',
  'bake bread',
  'return books',
  'buy stamps',
  'update cv',
];
