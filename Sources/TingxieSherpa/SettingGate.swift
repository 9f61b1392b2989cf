import Foundation

/// Runs calls that need the same setting of a shared object side by side, and changes the
/// setting only while none runs. sherpa-onnx's Whisper takes its language and task from the
/// recogniser, not from the stream, at the start of every decode: two decodes with different
/// languages must never overlap. Calls are let in first come, first served, so a call that
/// needs another setting waits only for those ahead of it.
final class SettingGate<Setting: Equatable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var current: Setting
    private var running = 0
    /// Tickets of the calls waiting to start, oldest first.
    private var waiting: [UInt64] = []
    private var nextTicket: UInt64 = 0

    init(_ initial: Setting) {
        current = initial
    }

    /// Runs `body` with the object set to `setting`; `apply` changes it, with no call running.
    func run<T>(with setting: Setting, apply: (Setting) -> Void, _ body: () throws -> T) rethrows -> T {
        condition.lock()
        let ticket = nextTicket
        nextTicket += 1
        waiting.append(ticket)
        while waiting.first != ticket || (running > 0 && current != setting) {
            condition.wait()
        }
        waiting.removeFirst()
        if current != setting {
            apply(setting)
            current = setting
        }
        running += 1
        // The next in line may share this setting and start too.
        condition.broadcast()
        condition.unlock()
        defer {
            condition.lock()
            running -= 1
            condition.broadcast()
            condition.unlock()
        }
        return try body()
    }
}
