import Foundation
import TingxieCore

/// Opens any supported audio file as a 16 kHz mono stream: WAV natively, everything else
/// through a sandboxed ffmpeg.
public enum AudioDecoder {
    /// - Parameter allowPartial: a truncated or corrupt file gives its readable audio, with
    ///   warnings, instead of an error when its end is reached.
    /// - Throws: `TingxieError` naming the file: `.fileNotFound`, `.invalidAudio`,
    ///   `.unsupportedFormat` or `.decodeError`; `.audioTruncated` or `.audioCorrupt` at the end.
    public static func open(_ url: URL, limits: SubprocessLimits = SubprocessLimits(), allowPartial: Bool = false) throws -> any AudioSource {
        if try isWAV(url) {
            return try WAVReader(url: url)
        }
        return try FFmpegSource(url: url, limits: limits, allowPartial: allowPartial)
    }

    /// The duration in seconds of a file, read from its header without decoding it; `nil` when
    /// the container does not say.
    /// - Throws: as `open`.
    public static func duration(of url: URL, limits: SubprocessLimits = SubprocessLimits()) throws -> Double? {
        if try isWAV(url) {
            let reader = try WAVReader(url: url)
            defer { reader.close() }
            return reader.duration
        }
        return try FFmpegSource.probe(url, limits: limits).duration
    }

    private static func isWAV(_ url: URL) throws -> Bool {
        let name = url.lastPathComponent
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw TingxieError(.fileNotFound, "\(name): no such file or not readable")
        }
        let prefix = (try? handle.read(upToCount: 12)) ?? Data()
        try? handle.close()
        if prefix.isEmpty {
            throw TingxieError(.invalidAudio, "\(name): the file is empty")
        }
        return WAVReader.looksLikeWAV(prefix)
    }
}
