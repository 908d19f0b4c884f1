/** BullMQ connection options for a Redis URL (BullMQ's option type is its own; the values are ioredis options). */
import type { ConnectionOptions } from 'bullmq';
import { redisOptionsFromUrl } from './connection.js';

/** Options for a BullMQ Queue / Worker connecting to `url` (TLS, password and db from the URL). */
export function queueConnection(url: string): ConnectionOptions {
  return redisOptionsFromUrl(url) as unknown as ConnectionOptions;
}
