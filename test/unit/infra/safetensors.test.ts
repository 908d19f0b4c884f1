import { describe, expect, it } from 'vitest';
import { CheckpointError } from '../../../core/errors.js';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from '../../../models/safetensors.js';

/** Build a blob byte by byte: header length word, header JSON padded to `paddedLength`, then data bytes. */
function buildBlob(headerJson: string, data: number[], paddedLength?: number): Uint8Array {
  const json = new TextEncoder().encode(headerJson);
  const headerLength = paddedLength ?? json.length;
  const out = new Uint8Array(8 + headerLength + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  out.set(data, 8 + headerLength);
  return out;
}

function expectCheckpointError(fn: () => unknown, pattern: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(CheckpointError);
  expect((caught as CheckpointError).code).toBe('E_CHECKPOINT');
  expect((caught as Error).message).toMatch(pattern);
}

describe('encodeSafetensors', () => {
  it('writes the exact bytes of the format for a small F32 + I32 pair', () => {
    const bytes = encodeSafetensors(
      {
        // Inserted out of order: the file must list and pack tensors sorted by name.
        z: { dtype: 'I32', shape: [2], data: new Int32Array([-1, 258]) },
        a: { dtype: 'F32', shape: [1, 2], data: new Float32Array([1, -2]) },
      },
      { format: 'pt' },
    );
    const json =
      '{"__metadata__":{"format":"pt"},' +
      '"a":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},' +
      '"z":{"dtype":"I32","shape":[2],"data_offsets":[8,16]}}';
    const padded = Math.ceil(json.length / 8) * 8;
    const expected = buildBlob(
      json,
      [
        0x00,
        0x00,
        0x80,
        0x3f, // 1.0f little-endian
        0x00,
        0x00,
        0x00,
        0xc0, // -2.0f
        0xff,
        0xff,
        0xff,
        0xff, // -1
        0x02,
        0x01,
        0x00,
        0x00, // 258
      ],
      padded,
    );
    expect(Array.from(bytes)).toEqual(Array.from(expected));
    expect((bytes.length - 16 - 8) % 8).toBe(0);
  });

  it('pads the header with spaces so the data section is 8-byte aligned', () => {
    for (let nameLength = 1; nameLength <= 9; nameLength++) {
      const bytes = encodeSafetensors({ ['x'.repeat(nameLength)]: { dtype: 'F32', shape: [1], data: new Float32Array([3]) } });
      const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      expect(headerLength % 8).toBe(0);
      const header = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
      expect(header.trimEnd().endsWith('}')).toBe(true);
      expect(/^[^ ]*\}( *)$/.exec(header)?.[1].length).toBeLessThan(8);
    }
  });

  it('refuses dtypes it cannot write, mismatched arrays and shape/size disagreements', () => {
    expectCheckpointError(
      () => encodeSafetensors({ h: { dtype: 'F16', shape: [1], data: new Float32Array([1]) } }),
      /cannot encode tensor "h" as F16/,
    );
    expectCheckpointError(
      () => encodeSafetensors({ w: { dtype: 'F32', shape: [2], data: new Int32Array([1, 2]) } }),
      /dtype F32 but its data is a Int32Array/,
    );
    expectCheckpointError(
      () => encodeSafetensors({ w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }),
      /shape \[2, 2\] \(4 elements\) but 3 data elements/,
    );
    expectCheckpointError(() => encodeSafetensors({ __metadata__: { dtype: 'F32', shape: [], data: new Float32Array(1) } }), /reserved/);
  });
});

describe('decodeSafetensors', () => {
  it('reads a hand-built fixture with F32, I32, F16 and BF16 tensors and metadata', () => {
    const header =
      '{"__metadata__":{"step":"7"},' +
      '"bf":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]},' +
      '"f16":{"dtype":"F16","shape":[2,2],"data_offsets":[6,14]},' +
      '"ids":{"dtype":"I32","shape":[2],"data_offsets":[14,22]},' +
      '"w":{"dtype":"F32","shape":[1],"data_offsets":[22,26]},' +
      '"empty":{"dtype":"F32","shape":[0,3],"data_offsets":[26,26]}}';
    const blob = buildBlob(header, [
      0x80,
      0x3f,
      0x00,
      0xc0,
      0x49,
      0x40, // BF16: 1.0, -2.0, 3.140625
      0x00,
      0x3c,
      0xff,
      0x7b,
      0x01,
      0x00,
      0x00,
      0xfc, // F16: 1.0, 65504, 2^-24 (subnormal), -inf
      0x07,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x80, // I32: 7, -2^31
      0x00,
      0x00,
      0x00,
      0x3f, // F32: 0.5
    ]);
    const { tensors, metadata } = decodeSafetensors(blob);
    expect(metadata).toEqual({ step: '7' });
    expect(tensors.bf.dtype).toBe('BF16');
    expect(tensors.bf.data).toBeInstanceOf(Float32Array);
    expect(Array.from(tensors.bf.data)).toEqual([1, -2, 3.140625]);
    expect(tensors.f16.shape).toEqual([2, 2]);
    expect(Array.from(tensors.f16.data)).toEqual([1, 65504, 2 ** -24, -Infinity]);
    expect(tensors.ids.data).toBeInstanceOf(Int32Array);
    expect(Array.from(tensors.ids.data)).toEqual([7, -(2 ** 31)]);
    expect(Array.from(tensors.w.data)).toEqual([0.5]);
    expect(tensors.empty.shape).toEqual([0, 3]);
    expect(tensors.empty.data.length).toBe(0);
  });

  it('decodes F16 NaN, negative zero and the smallest normal exactly', () => {
    const blob = buildBlob('{"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]}}', [0x01, 0x7e, 0x00, 0x80, 0x00, 0x04]);
    const values = Array.from(decodeSafetensors(blob).tensors.h.data);
    expect(values[0]).toBeNaN();
    expect(Object.is(values[1], -0)).toBe(true);
    expect(values[2]).toBe(2 ** -14);
  });

  it('round-trips encode → decode, including from a view at an odd byte offset', () => {
    const tensors: Record<string, NamedTensor> = {
      'layer.0.weight': { dtype: 'F32', shape: [2, 3], data: new Float32Array([0.1, -1e-30, 3e38, Infinity, -0, 7]) },
      'layer.0.bias': { dtype: 'F32', shape: [3], data: new Float32Array([1, 2, 3]) },
      scalar: { dtype: 'F32', shape: [], data: new Float32Array([42]) },
      tokens: { dtype: 'I32', shape: [4], data: new Int32Array([0, 2147483647, -2147483648, 5]) },
    };
    const encoded = encodeSafetensors(tensors, { a: 'b' });
    const shifted = new Uint8Array(encoded.length + 3);
    shifted.set(encoded, 3);
    for (const bytes of [encoded, shifted.subarray(3)]) {
      const decoded = decodeSafetensors(bytes);
      expect(decoded.metadata).toEqual({ a: 'b' });
      expect(Object.keys(decoded.tensors).sort()).toEqual(Object.keys(tensors).sort());
      for (const [name, tensor] of Object.entries(tensors)) {
        expect(decoded.tensors[name].dtype).toBe(tensor.dtype);
        expect(decoded.tensors[name].shape).toEqual(tensor.shape);
        expect(decoded.tensors[name].data.constructor).toBe(tensor.data.constructor);
        expect(Array.from(decoded.tensors[name].data)).toEqual(Array.from(tensor.data));
      }
    }
  });

  it('decodes from a Node Buffer that is a slice of a larger pool', () => {
    const encoded = encodeSafetensors({ x: { dtype: 'F32', shape: [2], data: new Float32Array([1.5, -3]) } });
    const pooled = Buffer.concat([Buffer.alloc(13, 7), Buffer.from(encoded), Buffer.alloc(11, 9)]);
    const view = pooled.subarray(13, 13 + encoded.length);
    const decoded = decodeSafetensors(view).tensors.x.data;
    expect(decoded.length).toBe(2);
    expect(Array.from(decoded)).toEqual([1.5, -3]);
  });

  it('omits __metadata__ when none is given and decodes it as an empty object', () => {
    const bytes = encodeSafetensors({ x: { dtype: 'I32', shape: [1], data: new Int32Array([1]) } });
    expect(new TextDecoder().decode(bytes)).not.toContain('__metadata__');
    expect(decodeSafetensors(bytes).metadata).toEqual({});
  });

  describe('malformed input', () => {
    const valid = encodeSafetensors({
      a: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) },
      b: { dtype: 'I32', shape: [1], data: new Int32Array([3]) },
    });

    it('too short for the length word', () => {
      expectCheckpointError(() => decodeSafetensors(new Uint8Array(5)), /truncated: 5 bytes, need at least 8/);
    });

    it('header length beyond the blob', () => {
      expectCheckpointError(() => decodeSafetensors(valid.subarray(0, 20)), /truncated: header claims \d+ bytes but only 12 follow/);
    });

    it('absurd header length', () => {
      const bytes = new Uint8Array(16);
      new DataView(bytes.buffer).setBigUint64(0, 2n ** 62n, true);
      expectCheckpointError(() => decodeSafetensors(bytes), /exceeds the 100000000-byte limit/);
    });

    it('truncated data section', () => {
      expectCheckpointError(
        () => decodeSafetensors(valid.subarray(0, valid.length - 2)),
        /tensor "b": data_offsets \[8, 12\] run past the data section \(10 bytes\)/,
      );
    });

    it('trailing bytes after the last tensor', () => {
      const longer = new Uint8Array(valid.length + 4);
      longer.set(valid);
      expectCheckpointError(() => decodeSafetensors(longer), /16 bytes but tensors cover only 12/);
    });

    it('bad JSON', () => {
      expectCheckpointError(() => decodeSafetensors(buildBlob('{"a": [', [])), /header is not valid UTF-8 JSON/);
    });

    it('header that is not an object', () => {
      expectCheckpointError(() => decodeSafetensors(buildBlob('[1,2]', [])), /must be a JSON object/);
    });

    it('shape/size mismatch', () => {
      const blob = buildBlob('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', new Array(8).fill(0));
      expectCheckpointError(() => decodeSafetensors(blob), /"a": shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 8\] span 8/);
    });

    it('unsupported dtype', () => {
      const blob = buildBlob('{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}', new Array(8).fill(0));
      expectCheckpointError(() => decodeSafetensors(blob), /"a" has unsupported dtype "F64"/);
    });

    it('invalid offsets and shapes', () => {
      expectCheckpointError(
        () => decodeSafetensors(buildBlob('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}', new Array(4).fill(0))),
        /invalid data_offsets \[4,0\]/,
      );
      expectCheckpointError(
        () => decodeSafetensors(buildBlob('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', new Array(4).fill(0))),
        /invalid shape \[-1\]/,
      );
    });

    it('overlapping tensors', () => {
      const blob = buildBlob(
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
        new Array(8).fill(0),
      );
      expectCheckpointError(() => decodeSafetensors(blob), /starts at byte 4 but the previous tensor ends at 8/);
    });

    it('non-string metadata value', () => {
      const blob = buildBlob('{"__metadata__":{"n":3}}', []);
      expectCheckpointError(() => decodeSafetensors(blob), /__metadata__ value for "n" must be a string/);
    });
  });
});
