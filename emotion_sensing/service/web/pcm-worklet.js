// AudioWorklet: microphone samples -> 16 kHz mono PCM16 chunks posted to the page.
// Downsampling averages the input samples that fall into each output sample (a box
// filter), enough for the voice recognizer's features; at 16 kHz input it only converts.

class Pcm16Writer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { targetRate = 16000, chunkMs = 100 } = options.processorOptions || {};
    this.step = sampleRate / targetRate;  // input samples per output sample
    this.size = Math.round(targetRate * chunkMs / 1000);
    this.chunk = new Int16Array(this.size);
    this.filled = 0;
    this.sum = 0;
    this.count = 0;
    this.position = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const frames = channels[0].length;
    for (let i = 0; i < frames; i++) {
      let value = 0;
      for (const channel of channels) value += channel[i];
      this.sum += value / channels.length;
      this.count++;
      this.position++;
      if (this.position >= this.step) {
        this.position -= this.step;
        this.write(this.sum / this.count);
        this.sum = 0;
        this.count = 0;
      }
    }
    return true;
  }

  write(value) {
    const clipped = Math.max(-1, Math.min(1, value));
    this.chunk[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
    if (this.filled === this.size) {
      this.port.postMessage(this.chunk.buffer, [this.chunk.buffer]);
      this.chunk = new Int16Array(this.size);
      this.filled = 0;
    }
  }
}

registerProcessor("pcm16-writer", Pcm16Writer);
