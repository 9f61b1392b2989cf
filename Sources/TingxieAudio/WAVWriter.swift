import Foundation
import TingxieCore

/// Writes 16-bit PCM mono WAV files incrementally; the header's sizes are filled in by `finish()`.
public final class WAVWriter {
    public let sampleRate: Int
    private let file: FileHandle
    private var dataBytes = 0
    private var finished = false

    /// Creates (or replaces) the file at `url`.
    public init(url: URL, sampleRate: Int = modelSampleRate) throws {
        guard FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600]),
              let file = FileHandle(forWritingAtPath: url.path) else {
            throw TingxieError(.ioError, "cannot create \(url.path)")
        }
        self.file = file
        self.sampleRate = sampleRate
        try file.write(contentsOf: Self.header(sampleRate: sampleRate, dataBytes: 0))
    }

    deinit { try? finish() }

    /// Appends samples in [-1, 1]; values outside are clipped.
    public func append(_ samples: [Float]) throws {
        var data = Data(capacity: samples.count * 2)
        for sample in samples {
            let value = Int16((max(-1, min(1, sample)) * 32767).rounded())
            withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
        }
        try file.write(contentsOf: data)
        dataBytes += data.count
    }

    /// Duration written so far, in seconds.
    public var duration: Double { Double(dataBytes / 2) / Double(sampleRate) }

    /// Writes the final sizes into the header and closes the file.
    public func finish() throws {
        guard !finished else { return }
        finished = true
        try file.seek(toOffset: 0)
        try file.write(contentsOf: Self.header(sampleRate: sampleRate, dataBytes: dataBytes))
        try file.close()
    }

    private static func header(sampleRate: Int, dataBytes: Int) -> Data {
        var header = Data()
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { header.append(contentsOf: $0) } }
        header.append(contentsOf: Array("RIFF".utf8)); append(UInt32(clamping: 36 + dataBytes))
        header.append(contentsOf: Array("WAVEfmt ".utf8)); append(UInt32(16))
        append(UInt16(1)); append(UInt16(1)); append(UInt32(sampleRate)); append(UInt32(sampleRate * 2))
        append(UInt16(2)); append(UInt16(16))
        header.append(contentsOf: Array("data".utf8)); append(UInt32(clamping: dataBytes))
        return header
    }
}
