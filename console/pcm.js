// pcm.js: microphone samples made into what `sendAudio` carries (docs/asyncapi.yaml): 16 kHz
// mono 16-bit little-endian PCM, base64-encoded, in chunks of 200 ms.
//
// A chunk of 200 ms is 6,400 bytes of PCM, 8,536 characters of base64: one frame of about
// 8.6 KB, well inside API Gateway's 32 KB per frame, at five frames a second.

/** The sample rate the service takes. */
export const SERVICE_RATE = 16_000;
/** Samples per `sendAudio` chunk: 200 ms at 16 kHz. */
export const CHUNK_SAMPLES = 3_200;
/** A chunk's duration in milliseconds. */
export const CHUNK_MS = (CHUNK_SAMPLES * 1000) / SERVICE_RATE;

/**
 * Resamples a stream of blocks from `inputRate` to `outputRate`. Downsampling averages the input
 * samples that fall into each output sample's period (a box filter, enough against aliasing for
 * speech); upsampling holds the last sample. State carries over from block to block.
 */
export class Resampler {
  constructor(inputRate, outputRate = SERVICE_RATE) {
    this.step = inputRate / outputRate;
    this.position = 0;
    this.next = this.step;
    this.sum = 0;
    this.count = 0;
    this.last = 0;
  }

  /** The output samples that `block` (Float32Array at the input rate) completes. */
  push(block) {
    const out = new Float32Array(Math.ceil(block.length / this.step) + 2);
    let written = 0;
    for (const sample of block) {
      this.sum += sample;
      this.count += 1;
      this.position += 1;
      this.last = sample;
      while (this.position >= this.next) {
        out[written++] = this.count > 0 ? this.sum / this.count : this.last;
        this.sum = 0;
        this.count = 0;
        this.next += this.step;
      }
    }
    return out.subarray(0, written);
  }
}

/** Cuts a stream of 16 kHz float samples into Int16Array chunks of `size` samples. */
export class Chunker {
  constructor(size = CHUNK_SAMPLES) {
    this.chunk = new Int16Array(size);
    this.filled = 0;
  }

  /** The chunks that `samples` completes (each a fresh Int16Array). */
  push(samples) {
    const done = [];
    for (const sample of samples) {
      const clamped = Math.max(-1, Math.min(1, sample));
      this.chunk[this.filled++] = clamped < 0 ? Math.round(clamped * 0x8000) : Math.round(clamped * 0x7fff);
      if (this.filled === this.chunk.length) {
        done.push(this.chunk);
        this.chunk = new Int16Array(this.chunk.length);
        this.filled = 0;
      }
    }
    return done;
  }
}

/** The bytes of 16-bit samples, little-endian whatever the machine's order. */
export function littleEndianBytes(samples) {
  const bytes = new Uint8Array(samples.length * 2);
  const view = new DataView(bytes.buffer);
  samples.forEach((sample, index) => view.setInt16(index * 2, sample, true));
  return bytes;
}

/** Standard base64 (padded), as `audioData` wants it. */
export function base64(bytes) {
  let binary = "";
  for (let start = 0; start < bytes.length; start += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(start, start + 0x8000));
  }
  return btoa(binary);
}

/** The level of a block of float samples in dBFS (-Infinity for silence). */
export function levelDbfs(block) {
  let squares = 0;
  for (const sample of block) squares += sample * sample;
  return 10 * Math.log10(squares / Math.max(1, block.length));
}
