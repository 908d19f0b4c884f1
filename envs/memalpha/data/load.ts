/**
 * Loading instances in the Mem-α format (as released with the paper's data): one JSON object per instance
 *
 * ```json
 * {"instance_id": "squad-17", "data_source": "squad",
 *  "chunks": ["first chunk text", "second chunk text"],
 *  "questions_and_answers": [{"question": "Who …?", "answer": "Ada"}, {"question": "…", "answer": ["x", "y"]}]}
 * ```
 *
 * - `chunks`: non-empty strings, in reading order (required, at least one);
 * - `questions_and_answers`: a list (or a JSON string holding the list, as in the released parquet files)
 *   of `{question, answer}`; `answer` is a string, a number or a list of accepted strings; keyword-hit
 *   sources (BookSum) give one comma-separated keyword string; extra keys (`evidence_idx`, …) are ignored;
 * - `data_source`: names the source (picks the metric); `metric` (optional, this project's extension)
 *   forces one of `substring`, `keyword_hit`, `exact_label`, `llm_judge`;
 * - `instance_id` (optional) and `prompt` (ignored: the environment writes its own prompts).
 *
 * A `.jsonl` file holds one instance per line (blank lines skipped); any other file holds a JSON array of
 * instances or one instance per line. Every problem is a ConfigError naming the file, the line (or array
 * item) and the field, e.g. `data.jsonl line 3: questions_and_answers.0.answer: …`.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../../../core/errors.js';
import { QA_METRICS, type QaMetric } from '../../../rewards/memalpha.js';
import type { MemalphaInstance } from '../types.js';

const QaSchema = z.object({
  question: z.string().min(1, 'must be a non-empty string'),
  answer: z.union([z.string(), z.number(), z.array(z.union([z.string(), z.number()])).min(1)], { error: 'must be a string, a number or a non-empty list of strings' }),
});

const QaListSchema = z.array(QaSchema);

/** One instance as written in a file. */
export const MemalphaInstanceFileSchema = z.object({
  instance_id: z.union([z.string(), z.number()]).optional(),
  prompt: z.string().optional(),
  chunks: z.array(z.string().min(1, 'chunks must be non-empty strings')).min(1, 'needs at least one chunk'),
  questions_and_answers: z.preprocess((value, ctx) => {
    if (typeof value !== 'string') return value;
    try {
      return JSON.parse(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `a string here must hold the JSON list of {question, answer} (${describeCause(err)})` });
      return z.NEVER;
    }
  }, QaListSchema),
  data_source: z.string().min(1, 'must name the data source'),
  metric: z.enum(QA_METRICS as [QaMetric, ...QaMetric[]]).optional(),
});

/** Instances in `text` (JSONL, or a JSON array); `origin` (a file name) prefixes every error message. */
export function parseInstances(text: string, origin: string): MemalphaInstance[] {
  const trimmed = text.trimStart();
  const instances: MemalphaInstance[] = [];
  if (trimmed.startsWith('[') && !origin.endsWith('.jsonl')) {
    let items: unknown;
    try {
      items = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`${origin}: not valid JSON (${describeCause(err)})`, { cause: err });
    }
    if (!Array.isArray(items)) throw new ConfigError(`${origin}: expected a JSON array of instances`);
    items.forEach((item, i) => instances.push(toInstance(item, `${origin} item ${i}`, `${path.basename(origin)}#${i}`)));
  } else {
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      const where = `${origin} line ${i + 1}`;
      let item: unknown;
      try {
        item = JSON.parse(line);
      } catch (err) {
        throw new ConfigError(`${where}: not valid JSON (${describeCause(err)}); a .jsonl file holds one instance object per line`, { cause: err });
      }
      instances.push(toInstance(item, where, `${path.basename(origin)}#${i + 1}`));
    });
  }
  if (instances.length === 0) throw new ConfigError(`${origin}: no instances found`);
  return instances;
}

/** Parsed files by absolute path, with the size and mtime they were read at. */
const cache = new Map<string, { size: number; mtimeMs: number; instances: MemalphaInstance[] }>();

/**
 * The instances of a data file (path relative to the working directory). Read once and cached while
 * the file's size and modification time stay the same. A missing file is a ConfigError.
 */
export function loadInstancesFile(file: string): MemalphaInstance[] {
  const absolute = path.resolve(file);
  let stat;
  try {
    stat = statSync(absolute);
  } catch (err) {
    throw new ConfigError(`memalpha data file ${absolute} cannot be read (${describeCause(err)}); paths are relative to the working directory`, { cause: err });
  }
  const cached = cache.get(absolute);
  if (cached && cached.size === stat.size && cached.mtimeMs === stat.mtimeMs) return cached.instances;
  const instances = parseInstances(readFileSync(absolute, 'utf8'), absolute);
  cache.set(absolute, { size: stat.size, mtimeMs: stat.mtimeMs, instances });
  return instances;
}

function toInstance(item: unknown, where: string, fallbackId: string): MemalphaInstance {
  const parsed = MemalphaInstanceFileSchema.safeParse(item);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(instance)'}: ${issue.message}`);
    throw new ConfigError(`${where}: ${issues.join('; ')}`);
  }
  const data = parsed.data;
  const questions = data.questions_and_answers.map((qa) => ({
    question: qa.question,
    answers: (Array.isArray(qa.answer) ? qa.answer : [qa.answer]).map(String),
  }));
  return {
    id: data.instance_id === undefined ? fallbackId : String(data.instance_id),
    source: data.data_source,
    ...(data.metric === undefined ? {} : { metric: data.metric }),
    chunks: data.chunks,
    questions,
  };
}

function describeCause(err: unknown): string {
  if (err instanceof z.ZodError) return err.issues.map((i) => `${i.path.join('.') || '(list)'}: ${i.message}`).join('; ');
  return err instanceof Error ? err.message : String(err);
}
