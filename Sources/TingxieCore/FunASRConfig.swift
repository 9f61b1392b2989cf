import Foundation

/// The first message of a FunASR WebSocket stream, as FunASR's clients send it, checked: the
/// mode, the sample rate (any JSON number, taken only as a whole rate from 8 to 48 kHz), the
/// audio format and the hotwords. Parsing only, so that it can be fuzzed on its own.
public struct FunASRConfig: Sendable, Equatable {
    public enum Mode: String, Sendable { case offline, online, twoPass = "2pass" }

    public var mode: Mode
    public var wavName: String?
    /// `pcm` (16-bit little-endian mono) or, offline only, a container ffmpeg reads.
    public var wavFormat: String
    public var sampleRate: Int
    /// The hotwords as a Tingxie hotword list (one term a line, optional weight), if any.
    public var hotwords: String?

    /// FunASR's integer weights have 20 as the usual value (its examples' hotword files); they
    /// are divided by this onto Tingxie's scale (1 normal).
    public static let funASRNormalWeight = 20.0

    private struct Wire: Decodable {
        var mode: String?
        var wav_name: String?
        var wav_format: String?
        var audio_fs: Double?
        var hotwords: String?
    }

    public init(json text: String, defaultSampleRate: Int) throws {
        let wire: Wire
        do {
            wire = try JSONDecoder().decode(Wire.self, from: Data(text.utf8))
        } catch {
            throw TingxieError(.invalidArgument, "the config is not valid JSON: \(text.prefix(80))")
        }
        guard let mode = Mode(rawValue: wire.mode ?? "offline") else {
            throw TingxieError(.invalidArgument, "mode must be offline, online or 2pass")
        }
        self.mode = mode
        sampleRate = try wire.audio_fs.map { try ClientNumber.integer($0, field: "audio_fs", in: 8000...48_000) } ?? defaultSampleRate
        wavFormat = wire.wav_format ?? "pcm"
        if mode != .offline, wavFormat != "pcm" {
            throw TingxieError(.invalidArgument, "\(mode.rawValue) mode takes PCM only (wav_format \"pcm\")")
        }
        wavName = wire.wav_name
        hotwords = Self.hotwordList(wire.hotwords)
    }

    /// FunASR sends hotwords as JSON `{"词": weight}` or as a list of words separated by spaces or
    /// (its current client, from a hotword file) commas; weights are scaled by
    /// `funASRNormalWeight` and clamped to Tingxie's range.
    public static func hotwordList(_ text: String?) -> String? {
        guard let text, !text.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
        if let weights = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] {
            return Hotword.listText(weights.keys.sorted().map { word in
                let weight = (weights[word] as? NSNumber)?.doubleValue ?? funASRNormalWeight
                let scaled = weight.isFinite ? weight / funASRNormalWeight : 1
                return Hotword(word, weight: min(Hotword.weightRange.upperBound, max(Hotword.weightRange.lowerBound, scaled)))
            })
        }
        let words = text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "，" || $0 == "\n" })
        return words.isEmpty ? nil : words.joined(separator: "\n")
    }

    /// Whether a text message after the config ends the input: `"is_speaking": false`, or
    /// `"is_end": true` (FunASR's current clients send both and wait for an answer carrying
    /// `"is_end": true`).
    public static func endsInput(_ text: String) -> Bool {
        guard let message = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return false }
        return message["is_speaking"] as? Bool == false || message["is_end"] as? Bool == true
    }
}
