import Foundation
import TingxieCore

/// What a probe found out about a media file before any decoding.
public struct AudioProbe: Sendable, Equatable {
    /// Container as ffprobe names it (`mp3`, `mov,mp4,m4a,3gp,3g2,mj2`, `wav`, ...).
    public var container: String
    /// Codec of the first audio stream.
    public var codec: String
    /// Declared duration in seconds, when the container states one.
    public var duration: Double?
    /// Whether ffprobe estimated `duration` from the bit rate (an MP3 or AAC stream without a
    /// frame count) rather than read it: a shorter decode is then no sign of truncation.
    public var durationIsEstimate = false
    public var sampleRate: Int?
    public var channels: Int?
}

/// Decodes any container ffmpeg reads into 16 kHz mono Float32, through a sandboxed subprocess:
/// no stdin, only the `file` protocol, an allow-list of demuxers (no playlists, `concat`, image
/// sequences or network), CPU and memory limits, and a kill when it stalls.
public final class FFmpegSource: AudioSource {
    /// Demuxers Tingxie accepts. Playlists (`hls`, `concat`), image sequences and anything that
    /// opens other files or URLs are not among them.
    public static let allowedDemuxers = [
        "wav", "w64", "mp3", "mov", "mp4", "m4a", "3gp", "3g2", "mj2", "ogg", "flac", "matroska", "webm",
        "aac", "amr", "amrnb", "amrwb", "asf", "caf", "aiff",
    ]

    public let probe: AudioProbe
    public var duration: Double? { probe.duration }
    public private(set) var warnings: [String] = []
    /// Whether audio that decodes only in part ends as warnings rather than as an error.
    private let allowPartial: Bool
    private let url: URL
    private let name: String
    private let process: Subprocess
    private var decodedSamples = 0
    private var leftover = Data()
    private var finished = false
    private static let bytesPerRead = 65_536
    /// How much longer than probed a file may decode (times the probed duration, plus a minute).
    static let durationMargin = 1.5

    /// Probes `url` and starts decoding it.
    /// - Parameter allowPartial: a truncated or corrupt file gives its readable audio and a
    ///   warning (`warnings`) instead of an error at its end.
    /// - Throws: `TingxieError` `.unsupportedFormat` when ffprobe finds no allowed container with
    ///   audio, `.decodeError` when the decoder cannot start.
    public init(url: URL, limits: SubprocessLimits = SubprocessLimits(), allowPartial: Bool = false) throws {
        name = url.lastPathComponent
        self.url = url
        self.allowPartial = allowPartial
        probe = try Self.probe(url, limits: limits)
        var limits = limits
        // Decoding needs a small fraction of real time; anything far beyond that is hostile.
        limits.cpuSeconds = min(limits.cpuSeconds, 30 + Int((probe.duration ?? 36_000) * 0.25))
        // Nothing is decoded far past what the file said it holds (and was admitted for): a
        // header claiming 10 s over hours of audio yields a little more than 10 s. The margin
        // covers estimates (a VBR MP3 without a Xing header is probed from its bitrate).
        let cap = probe.duration.map { ["-t", String(format: "%.3f", $0 * Self.durationMargin + 60)] } ?? []
        process = try Subprocess(executable: "ffmpeg", arguments: [
            "-nostdin", "-hide_banner", "-v", "error",
            "-protocol_whitelist", "file", "-format_whitelist", Self.allowedDemuxers.joined(separator: ","),
            "-threads", "1", "-i", "file:" + url.path,
            "-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", "\(modelSampleRate)",
        ] + cap + ["-f", "f32le", "pipe:1"], limits: limits, environment: Subprocess.minimalEnvironment)
    }

    public func nextChunk() throws -> [Float]? {
        guard !finished else { return nil }
        let data = try process.read(upToCount: Self.bytesPerRead)
        if data.isEmpty {
            finished = true
            try checkEnd()
            return nil
        }
        var bytes = leftover + data
        let usable = bytes.count - bytes.count % 4
        leftover = bytes.suffix(from: bytes.startIndex + usable)
        bytes = bytes.prefix(usable)
        var samples = [Float](repeating: 0, count: usable / 4)
        _ = samples.withUnsafeMutableBytes { bytes.copyBytes(to: $0) }
        for i in samples.indices where !samples[i].isFinite { samples[i] = 0 }
        decodedSamples += samples.count
        return samples
    }

    public func close() {
        process.terminate()
    }

    /// Turns how the decoder ended into an error, a warning, or nothing. Audio that stops well
    /// short of the duration its container states exactly is truncated; a decoder that
    /// complained (it prints errors only) or failed after some audio met corrupt data. Either
    /// is an error unless partial audio is allowed, and then a warning; both say how much was read.
    private func checkEnd() throws {
        let status = process.wait()
        if process.wasStalled {
            throw TingxieError(.decodeError, "\(name): the decoder stalled and was stopped")
        }
        if status == 128 + SIGXCPU || status == 128 + SIGKILL {
            throw TingxieError(.decodeError, "\(name): the decoder exceeded its CPU limit")
        }
        let reason = process.lastErrorLine
        let detail = reason.isEmpty ? "" : " (\(reason))"
        guard status == 0 || decodedSamples > 0 else {
            throw TingxieError(.decodeError, "\(name): the audio could not be decoded" + detail)
        }
        let decoded = Double(decodedSamples) / Double(modelSampleRate)
        let problem: TingxieError
        if let declared = probe.duration, !probe.durationIsEstimate, decoded < declared * Self.truncationShare - 1 {
            problem = TingxieError(.audioTruncated, String(format: "%@: the audio ends after %.1f s of the %.1f s its container declares%@; only that part can be transcribed",
                                                           name, decoded, declared, detail))
        } else if probe.container == "ogg", !OggEnd.isComplete(url) {
            problem = TingxieError(.audioTruncated, String(format: "%@: the Ogg stream ends without its last page (the file was cut off) after %.1f s; only that part can be transcribed",
                                                           name, decoded))
        } else if status != 0 || !reason.isEmpty {
            let total = probe.duration.map { String(format: " of %.1f s", $0) } ?? ""
            problem = TingxieError(.audioCorrupt, String(format: "%@: the decoder met damaged data%@; %.1f s%@ were readable",
                                                         name, detail, decoded, total))
        } else {
            return
        }
        guard allowPartial else { throw problem }
        warnings.append(problem.message)
    }

    /// Audio that decodes to less than this share of its declared duration (less a second) is truncated.
    static let truncationShare = 0.9

    /// Runs ffprobe on `url` under the same sandbox.
    public static func probe(_ url: URL, limits: SubprocessLimits = SubprocessLimits()) throws -> AudioProbe {
        let name = url.lastPathComponent
        var probeLimits = limits
        probeLimits.cpuSeconds = min(limits.cpuSeconds, 30)
        // Warnings too: the one that says a duration was estimated.
        let process = try Subprocess(executable: "ffprobe", arguments: [
            "-hide_banner", "-v", "warning",
            "-protocol_whitelist", "file", "-format_whitelist", allowedDemuxers.joined(separator: ","),
            "-show_entries", "format=format_name,duration:stream=codec_type,codec_name,sample_rate,channels,duration",
            "-of", "json", "file:" + url.path,
        ], limits: probeLimits, environment: Subprocess.minimalEnvironment)
        let output = try process.readAll(limit: 1 << 20)
        let status = process.wait()
        struct Output: Decodable {
            struct Format: Decodable { var format_name: String?; var duration: String? }
            struct Stream: Decodable { var codec_type: String?; var codec_name: String?; var sample_rate: String?; var channels: Int?; var duration: String? }
            var format: Format?
            var streams: [Stream]?
        }
        guard status == 0, let parsed = try? JSONDecoder().decode(Output.self, from: output),
              let container = parsed.format?.format_name else {
            let reason = process.lastErrorLine
            throw TingxieError(.unsupportedFormat, "\(name): not an audio or video file Tingxie can read" + (reason.isEmpty ? "" : " (\(reason))"))
        }
        guard let audio = parsed.streams?.first(where: { $0.codec_type == "audio" }) else {
            throw TingxieError(.unsupportedFormat, "\(name): the \(container) file has no audio stream")
        }
        return AudioProbe(
            container: container,
            codec: audio.codec_name ?? "unknown",
            // The audio stream's own length where it has one (a video's audio may be shorter than the video).
            duration: (audio.duration ?? parsed.format?.duration).flatMap(Double.init).flatMap { $0.isFinite && $0 > 0 ? $0 : nil },
            durationIsEstimate: process.errorText.contains("Estimating duration from bitrate"),
            sampleRate: audio.sample_rate.flatMap(Int.init),
            channels: audio.channels
        )
    }
}
