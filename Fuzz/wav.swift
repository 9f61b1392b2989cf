import Foundation

/// libFuzzer target: the WAV reader on any bytes. It may refuse them (a thrown error); it must
/// never crash, hang or allocate in proportion to a size a header claims.
private let path = "/dev/shm/tingxie-fuzz-\(getpid()).wav"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWAV(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: bytes, count: count)
    guard FileManager.default.createFile(atPath: path, contents: data) else { return 0 }
    if let reader = try? WAVReader(url: URL(fileURLWithPath: path)) {
        var samples = 0
        while let chunk = try? reader.nextChunk(), samples < 50_000_000 { samples += chunk.count }
        reader.close()
    }
    return 0
}
