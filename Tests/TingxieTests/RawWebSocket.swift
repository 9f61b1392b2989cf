import Foundation
import TingxieCore

/// A WebSocket client on a plain blocking socket, for what a client library can get wrong: it
/// reads the frames that arrive in the same packet as the `101` (a server that refuses a
/// stream says why at once), and every read is bounded by `timeout`. Call it off the
/// cooperative pool.
final class RawWebSocket {
    private let socket: Int32
    private var buffer: [UInt8] = []

    /// Connects to 127.0.0.1:`port` and upgrades `path`; throws unless the answer is `101`.
    init(port: Int, path: String = "/v1/stream", headers: [String: String] = [:], timeout: Double = 15) throws {
        socket = try loopbackSocket(port: port)
        var limit = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        try write(Array((request + "\r\n").utf8))
        while !buffer.starts(with: Array("HTTP/1.1".utf8)) || buffer.firstRange(of: Array("\r\n\r\n".utf8)) == nil {
            try read()
        }
        let end = buffer.firstRange(of: Array("\r\n\r\n".utf8))!.upperBound
        let head = String(decoding: buffer[..<end], as: UTF8.self)
        buffer.removeFirst(end)
        guard head.hasPrefix("HTTP/1.1 101") else { throw TingxieError(.invalidArgument, "not upgraded: \(head)") }
    }

    deinit { close(socket) }

    /// The socket, for `poll`.
    var descriptor: Int32 { socket }

    /// Sends a text or binary message, masked as clients must.
    func send(text: String) throws { try send(opcode: 1, Array(text.utf8)) }
    func send(binary: Data) throws { try send(opcode: 2, Array(binary)) }

    /// The next text message; `nil` once the server closed.
    func nextText() throws -> String? {
        while true {
            guard let (opcode, payload) = try nextFrame() else { return nil }
            switch opcode {
            case 1: return String(decoding: payload, as: UTF8.self)
            case 8: return nil
            default: continue
            }
        }
    }

    private func send(opcode: UInt8, _ payload: [UInt8]) throws {
        var frame: [UInt8] = [0x80 | opcode]
        switch payload.count {
        case ..<126: frame.append(0x80 | UInt8(payload.count))
        case ..<65_536: frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        default: frame += [0x80 | 127] + (0..<8).reversed().map { UInt8((payload.count >> ($0 * 8)) & 0xFF) }
        }
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try write(frame)
    }

    private func nextFrame() throws -> (opcode: UInt8, payload: [UInt8])? {
        func need(_ count: Int) throws -> Bool {
            while buffer.count < count {
                guard try read() else { return false }
            }
            return true
        }
        guard try need(2) else { return nil }
        var length = Int(buffer[1] & 0x7F)
        var header = 2
        if length == 126 {
            guard try need(4) else { return nil }
            length = Int(buffer[2]) << 8 | Int(buffer[3])
            header = 4
        } else if length == 127 {
            guard try need(10) else { return nil }
            length = (2..<10).reduce(0) { $0 << 8 | Int(buffer[$1]) }
            header = 10
        }
        guard try need(header + length) else { return nil }
        let frame = (buffer[0] & 0x0F, Array(buffer[header..<(header + length)]))
        buffer.removeFirst(header + length)
        return frame
    }

    /// Appends what arrives; `false` at the end of the stream. A timeout is an error.
    @discardableResult
    private func read() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let count = recv(socket, &chunk, chunk.count, 0)
        if count < 0 { throw TingxieError(.timeout, "no answer from the server (errno \(errno))") }
        buffer += chunk[..<count]
        return count > 0
    }

    private func write(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { throw TingxieError(.ioError, "send: errno \(errno)") }
            sent += count
        }
    }
}

/// A TCP socket connected to 127.0.0.1:`port`; the caller closes it.
func loopbackSocket(port: Int) throws -> Int32 {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socket >= 0 else { throw POSIXError(.EIO) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(socket)
        throw POSIXError(.ECONNREFUSED)
    }
    return socket
}
