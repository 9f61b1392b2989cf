// AudioWorklet: microphone audio -> 16-bit PCM at the target rate, posted about every 100 ms
// with its level. Down-sampling averages the input samples that fall into each output sample.
class PCMCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.ratio = sampleRate / options.processorOptions.targetRate;
    this.chunk = Math.round(options.processorOptions.targetRate / 10);
    this.out = new Int16Array(this.chunk);
    this.filled = 0;
    this.sum = 0;
    this.count = 0;
    this.position = 0;
    this.peak = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (const value of channel) {
      this.sum += value;
      this.count += 1;
      this.position += 1;
      if (this.position >= this.ratio) {
        this.position -= this.ratio;
        const sample = Math.max(-1, Math.min(1, this.sum / this.count));
        this.peak = Math.max(this.peak, Math.abs(sample));
        this.out[this.filled++] = sample < 0 ? sample * 0x8000 : sample * 0x7fff;
        this.sum = 0;
        this.count = 0;
        if (this.filled === this.chunk) {
          this.port.postMessage({ pcm: this.out, level: this.peak });
          this.out = new Int16Array(this.chunk);
          this.filled = 0;
          this.peak = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PCMCapture);
