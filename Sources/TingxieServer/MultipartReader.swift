import Foundation
import TingxieCore

/// A streaming `multipart/form-data` reader: parts are read one at a time and their bodies in
/// chunks, so memory stays bounded whatever the upload's size. Header blocks and the preamble
/// have fixed caps; the caller caps part counts and sizes. It reads any source of byte chunks
/// (the request body's buffers; the fuzzer's slices).
struct MultipartReader<Chunks: AsyncIteratorProtocol> where Chunks.Element: Sequence<UInt8> {
    struct Part: Sendable, Equatable {
        var name: String
        var filename: String?
        var contentType: String?
    }

    private enum State { case preamble, headers, body, partEnded, finished }

    static var maxHeaderBytes: Int { 16 * 1024 }
    static var maxPreambleBytes: Int { 64 * 1024 }

    private var chunks: Chunks
    private let delimiter: [UInt8]
    private var buffer: [UInt8] = Array("\r\n".utf8)
    private var start = 0
    private var exhausted = false
    private var state = State.preamble

    init(boundary: String, chunks: Chunks) {
        self.chunks = chunks
        delimiter = Array("\r\n--\(boundary)".utf8)
    }

    /// Moves to the next part, skipping what is left of the current one; `nil` after the last.
    mutating func nextPart() async throws -> Part? {
        while state == .body {
            _ = try await nextChunk()
        }
        if state == .preamble {
            guard let found = try await find(delimiter, within: Self.maxPreambleBytes) else {
                throw Self.malformed("no part boundary found")
            }
            start = found + delimiter.count
            state = .partEnded
        }
        guard state == .partEnded else { return nil }
        // After a delimiter: "--" ends the body, CRLF starts a part's headers.
        try await fill(2)
        if buffer[start] == UInt8(ascii: "-"), buffer[start + 1] == UInt8(ascii: "-") {
            state = .finished
            return nil
        }
        guard let headerEnd = try await find(Array("\r\n\r\n".utf8), within: Self.maxHeaderBytes) else {
            throw TingxieError(.tooLarge, "a multipart part's headers are longer than \(Self.maxHeaderBytes) bytes")
        }
        let block = String(decoding: buffer[start..<headerEnd], as: UTF8.self)
        start = headerEnd + 4
        state = .body
        return try Self.part(headers: block)
    }

    /// The next piece of the current part's body; `nil` at its end.
    mutating func nextChunk() async throws -> ArraySlice<UInt8>? {
        guard state == .body else { return nil }
        while true {
            if let found = firstIndex(of: delimiter, from: start) {
                let chunk = buffer[start..<found]
                start = found + delimiter.count
                state = .partEnded
                return chunk.isEmpty ? nil : chunk
            }
            // Everything but a possible beginning of the delimiter can go.
            let safeEnd = buffer.count - (delimiter.count - 1)
            if safeEnd > start {
                let chunk = buffer[start..<safeEnd]
                start = safeEnd
                return chunk
            }
            guard try await readMore() else { throw Self.malformed("the body ended inside a part") }
        }
    }

    /// Reads the rest of the current part as text, refusing more than `limit` bytes.
    mutating func text(limit: Int, field: String) async throws -> String {
        var bytes: [UInt8] = []
        while let chunk = try await nextChunk() {
            guard bytes.count + chunk.count <= limit else {
                throw TingxieError(.tooLarge, "form field \"\(field.prefix(40))\" is longer than \(limit) bytes")
            }
            bytes.append(contentsOf: chunk)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Buffer

    /// Appends the next chunk of the body; `false` when there is none.
    private mutating func readMore() async throws -> Bool {
        guard !exhausted, let next = try await chunks.next() else {
            exhausted = true
            return false
        }
        if start > 0, start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: next)
        return true
    }

    private mutating func fill(_ count: Int) async throws {
        while buffer.count - start < count {
            guard try await readMore() else { throw Self.malformed("the body ended early") }
        }
    }

    /// Index of `pattern` at or after `start`, reading more as needed but never holding more
    /// than `limit` bytes past `start`.
    private mutating func find(_ pattern: [UInt8], within limit: Int) async throws -> Int? {
        while true {
            if let found = firstIndex(of: pattern, from: start) { return found }
            guard buffer.count - start <= limit + pattern.count else { return nil }
            guard try await readMore() else { throw Self.malformed("the body ended early") }
        }
    }

    private func firstIndex(of pattern: [UInt8], from index: Int) -> Int? {
        let last = buffer.count - pattern.count
        guard last >= index else { return nil }
        return buffer.withUnsafeBufferPointer { bytes in
            pattern.withUnsafeBufferPointer { needle in
                let base = bytes.baseAddress!
                var position = index
                while position <= last {
                    guard let hit = memchr(base + position, Int32(needle[0]), last - position + 1) else { return nil }
                    let offset = hit.assumingMemoryBound(to: UInt8.self) - UnsafeMutablePointer(mutating: base)
                    if memcmp(base + offset, needle.baseAddress!, needle.count) == 0 { return offset }
                    position = offset + 1
                }
                return nil
            }
        }
    }

    // MARK: Headers

    private static func part(headers block: String) throws -> Part {
        var name: String?
        var filename: String?
        var contentType: String?
        for line in block.split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { throw malformed("a part header has no colon") }
            let field = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            switch field {
            case "content-disposition":
                let parameters = HeaderParameters(value)
                guard parameters.value.lowercased() == "form-data" else { throw malformed("a part is not form-data") }
                name = parameters["name"]
                filename = parameters["filename"]
            case "content-type":
                contentType = value
            default:
                break
            }
        }
        guard let name else { throw malformed("a part has no name") }
        return Part(name: name, filename: filename, contentType: contentType)
    }

    private static func malformed(_ detail: String) -> TingxieError {
        TingxieError(.invalidArgument, "malformed multipart body: \(detail)")
    }
}

/// A header value with `; key=value` parameters (quoted or not), as in `Content-Type` and
/// `Content-Disposition`.
struct HeaderParameters {
    let value: String
    private var parameters: [String: String] = [:]

    init(_ header: String) {
        var fields: [String] = []
        var current = ""
        var quoted = false
        var escaped = false
        for character in header {
            if escaped {
                current.append(character)
                escaped = false
            } else if quoted, character == "\\" {
                escaped = true
            } else if character == "\"" {
                quoted.toggle()
            } else if character == ";", !quoted {
                fields.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        fields.append(current)
        value = fields[0].trimmingCharacters(in: .whitespaces)
        for field in fields.dropFirst() {
            guard let equals = field.firstIndex(of: "=") else { continue }
            let key = field[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            parameters[key] = field[field.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        }
    }

    subscript(key: String) -> String? { parameters[key] }

    /// The `boundary` parameter of a `multipart/form-data` content type.
    static func multipartBoundary(contentType: String) -> String? {
        let parameters = HeaderParameters(contentType)
        guard parameters.value.lowercased() == "multipart/form-data",
              let boundary = parameters["boundary"], (1...200).contains(boundary.utf8.count) else { return nil }
        return boundary
    }
}
