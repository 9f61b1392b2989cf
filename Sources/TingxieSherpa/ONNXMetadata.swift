import Foundation
import TingxieCore

/// Reads the `metadata_props` of an ONNX model without loading it.
///
/// sherpa-onnx reads required metadata with a macro that calls `exit(-1)` when a key is
/// missing, so a bad user-supplied model would kill the whole process. Reading the keys
/// ourselves first turns that into an error. The file is memory-mapped and only the
/// top-level protobuf fields are walked, so a 1 GB model costs no extra memory.
public enum ONNXMetadata {
    /// Returns the model's metadata as a dictionary.
    /// - Throws: `TingxieError(.invalidModel)` when the file is not a well-formed ONNX protobuf.
    public static func read(_ url: URL) throws -> [String: String] {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw TingxieError(.modelNotFound, "cannot read model file \(url.path): \(error.localizedDescription)")
        }
        let name = url.lastPathComponent
        return try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            var reader = ProtobufReader(bytes: bytes, name: name)
            var metadata: [String: String] = [:]
            var sawGraph = false
            while !reader.atEnd {
                let (field, wireType) = try reader.tag()
                if field == 14 && wireType == 2 {  // ModelProto.metadata_props
                    let entry = try reader.lengthDelimited()
                    var inner = ProtobufReader(bytes: entry, name: name)
                    var key = "", value = ""
                    while !inner.atEnd {
                        let (innerField, innerWire) = try inner.tag()
                        if innerWire == 2 && (innerField == 1 || innerField == 2) {
                            let text = String(decoding: try inner.lengthDelimited(), as: UTF8.self)
                            if innerField == 1 { key = text } else { value = text }
                        } else {
                            try inner.skip(wireType: innerWire)
                        }
                    }
                    metadata[key] = value
                } else {
                    if field == 7 && wireType == 2 { sawGraph = true }  // ModelProto.graph
                    try reader.skip(wireType: wireType)
                }
            }
            guard sawGraph else {
                throw TingxieError(.invalidModel, "\(name) is not an ONNX model (it has no graph)")
            }
            return metadata
        }
    }
}

/// A minimal protobuf wire-format walker over a byte buffer.
private struct ProtobufReader {
    let bytes: UnsafeRawBufferPointer
    let name: String
    var offset = 0

    init(bytes: UnsafeRawBufferPointer, name: String) {
        self.bytes = bytes
        self.name = name
    }

    var atEnd: Bool { offset >= bytes.count }

    private func corrupt() -> TingxieError {
        TingxieError(.invalidModel, "\(name) is not a valid ONNX model (corrupt protobuf at byte \(offset))")
    }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < bytes.count, shift < 64 else { throw corrupt() }
            let byte = bytes[offset]
            offset += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    mutating func tag() throws -> (field: UInt64, wireType: UInt64) {
        let key = try varint()
        guard key >> 3 != 0 else { throw corrupt() }
        return (key >> 3, key & 7)
    }

    mutating func lengthDelimited() throws -> UnsafeRawBufferPointer {
        let length = try varint()
        guard length <= UInt64(bytes.count - offset) else { throw corrupt() }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + Int(length))])
        offset += Int(length)
        return slice
    }

    mutating func skip(wireType: UInt64) throws {
        switch wireType {
        case 0: _ = try varint()
        case 1: try advance(8)
        case 2: _ = try lengthDelimited()
        case 5: try advance(4)
        default: throw corrupt()
        }
    }

    private mutating func advance(_ count: Int) throws {
        guard count <= bytes.count - offset else { throw corrupt() }
        offset += count
    }
}
