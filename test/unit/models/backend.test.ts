import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { ServiceError } from '../../../core/errors.js';
import { selectBackend } from '../../../models/backend.js';

describe('selectBackend', () => {
  it('activates wasm and computes with it', async () => {
    const choice = await selectBackend('wasm');
    expect(choice.name).toBe('wasm');
    expect(choice.reason).toMatch(/^requested wasm: wasm/);
    expect(tf.getBackend()).toBe('wasm');
    const product = tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]]));
    expect(product.dataSync()[0]).toBe(11);
  });

  it('is a no-op for a repeated request (same answer object)', async () => {
    const first = await selectBackend('wasm');
    const second = await selectBackend('wasm');
    expect(second).toBe(first);
    expect(tf.getBackend()).toBe('wasm');
  });

  it('switches to cpu on request and back again', async () => {
    expect((await selectBackend('cpu')).name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    const back = await selectBackend('wasm');
    expect(back.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  it('either activates native TensorFlow or says which package is missing', async () => {
    try {
      const choice = await selectBackend('tensorflow');
      expect(choice.name).toBe('tensorflow');
    } catch (err) {
      expect(err).toBeInstanceOf(ServiceError);
      expect((err as ServiceError).code).toBe('E_SERVICE');
      expect((err as Error).message).toMatch(
        /backend 'tensorflow' was requested but is unavailable: .*@tensorflow\/tfjs-node-gpu.*@tensorflow\/tfjs-node/,
      );
    }
    await selectBackend('wasm');
  });

  it('either activates webgpu or says why no GPU can be used', async () => {
    try {
      const choice = await selectBackend('webgpu');
      expect(choice.name).toBe('webgpu');
      expect(choice.reason).toMatch(/GPU adapter found/);
    } catch (err) {
      expect(err).toBeInstanceOf(ServiceError);
      expect((err as Error).message).toMatch(/backend 'webgpu' was requested but is unavailable: .*(adapter|Dawn)/);
    }
    await selectBackend('wasm');
  });

  it('auto picks the fastest available backend and lists what it skipped', async () => {
    const choice = await selectBackend('auto');
    expect(['webgpu', 'tensorflow', 'wasm', 'cpu']).toContain(choice.name);
    expect(tf.getBackend()).toBe(choice.name);
    expect(choice.reason).toMatch(/^auto: /);
    if (choice.name === 'wasm') expect(choice.reason).toMatch(/no webgpu: .*; no tensorflow: /);
    expect(await selectBackend('auto')).toBe(choice);
  });
});
