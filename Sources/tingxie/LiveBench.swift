import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import Synchronization
import TingxieAudio
import TingxieCore

/// Live partials: 1, 2 and 4 clients at once each stream the corpus sentences (with pauses) in
/// real time over `/v1/stream` in 2pass mode, to a `tingxie serve` child process. Prints the time
/// from each sentence's start to its first partial (p50, p95), the share of sentences that got
/// one, and the server's CPU time per second of streamed audio.
struct LiveBench: Sendable {
    let server: BenchServer
    let files: [URL]
    let seconds: Double
    let work: URL

    func run() async throws {
        var speech: [Int16] = []
        for file in files {
            speech += try WAVReader(url: file).readAll().map { Int16(max(-1, min(1, $0)) * 32767) }
            speech += [Int16](repeating: 0, count: 12_800)   // 0.8 s: the VAD ends the sentence
        }
        let audio = Array(speech.prefix(Int(seconds * 16_000)))
        say(String(format: "\n## Live partials: %.0f s of corpus sentences per client, streamed in real time (2pass), 2 workers", seconds))
        say("| clients | sentences | with a partial | first partial after sentence start, p50 | p95 | server CPU s per audio s per client |")
        say("|---:|---:|---:|---:|---:|---:|")
        try await server.run(workers: 2, work: work) { server in
            for clients in [1, 2, 4] {
                let cpuBefore = server.cpuSeconds
                let outcomes = await withTaskGroup(of: [Double?].self) { group in
                    for _ in 0..<clients { group.addTask { await Self.client(port: server.port, audio: audio) } }
                    return await group.reduce(into: []) { $0.append($1) }
                }
                let cpu = server.cpuSeconds - cpuBefore
                let delays = outcomes.flatMap { $0 }.compactMap { $0 }.sorted()
                let sentences = outcomes.map(\.count).reduce(0, +)
                func percentile(_ p: Double) -> Double {
                    delays.isEmpty ? .nan : delays[min(delays.count - 1, Int((p * Double(delays.count)).rounded(.up)) - 1)]
                }
                say(String(format: "| %d | %d | %d | %.2f s | %.2f s | %.3f |", clients, sentences, delays.count,
                           percentile(0.5), percentile(0.95), cpu / (seconds * Double(clients))))
            }
        }
    }

    /// Streams `audio` in 100 ms frames at real-time pace; returns, per finished sentence, how
    /// long after its start (on the stream's clock) its first partial arrived, or nil if none did.
    static func client(port: Int, audio: [Int16]) async -> [Double?] {
        let state = ClientState()
        var logger = Logger(label: "live")
        logger.logLevel = .critical
        try? await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/v1/stream", logger: logger) { inbound, outbound, _ in
            try await outbound.write(.text(#"{"mode": "2pass", "wav_name": "live", "wav_format": "pcm", "audio_fs": 16000, "is_speaking": true}"#))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        guard case .text(let text) = message,
                              let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { continue }
                        if json["is_end"] as? Bool == true || json["error"] != nil { return }
                        let now = Double(state.sent.load(ordering: .relaxed)) / 16_000
                        state.record.withLock { record in
                            if json["mode"] as? String == "2pass-online" {
                                if record.first == nil { record.first = now }
                            } else if let start = json["start_time"] as? Int {
                                record.delays.append(record.first.map { max(0, $0 - Double(start) / 1000) })
                                record.first = nil
                            }
                        }
                    }
                }
                let clock = ContinuousClock()
                let started = clock.now
                var frame = [UInt8](repeating: 0, count: 3200)
                for offset in stride(from: 0, to: audio.count, by: 1600) {
                    let count = min(1600, audio.count - offset)
                    for index in 0..<count {
                        let value = UInt16(bitPattern: audio[offset + index])
                        frame[index * 2] = UInt8(value & 0xFF)
                        frame[index * 2 + 1] = UInt8(value >> 8)
                    }
                    try await outbound.write(.binary(ByteBuffer(bytes: frame[0..<(count * 2)])))
                    state.sent.store(offset + count, ordering: .relaxed)
                    try await clock.sleep(until: started + .milliseconds((offset + count) / 16), tolerance: .milliseconds(5))
                }
                try await outbound.write(.text(#"{"is_speaking": false, "is_end": true}"#))
                try await group.waitForAll()
            }
        }
        return state.record.withLock { $0.delays }
    }

    /// Samples sent so far (the stream's clock), and the open sentence's first partial and each
    /// finished sentence's delay, shared by a client's sending and reading tasks.
    final class ClientState: Sendable {
        let sent = Atomic<Int>(0)
        let record = Mutex<(first: Double?, delays: [Double?])>((nil, []))
    }
}
