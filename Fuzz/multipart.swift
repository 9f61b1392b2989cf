import Foundation

/// libFuzzer target: a `Content-Type` line, then a `multipart/form-data` body cut into chunks
/// of a size the first byte chooses (so that delimiters fall across chunk edges). The reader
/// may refuse the body (a thrown error); it must never crash, trap, give out more body bytes
/// than it was given, or hold a field past its limit.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMultipart(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: bytes, count: count))
    guard let chunkSize = input.first.map({ Int($0) + 1 }), let newline = input.firstIndex(of: 10) else { return 0 }
    let contentType = String(decoding: input[1..<newline], as: UTF8.self)
    guard let boundary = HeaderParameters.multipartBoundary(contentType: contentType) else { return 0 }
    let body = Array(input[(newline + 1)...])
    let chunks = stride(from: 0, to: body.count, by: chunkSize).map { Array(body[$0..<min(body.count, $0 + chunkSize)]) }
    let done = DispatchSemaphore(value: 0)
    Task {
        var reader = MultipartReader(boundary: boundary, chunks: Chunks(chunks: chunks))
        var given = 0
        do {
            var parts = 0
            while parts < 100, let part = try await reader.nextPart() {
                parts += 1
                if part.filename == nil {
                    let text = try await reader.text(limit: 256, field: part.name)
                    // At most 256 bytes, each at worst a 3-byte replacement character.
                    precondition(text.utf8.count <= 3 * 256, "a field past its limit")
                } else {
                    while let chunk = try await reader.nextChunk() { given += chunk.count }
                }
            }
        } catch is TingxieError {
        } catch {
            preconditionFailure("only TingxieError may be thrown: \(error)")
        }
        precondition(given <= body.count, "more body bytes out than in")
        done.signal()
    }
    done.wait()
    return 0
}

struct Chunks: AsyncIteratorProtocol {
    let chunks: [[UInt8]]
    var index = 0

    mutating func next() async -> [UInt8]? {
        guard index < chunks.count else { return nil }
        defer { index += 1 }
        return chunks[index]
    }
}
