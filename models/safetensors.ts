/**
 * The safetensors container format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
 * (`{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {k: v}}`, padded with spaces so the
 * data section starts 8-byte aligned), then the raw little-endian tensor bytes. Offsets are relative to
 * the start of the data section. Files written here load in the reference Python implementation and
 * vice versa (F32/I32 written; F32, I32, F16 and BF16 read).
 */
import { CheckpointError } from '../core/errors.js';

/** Element types this module understands. F16 and BF16 are read only, widened to float32. */
export type TensorDType = 'F32' | 'F16' | 'BF16' | 'I32';

/** One tensor: row-major `data` with `product(shape)` elements. F16/BF16 decode to a Float32Array. */
export interface NamedTensor {
  dtype: TensorDType;
  shape: number[];
  data: Float32Array | Int32Array;
}

const BYTES_PER_ELEMENT: Record<TensorDType, number> = { F32: 4, F16: 2, BF16: 2, I32: 4 };
const METADATA_KEY = '__metadata__';
/** The file is little-endian; on such hosts tensor bytes are copied wholesale instead of per element. */
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Refuse headers above 100 MB: a corrupt length word would otherwise make us parse gigabytes. */
const MAX_HEADER_BYTES = 100_000_000;

/**
 * Serialise tensors (sorted by name, data packed back to back in that order) with optional string metadata.
 * Only F32 (Float32Array data) and I32 (Int32Array data) can be written.
 */
export function encodeSafetensors(tensors: Record<string, NamedTensor>, metadata?: Record<string, string>): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') {
        throw new CheckpointError(`safetensors metadata value for "${key}" must be a string, got ${typeof value}`);
      }
    }
    header[METADATA_KEY] = { ...metadata };
  }
  let offset = 0;
  for (const name of names) {
    if (name === METADATA_KEY) throw new CheckpointError(`tensor name "${METADATA_KEY}" is reserved by the safetensors format`);
    const tensor = tensors[name];
    validateForEncoding(name, tensor);
    const byteLength = tensor.data.length * 4;
    header[name] = { dtype: tensor.dtype, shape: [...tensor.shape], data_offsets: [offset, offset + byteLength] };
    offset += byteLength;
  }

  const json = new TextEncoder().encode(JSON.stringify(header));
  const paddedLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + paddedLength + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(paddedLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + paddedLength);

  let cursor = 8 + paddedLength;
  for (const name of names) {
    const data = tensors[name].data;
    if (HOST_IS_LITTLE_ENDIAN) out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), cursor);
    else if (data instanceof Float32Array) for (let i = 0; i < data.length; i++) view.setFloat32(cursor + 4 * i, data[i], true);
    else for (let i = 0; i < data.length; i++) view.setInt32(cursor + 4 * i, data[i], true);
    cursor += data.length * 4;
  }
  return out;
}

/**
 * Parse a safetensors blob. Throws CheckpointError naming the problem (truncated, bad JSON, unsupported
 * dtype, offsets out of range or overlapping, byte size not matching the shape) instead of returning garbage.
 */
export function decodeSafetensors(bytes: Uint8Array): { tensors: Record<string, NamedTensor>; metadata: Record<string, string> } {
  if (bytes.length < 8) {
    throw new CheckpointError(`safetensors blob is truncated: ${bytes.length} bytes, need at least 8 for the header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLengthBig = view.getBigUint64(0, true);
  if (headerLengthBig > BigInt(MAX_HEADER_BYTES)) {
    throw new CheckpointError(
      `safetensors header length ${headerLengthBig} exceeds the ${MAX_HEADER_BYTES}-byte limit; the file is corrupt or not safetensors`,
    );
  }
  const headerLength = Number(headerLengthBig);
  if (8 + headerLength > bytes.length) {
    throw new CheckpointError(
      `safetensors blob is truncated: header claims ${headerLength} bytes but only ${bytes.length - 8} follow the length word`,
    );
  }

  let parsed: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`safetensors header is not valid UTF-8 JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new CheckpointError('safetensors header must be a JSON object mapping tensor names to {dtype, shape, data_offsets}');
  }

  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: Record<string, NamedTensor> = {};
  const spans: Array<{ name: string; begin: number; end: number }> = [];

  for (const [name, entry] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
        throw new CheckpointError('safetensors __metadata__ must be an object of string values');
      }
      for (const [key, value] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof value !== 'string') {
          throw new CheckpointError(`safetensors __metadata__ value for "${key}" must be a string, got ${JSON.stringify(value)}`);
        }
        metadata[key] = value;
      }
      continue;
    }
    const { dtype, shape, begin, end } = parseEntry(name, entry);
    if (end > dataLength) {
      throw new CheckpointError(
        `safetensors tensor "${name}": data_offsets [${begin}, ${end}] run past the data section (${dataLength} bytes); the file is truncated or corrupt`,
      );
    }
    const elements = shape.reduce((a, b) => a * b, 1);
    const expectedBytes = elements * BYTES_PER_ELEMENT[dtype];
    if (end - begin !== expectedBytes) {
      throw new CheckpointError(
        `safetensors tensor "${name}": shape [${shape.join(', ')}] of ${dtype} needs ${expectedBytes} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    }
    spans.push({ name, begin, end });
    tensors[name] = { dtype, shape, data: readElements(bytes, dataStart + begin, elements, dtype) };
  }

  // Tensors must tile the data section without overlap or gaps, as the format requires.
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expectedBegin = 0;
  for (const span of spans) {
    if (span.begin !== expectedBegin) {
      throw new CheckpointError(
        `safetensors tensor "${span.name}" starts at byte ${span.begin} but the previous tensor ends at ${expectedBegin} (overlap or gap in data_offsets)`,
      );
    }
    expectedBegin = span.end;
  }
  if (expectedBegin !== dataLength) {
    throw new CheckpointError(
      `safetensors data section has ${dataLength} bytes but tensors cover only ${expectedBegin}; trailing bytes are not allowed`,
    );
  }
  return { tensors, metadata };
}

function validateForEncoding(name: string, tensor: NamedTensor): void {
  if (tensor.dtype !== 'F32' && tensor.dtype !== 'I32') {
    throw new CheckpointError(`cannot encode tensor "${name}" as ${tensor.dtype}: only F32 and I32 are written`);
  }
  const wantArray = tensor.dtype === 'F32' ? Float32Array : Int32Array;
  if (!(tensor.data instanceof wantArray)) {
    throw new CheckpointError(
      `tensor "${name}" has dtype ${tensor.dtype} but its data is a ${tensor.data.constructor.name}; expected ${wantArray.name}`,
    );
  }
  for (const dim of tensor.shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw new CheckpointError(`tensor "${name}" has an invalid dimension ${dim} in shape [${tensor.shape.join(', ')}]`);
    }
  }
  const elements = tensor.shape.reduce((a, b) => a * b, 1);
  if (elements !== tensor.data.length) {
    throw new CheckpointError(
      `tensor "${name}" has shape [${tensor.shape.join(', ')}] (${elements} elements) but ${tensor.data.length} data elements`,
    );
  }
}

function parseEntry(name: string, entry: unknown): { dtype: TensorDType; shape: number[]; begin: number; end: number } {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw new CheckpointError(`safetensors header entry for "${name}" must be an object with dtype, shape and data_offsets`);
  }
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(dtype in BYTES_PER_ELEMENT)) {
    throw new CheckpointError(
      `safetensors tensor "${name}" has unsupported dtype ${JSON.stringify(dtype)}; supported: F32, F16, BF16, I32`,
    );
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new CheckpointError(
      `safetensors tensor "${name}" has invalid shape ${JSON.stringify(shape)}; expected an array of non-negative integers`,
    );
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    throw new CheckpointError(
      `safetensors tensor "${name}" has invalid data_offsets ${JSON.stringify(offsets)}; expected [begin, end] with 0 <= begin <= end`,
    );
  }
  return { dtype: dtype as TensorDType, shape: shape as number[], begin: offsets[0] as number, end: offsets[1] as number };
}

function readElements(bytes: Uint8Array, start: number, count: number, dtype: TensorDType): Float32Array | Int32Array {
  if (HOST_IS_LITTLE_ENDIAN && (dtype === 'F32' || dtype === 'I32')) {
    // Copy into a fresh, 4-byte-aligned buffer, which typed-array views require. (Not bytes.slice(): on a
    // Node Buffer that is a view into a shared pool, not a copy.)
    const copy = new Uint8Array(count * 4);
    copy.set(bytes.subarray(start, start + count * 4));
    return dtype === 'F32' ? new Float32Array(copy.buffer) : new Int32Array(copy.buffer);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + start, count * BYTES_PER_ELEMENT[dtype]);
  switch (dtype) {
    case 'F32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    }
    case 'I32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(4 * i, true);
      return out;
    }
    case 'F16': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
      return out;
    }
    case 'BF16': {
      // bfloat16 is the top half of an IEEE float32, so widening is a 16-bit shift.
      const widened = new Uint32Array(count);
      for (let i = 0; i < count; i++) widened[i] = view.getUint16(2 * i, true) << 16;
      return new Float32Array(widened.buffer);
    }
  }
}

/** IEEE 754 binary16 → number: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24; // subnormal: m / 1024 * 2^-14
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}
