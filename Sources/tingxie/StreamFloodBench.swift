import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import Synchronization
import TingxieAudio
import TingxieCore

/// Stream flood (R8): several WebSocket clients each push `minutes` of 16-bit PCM (the corpus's
/// sentences with pauses, looped) over `/v1/stream` in 2pass mode as fast as the socket takes
/// it. Prints the RSS of the server (a `tingxie serve` child process) at idle and at its peak,
/// and what each client got back.
struct StreamFloodBench: Sendable {
    let server: BenchServer
    let files: [URL]
    let minutes: Double
    let clients: Int
    let work: URL

    struct Outcome: Sendable {
        var sentences = 0
        var characters = 0
        var ended = false
        var error: String?
    }

    func run() async throws {
        let loop = try BenchStream.corpusSpeech(files)
        say(String(format: "\n## Stream flood: %d clients, %g minutes of PCM each, 2pass, as fast as the socket takes it", clients, minutes))
        // Two workers, as `tingxie serve` has on 2 cores: no jobs, but their decode slots are
        // what the streams share.
        try await server.run(workers: 2, work: work) { server in
            let port = server.port
            try await Task.sleep(for: .seconds(1))
            let cold = server.residentBytes
            // Warm-up: 30 s through each decode slot, so that idle includes what the model's
            // first decodes allocate for good and growth is what streaming itself costs.
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<2 { group.addTask { _ = await Self.client(port: port, audio: loop, samples: 30 * 16_000) } }
            }
            try await Task.sleep(for: .seconds(6))   // the resource monitor trims the heap every 5 s
            let idle = server.residentBytes
            let started = ContinuousClock.now
            let outcomes = await withTaskGroup(of: Outcome.self) { group in
                for _ in 0..<clients {
                    group.addTask { await Self.client(port: port, audio: loop, samples: Int(minutes * 60 * 16_000)) }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            // The kernel's high-water mark: the peak of the whole run, warm-up included.
            let peak = server.peakResidentBytes
            let wall = (ContinuousClock.now - started).seconds
            say(String(format: "wall %.0f s for %g audio minutes in all (%.1fx real time)", wall, minutes * Double(clients),
                       minutes * 60 * Double(clients) / wall))
            say(String(format: "server RSS before any decode %.0f MB; idle after warm-up %.0f MB, peak %.0f MB, growth %.0f MB (goal <= 200 MB)",
                       Double(cold) / 1_048_576, Double(idle) / 1_048_576, Double(peak) / 1_048_576, Double(peak - idle) / 1_048_576))
            for (index, outcome) in outcomes.enumerated() {
                say("client \(index + 1): \(outcome.sentences) sentences (\(outcome.characters) characters), end \(outcome.ended ? "acknowledged" : "MISSING")"
                    + (outcome.error.map { ", error: \($0)" } ?? ""))
            }
        }
    }

    /// One client as fast as the socket takes it; counts the sentences (partials are not).
    static func client(port: Int, audio: [Int16], samples: Int) async -> Outcome {
        let outcome = Shared()
        do {
            try await BenchStream.run(port: port, name: "flood", audio: audio, samples: samples, realTime: false) { json in
                if let error = json["error"] as? [String: Any] {
                    outcome.withLock { $0.error = error["message"] as? String }
                } else if json["is_end"] as? Bool == true {
                    outcome.withLock { $0.ended = json["is_final"] as? Bool == true }
                } else if json["mode"] as? String == "2pass-offline" {
                    outcome.withLock {
                        $0.sentences += 1
                        $0.characters += (json["text"] as? String)?.count ?? 0
                    }
                }
            }
        } catch {
            outcome.withLock { $0.error = "\(error)" }
        }
        return outcome.withLock { $0 }
    }

    /// What one client saw, shared with its reading task.
    final class Shared: Sendable {
        private let value = Mutex(Outcome())
        func withLock<T: Sendable>(_ body: (inout Outcome) -> T) -> T { value.withLock { body(&$0) } }
    }
}

/// A FunASR-protocol client for the benchmarks: a 2pass stream that sends `samples` of `audio`
/// (looped) in 100 ms frames, at real-time pace when `realTime`, then the end flag, and hands
/// every JSON message to `onMessage` until the end acknowledgement or an error. `onSent` hears
/// how many samples have gone out.
enum BenchStream {
    /// The corpus sentences as 16-bit samples, each followed by 0.8 s of silence (the VAD ends the sentence).
    static func corpusSpeech(_ files: [URL]) throws -> [Int16] {
        var speech: [Int16] = []
        for file in files {
            speech += try WAVReader(url: file).readAll().map { Int16(max(-1, min(1, $0)) * 32767) }
            speech += [Int16](repeating: 0, count: 12_800)
        }
        return speech
    }

    static func run(port: Int, name: String, audio: [Int16], samples: Int, realTime: Bool,
                    onSent: @escaping @Sendable (Int) -> Void = { _ in },
                    onMessage: @escaping @Sendable ([String: Any]) -> Void) async throws {
        var logger = Logger(label: "bench-stream")
        logger.logLevel = .critical
        try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/v1/stream", configuration: .init(maxFrameSize: 1 << 20), logger: logger) { inbound, outbound, _ in
            try await outbound.write(.text(#"{"mode": "2pass", "wav_name": "\#(name)", "wav_format": "pcm", "audio_fs": 16000, "is_speaking": true}"#))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await message in inbound.messages(maxSize: 1 << 22) {
                        guard case .text(let text) = message,
                              let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { continue }
                        onMessage(json)
                        if json["is_end"] as? Bool == true || json["error"] != nil { return }
                    }
                }
                let clock = ContinuousClock()
                let started = clock.now
                var sent = 0
                var frame = [UInt8](repeating: 0, count: 3200)
                while sent < samples {
                    let count = min(1600, samples - sent)
                    for index in 0..<count {
                        let value = UInt16(bitPattern: audio[(sent + index) % audio.count])
                        frame[index * 2] = UInt8(value & 0xFF)
                        frame[index * 2 + 1] = UInt8(value >> 8)
                    }
                    try await outbound.write(.binary(ByteBuffer(bytes: frame[0..<(count * 2)])))
                    sent += count
                    onSent(sent)
                    if realTime { try await clock.sleep(until: started + .milliseconds(sent / 16), tolerance: .milliseconds(5)) }
                }
                try await outbound.write(.text(#"{"is_speaking": false, "is_end": true}"#))
                try await group.waitForAll()
            }
        }
    }
}
