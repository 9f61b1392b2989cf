import TingxieCore

/// The sample rate every decoder delivers and every model consumes.
public let modelSampleRate = 16_000

/// A stream of 16 kHz mono Float32 audio, read chunk by chunk so that memory does not
/// depend on the length of the audio. One instance is confined to one thread.
public protocol AudioSource: AnyObject {
    /// The audio's duration in seconds, when the container states it.
    var duration: Double? { get }
    /// Reads the next chunk of samples; `nil` at the end of the audio.
    func nextChunk() throws -> [Float]?
    /// Releases the file or subprocess behind the stream; safe to call more than once.
    func close()
    /// Seconds of audio already received and waiting to be read (live audio); 0 for files.
    var bufferedSeconds: Double { get }
    /// What could not be read, once the stream has ended (partial audio that was allowed).
    var warnings: [String] { get }
}

extension AudioSource {
    public var bufferedSeconds: Double { 0 }
    public var warnings: [String] { [] }

    /// Reads the rest of the stream into memory: for short files only (tests, corpus sentences).
    public func readAll() throws -> [Float] {
        var samples: [Float] = []
        while let chunk = try nextChunk() { samples += chunk }
        return samples
    }
}
