import Foundation

/// The first message of a FunASR WebSocket stream, as FunASR's clients send it, checked: the
/// mode, the sample rate (any JSON number, taken only as a whole rate from 8 to 48 kHz), the
/// audio format, the chunk settings and the hotwords. Parsing only, so that it can be fuzzed on
/// its own.
public struct FunASRConfig: Sendable, Equatable {
    public enum Mode: String, Sendable { case offline, online, twoPass = "2pass" }

    public var mode: Mode
    public var wavName: String?
    /// `pcm` (16-bit little-endian mono) or, offline only, a container ffmpeg reads.
    public var wavFormat: String
    public var sampleRate: Int
    /// The hotwords as a Tingxie hotword list (one term a line, optional weight), if any.
    public var hotwords: String?
    /// How much new speech comes between two live partial recognitions, from `chunk_size`; `nil`
    /// when the client sent none.
    ///
    /// FunASR's server decodes its streaming model every `chunk_interval` messages, and its clients
    /// send messages of `60 ms × chunk_size[1] / chunk_interval`: one decode per `chunk_size[1]`
    /// × 60 ms of audio (600 ms for the usual `[5, 10, 5]`), whatever the interval. Tingxie
    /// counts audio rather than messages, so clients that send other message sizes get the
    /// same cadence; `chunk_interval` is checked but changes nothing.
    public var partialIntervalSeconds: Double?

    /// The audio one `chunk_size[1]` stands for.
    public static let chunkUnitSeconds = 0.06

    /// FunASR's integer weights have 20 as the usual value (its examples' hotword files); they
    /// are divided by this onto Tingxie's scale (1 normal).
    public static let funASRNormalWeight = 20.0

    private struct Wire: Decodable {
        var mode: String?
        var wav_name: String?
        var wav_format: String?
        var audio_fs: Double?
        var hotwords: String?
        var chunk_size: Numbers?
        var chunk_interval: Numbers?
    }

    /// A JSON value where numbers are expected: one, a list, or a text of comma-separated ones
    /// (FunASR takes `chunk_size` as `[5, 10, 5]` or `"5,10,5"`). Anything else is kept as
    /// `nil`s, so that the check names the field instead of failing the whole config.
    private struct Numbers: Decodable {
        var values: [Double?]

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Double.self) {
                values = [number]
            } else if let list = try? container.decode([Double?].self) {
                values = list
            } else if let text = try? container.decode(String.self) {
                values = text.split(separator: ",", omittingEmptySubsequences: false)
                    .map { Double($0.trimmingCharacters(in: .whitespaces)) }
            } else {
                values = [nil]
            }
        }
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
        if let chunkSize = wire.chunk_size {
            let message = "chunk_size must be three whole numbers such as [5, 10, 5] (the middle one from 1 to 100)"
            guard chunkSize.values.count == 3 else { throw TingxieError(.invalidArgument, message) }
            let values = try chunkSize.values.enumerated().map { index, value in
                guard let value else { throw TingxieError(.invalidArgument, message) }
                return try ClientNumber.integer(value, field: "chunk_size[\(index)]", in: index == 1 ? 1...100 : 0...100)
            }
            partialIntervalSeconds = Double(values[1]) * Self.chunkUnitSeconds
        }
        if let interval = wire.chunk_interval {
            guard interval.values.count == 1, let value = interval.values[0] else {
                throw TingxieError(.invalidArgument, "chunk_interval must be a whole number from 1 to 100")
            }
            _ = try ClientNumber.integer(value, field: "chunk_interval", in: 1...100)
        }
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
