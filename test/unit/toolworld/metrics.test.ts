import { describe, expect, it } from 'vitest';
import { passedAll, toolworldMetrics, type ToolworldResult } from '../../../envs/toolworld/metrics.js';

const result = (index: number, pass: boolean, split = 'train'): ToolworldResult => ({
  task: { split, index, seed: 0 },
  reward: { total: pass ? 1 : 0.5, parts: { passed_all: pass ? 1 : 0 } },
});

describe('toolworldMetrics', () => {
  it('computes TGC over tasks and SGC over complete scenarios (index ÷ 3), per split and per template', () => {
    // Scenario 0 (tasks 0–2) all pass; scenario 1 (3–5) fails task 5; scenario 2 has only task 6.
    const results = [0, 1, 2, 3, 4].map((i) => result(i, true)).concat([result(5, false), result(6, true)]);
    const metrics = toolworldMetrics(results);
    expect(metrics).toMatchObject({ tasks: 7, tasksPassed: 6, scenarios: 2, scenariosPassed: 1, sgc: 0.5, incompleteScenarios: 1 });
    expect(metrics.tgc).toBeCloseTo(6 / 7, 12);
    // Default options: the train pool starts notes_delete, notes_create, notes_create_tagged.
    expect(Object.keys(metrics.perTemplate)).toEqual(['notes_create', 'notes_create_tagged', 'notes_delete']);
    expect(metrics.perTemplate.notes_delete).toMatchObject({ tasks: 3, tgc: 1, sgc: 1 });
    expect(metrics.perTemplate.notes_create.tgc).toBeCloseTo(2 / 3, 12);
    expect(metrics.perTemplate.notes_create_tagged).toMatchObject({ tasks: 1, scenarios: 0, sgc: 0, incompleteScenarios: 1 });
    expect(metrics.perSplit.train.tgc).toBe(metrics.tgc);
  });

  it('keeps splits and seeds apart and maps templates with the given options', () => {
    const results = [0, 1, 2].map((i) => result(i, true, 'test-normal')).concat([0, 1, 2].map((i) => result(i, i !== 1, 'test-challenge')));
    const metrics = toolworldMetrics(results, { templates: ['phone_text_name'], challengeTemplates: ['todo_create'] });
    expect(metrics.perSplit['test-normal']).toMatchObject({ tgc: 1, sgc: 1 });
    expect(metrics.perSplit['test-challenge'].sgc).toBe(0);
    expect(Object.keys(metrics.perTemplate)).toEqual(['phone_text_name', 'todo_create']);
    expect(metrics).toMatchObject({ scenarios: 2, scenariosPassed: 1 });
  });

  it('reads passed_all, else a total of 1; no results give zeros', () => {
    expect(passedAll({ total: 1, parts: {} })).toBe(true);
    expect(passedAll({ total: 1, parts: { passed_all: 0 } })).toBe(false);
    expect(toolworldMetrics([])).toMatchObject({ tasks: 0, tgc: 0, scenarios: 0, sgc: 0 });
  });
});
