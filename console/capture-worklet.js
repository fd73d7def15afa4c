// capture-worklet.js: the AudioWorklet processor of the speaker page's microphone capture. It
// runs on the audio thread, mixes the input down to mono and posts blocks of 2,048 samples (at
// the AudioContext's own rate, ~43 ms at 48 kHz) to the page, which resamples and sends them
// (speaker.js, pcm.js). Browsers without AudioWorklet use a ScriptProcessorNode instead.

const BLOCK_SAMPLES = 2048;

class PcmCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(BLOCK_SAMPLES);
    this.filled = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const frames = channels[0].length;
    for (let frame = 0; frame < frames; frame++) {
      let sum = 0;
      for (const channel of channels) sum += channel[frame];
      this.block[this.filled++] = sum / channels.length;
      if (this.filled === BLOCK_SAMPLES) {
        this.port.postMessage(this.block, [this.block.buffer]);
        this.block = new Float32Array(BLOCK_SAMPLES);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
