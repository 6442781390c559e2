import Foundation
import Testing

/// Headless Chromium from Debian, driven through chromedriver's WebDriver endpoint on 127.0.0.1 (plain HTTP and
/// JSON over a socket, no client library).
final class Browser {
    private let driver: Process
    private let port: Int
    private let session: String

    struct Failure: Error, CustomStringConvertible { let description: String }

    init() throws {
        port = try Self.freePort()
        driver = Process()
        driver.executableURL = URL(fileURLWithPath: "/usr/bin/chromedriver")
        driver.arguments = ["--port=\(port)"]
        driver.standardOutput = FileHandle.nullDevice
        driver.standardError = FileHandle.nullDevice
        try driver.run()
        let deadline = Date().addingTimeInterval(30)
        while (try? Self.exchange(port, "GET", "/status", body: [])) == nil {
            guard Date() < deadline else { kill(driver.processIdentifier, SIGKILL); throw Failure(description: "chromedriver did not start") }
            usleep(50_000)
        }
        let options: [String: Any] = ["binary": "/usr/bin/chromium",
                                      "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-proxy-server", "--window-size=1300,1800"]]
        let created = try Self.call(port, "POST", "/session", ["capabilities": ["alwaysMatch": ["goog:chromeOptions": options]]])
        guard let id = (created as? [String: Any])?["sessionId"] as? String else {
            kill(driver.processIdentifier, SIGKILL)
            throw Failure(description: "no session: \(String(describing: created))")
        }
        session = id
    }

    deinit {
        _ = try? Self.call(port, "DELETE", "/session/\(session)", nil)
        // chromedriver does not end on SIGTERM.
        kill(driver.processIdentifier, SIGKILL)
        driver.waitUntilExit()
    }

    func open(_ url: String) throws { _ = try Self.call(port, "POST", "/session/\(session)/url", ["url": url]) }

    /// The value of a script's `return`, run in the page.
    func run(_ script: String) throws -> Any? {
        try Self.call(port, "POST", "/session/\(session)/execute/sync", ["script": script, "args": []])
    }

    /// Runs `script` until it returns true, for up to `seconds`; whether it did.
    func wait(seconds: Double, until script: String) throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try run(script) as? Bool == true { return true }
            usleep(100_000)
        }
        return false
    }

    /// Writes what the window shows to `path` (PNG).
    func screenshot(to path: String) throws {
        guard let base64 = try Self.call(port, "GET", "/session/\(session)/screenshot", nil) as? String,
              let png = Data(base64Encoded: base64) else { throw Failure(description: "no screenshot") }
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try png.write(to: URL(fileURLWithPath: path))
    }

    /// One WebDriver command; its `value`, or an error with WebDriver's message.
    private static func call(_ port: Int, _ method: String, _ path: String, _ body: Any?) throws -> Any? {
        let bytes = try body.map { Array(try JSONSerialization.data(withJSONObject: $0)) } ?? []
        let reply = try exchange(port, method, path, body: bytes)
        let json = try JSONSerialization.jsonObject(with: Data(reply.body.utf8), options: [.fragmentsAllowed]) as? [String: Any]
        guard reply.status == 200 else { throw Failure(description: "WebDriver \(method) \(path): \(reply.status) \(reply.body.prefix(400))") }
        return json?["value"]
    }

    /// One request and its reply, read to the length the reply gives (chromedriver keeps connections open).
    private static func exchange(_ port: Int, _ method: String, _ path: String, body: [UInt8]) throws -> ServeTests.Reply {
        let fd = try ServeTests.connect(port: port)
        defer { close(fd) }
        try ServeTests.send(fd, Array(ServeTests.head(method, path, length: body.count).utf8) + body)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        while true {
            if let end = received.firstRange(of: separator) {
                let head = String(decoding: received[..<end.lowerBound], as: UTF8.self)
                let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) }
                guard let length else { throw Failure(description: "WebDriver reply without a length: \(head)") }
                if received.count - end.upperBound >= length {
                    let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
                    return ServeTests.Reply(status: status, head: head,
                                            body: String(decoding: received[end.upperBound..<(end.upperBound + length)], as: UTF8.self))
                }
            }
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { throw Failure(description: "chromedriver closed the connection") }
            received += buffer[0..<n]
        }
    }

    /// A port no one listens on now, on 127.0.0.1.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                Glibc.bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw POSIXError(.EADDRINUSE) }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
