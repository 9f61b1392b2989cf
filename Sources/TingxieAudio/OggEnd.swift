import Foundation

/// Whether an Ogg file ends as a whole Ogg stream does: with a complete page that carries the
/// end-of-stream flag. A file cut off anywhere else lacks it, while its duration and its decode
/// look like those of a shorter file.
enum OggEnd {
    /// The longest an Ogg page can be: a 27-byte header, 255 lacing values, 255 × 255 bytes.
    static let maxPageBytes = 27 + 255 + 255 * 255

    static func isComplete(_ url: URL) -> Bool {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return false }
        defer { try? handle.close() }
        guard let size = try? handle.seekToEnd(), size >= 27 else { return false }
        let start = size > UInt64(maxPageBytes) ? size - UInt64(maxPageBytes) : 0
        guard (try? handle.seek(toOffset: start)) != nil, let tail = try? handle.readToEnd() else { return false }
        return endsWithLastPage(Array(tail))
    }

    /// Whether `bytes` ends exactly at the end of a page flagged end-of-stream.
    static func endsWithLastPage(_ bytes: [UInt8]) -> Bool {
        let capture: [UInt8] = Array("OggS".utf8)
        var index = bytes.count - 27
        while index >= 0 {
            if bytes[index] == capture[0], bytes[index..<(index + 4)].elementsEqual(capture), bytes[index + 4] == 0 {
                let segments = Int(bytes[index + 26])
                let tableEnd = index + 27 + segments
                if tableEnd <= bytes.count {
                    let body = bytes[(index + 27)..<tableEnd].reduce(0) { $0 + Int($1) }
                    if tableEnd + body == bytes.count { return bytes[index + 5] & 0x04 != 0 }
                }
            }
            index -= 1
        }
        return false
    }
}
