import Foundation
import Glibc
import Synchronization
import Testing

/// `finetune serve` on 127.0.0.1, as a client sees it: each route answers what `finetune predict` writes for the same
/// inputs, many clients at once each get their own answer, bad requests get 4xx JSON errors, and SIGTERM drains.
@Suite(.serialized) struct ServeTests {
    static let pipelines = CommandLineTests.fixtures + "/pipelines"

    /// `body(i)` for i in 0..<count, each on a thread of its own, all at once (tasks would not do: the cooperative
    /// pool has as many threads as cores, and a blocking socket call holds one).
    static func onThreads<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) -> T) -> [T] {
        let results = Mutex([Int: T]())
        let group = DispatchGroup()
        for i in 0..<count {
            group.enter()
            Thread {
                let result = body(i)
                results.withLock { $0[i] = result }
                group.leave()
            }.start()
        }
        group.wait()
        return results.withLock { all in (0..<count).map { all[$0]! } }
    }

    /// `body` on a thread of its own, awaited (a blocking socket call must not hold a thread of the cooperative pool).
    static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in Thread { continuation.resume(with: Result { try body() }) }.start() }
    }

    /// A response: status code, head (status line and headers) and body.
    struct Reply: Sendable { let status: Int; let head: String; let body: String }

    /// One HTTP/1.1 exchange over a plain socket to 127.0.0.1 (no proxy, no client library in between).
    static func request(port: Int, _ method: String, _ path: String, body: [UInt8] = []) throws -> Reply {
        let fd = try connect(port: port)
        defer { close(fd) }
        try send(fd, Array(head(method, path, length: body.count).utf8) + body)
        return try reply(fd)
    }

    static func head(_ method: String, _ path: String, length: Int) -> String {
        "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(length)\r\nConnection: close\r\n\r\n"
    }

    /// A socket connected to 127.0.0.1:`port`.
    static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); throw POSIXError(.ECONNREFUSED) }
        return fd
    }

    static func send(_ fd: Int32, _ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBufferPointer { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw POSIXError(.EPIPE) }
            sent += n
        }
    }

    /// Reads the answer until the server closes the connection.
    static func reply(_ fd: Int32) throws -> Reply {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            received += buffer[0..<n]
        }
        let text = String(decoding: received, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw POSIXError(.EBADMSG) }
        let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        return Reply(status: status, head: String(text[..<split.lowerBound]), body: String(text[split.upperBound...]))
    }

    /// Starts a server with `models` on a free port and returns it with the port.
    /// Standard error goes to `log` when given (a file: a pipe nobody reads would block the server's logging).
    func startServer(_ models: [String], extra: [String] = [], log: String? = nil) throws -> (Process, Int, Pipe) {
        let (process, port, out, _) = try Self.startListening(["serve", "--port", "0"] + models.flatMap { ["--model", $0] } + extra,
                                                              announcement: "serving ", log: log)
        return (process, port, out)
    }

    /// Starts a `finetune` command that listens on a port (`serve`, `dashboard`) and returns once it has printed
    /// its `announcement` line, which ends with the port: the process, the port, its standard output and error
    /// (error goes to the file `log` instead when given).
    static func startListening(_ arguments: [String], announcement: String, log: String? = nil) throws -> (Process, Int, out: Pipe, err: Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLineTests.binary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: CommandLineTests.root)
        let (out, err) = (Pipe(), Pipe())
        process.standardOutput = out
        if let log {
            guard FileManager.default.createFile(atPath: log, contents: nil) else { throw POSIXError(.EACCES) }
            process.standardError = FileHandle(forWritingAtPath: log)
        } else {
            process.standardError = err
        }
        try process.run()
        var seen = ""
        while !seen.contains(announcement) || !seen.contains("\n") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        let port = seen.split(separator: ":").last.flatMap { Int($0.prefix { $0.isNumber }) }
        return (process, try #require(port, "no port in \(seen)"), out, err)
    }

    /// `finetune predict`'s lines for an input file.
    func predictLines(model: String, input: String) throws -> [String] {
        let output = NSTemporaryDirectory() + "bertkit-serve-\(UUID().uuidString).jsonl"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLineTests.binary)
        process.arguments = ["predict", "--model", model, "--input", input, "--output", output]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    func jsonLines(_ file: String) throws -> [String] {
        try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    @Test func routesAnswerWhatPredictWritesAndSIGTERMDrains() throws {
        let (server, port, out) = try startServer(["cls=\(Self.pipelines)/text-classifier", "ner=\(Self.pipelines)/token-classifier",
                                                   "qa=\(Self.pipelines)/question-answering",
                                                   "enc=\(CommandLineTests.fixtures)/tiny-sentence-encoder"])
        #expect(try Self.request(port: port, "GET", "/health").status == 200)
        let info = try Self.request(port: port, "GET", "/info")
        #expect(info.status == 200 && info.body.contains("\"head\":\"token-classification\"") && info.body.contains("\"name\":\"qa\""))

        for (model, input) in [("cls", "texts.jsonl"), ("cls", "pairs.jsonl"), ("ner", "texts.jsonl"), ("qa", "questions.jsonl")] {
            let folder = ["cls": "text-classifier", "ner": "token-classifier", "qa": "question-answering"][model]!
            let records = try jsonLines("\(Self.pipelines)/\(input)")
            let body = "{\"inputs\": [" + records.joined(separator: ",") + "]}"
            let reply = try Self.request(port: port, "POST", "/models/\(model)/predict", body: Array(body.utf8))
            #expect(reply.status == 200, "\(reply.body)")
            let expected = "[" + (try predictLines(model: "\(Self.pipelines)/\(folder)", input: "\(Self.pipelines)/\(input)")).joined(separator: ",") + "]"
            #expect(reply.body == expected, "\(model) on \(input)")
        }
        // The first model answers the routes without a name.
        let plain = try Self.request(port: port, "POST", "/predict", body: Array(#"{"inputs": "John Smith lives in New York."}"#.utf8))
        #expect(plain.status == 200 && plain.body.hasPrefix("[{\"label\":"))

        let texts = NSTemporaryDirectory() + "bertkit-serve-texts-\(UUID().uuidString).txt"
        defer { try? FileManager.default.removeItem(atPath: texts) }
        try "A man is eating food.\nCafé naïve résumé\n".write(toFile: texts, atomically: true, encoding: .utf8)
        let embedded = try Self.request(port: port, "POST", "/models/enc/embed",
                                        body: Array(#"{"inputs": ["A man is eating food.", "Café naïve résumé"]}"#.utf8))
        #expect(embedded.body == "[" + (try predictLines(model: "\(CommandLineTests.fixtures)/tiny-sentence-encoder", input: texts)).joined(separator: ",") + "]")

        let metrics = try Self.request(port: port, "GET", "/metrics").body
        #expect(metrics.contains("bertkit_requests_total{model=\"cls\",route=\"predict\",status=\"200\"} 3"), "\(metrics)")
        #expect(metrics.contains("bertkit_requests_total{model=\"qa\",route=\"predict\",status=\"200\"} 1"), "\(metrics)")

        kill(server.processIdentifier, SIGTERM)
        server.waitUntilExit()
        let said = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(server.terminationReason == .exit && server.terminationStatus == 0 && said.contains("stopped"), "\(said)")
    }

    /// A hundred clients at once, each with its own text, each get that text's answer.
    @Test func concurrentClientsGetTheirOwnAnswers() throws {
        let (server, port, _) = try startServer(["\(Self.pipelines)/text-classifier"])
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        let texts = (0..<100).map { "Client \($0) says the weather in city number \($0 * 7) was \($0 % 3 == 0 ? "awful" : "lovely")." }
        let file = NSTemporaryDirectory() + "bertkit-serve-100-\(UUID().uuidString).txt"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try (texts.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let expected = try predictLines(model: "\(Self.pipelines)/text-classifier", input: file)
        let replies = Self.onThreads(100) { i in
            try? Self.request(port: port, "POST", "/predict", body: Array(try! JSONSerialization.data(withJSONObject: ["inputs": texts[i]])))
        }
        for (i, reply) in replies.enumerated() { #expect(reply?.status == 200 && reply?.body == "[\(expected[i])]", "client \(i)") }
    }

    /// Bad requests get a 4xx answer with a JSON error that says what was wrong, and the server keeps serving.
    @Test func badRequestsGetClearErrors() throws {
        let (server, port, _) = try startServer(["cls=\(Self.pipelines)/text-classifier"], extra: ["--max-inputs", "4", "--max-body-bytes", "2000"])
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        let cases: [(String, String, [UInt8], Int, String)] = [
            ("POST", "/predict", Array("not json".utf8), 400, "not JSON"),
            ("POST", "/predict", Array(#"["a"]"#.utf8), 400, "JSON object"),
            ("POST", "/predict", Array(#"{"inputs": 3}"#.utf8), 400, "'inputs' must be"),
            ("POST", "/predict", Array(#"{"inputs": []}"#.utf8), 400, "empty"),
            ("POST", "/predict", Array(#"{"inputs": "a", "truncate": 1}"#.utf8), 400, "'truncate' must be true or false"),
            ("POST", "/predict", Array(#"{"inputs": "a", "truncate": "yes"}"#.utf8), 400, "'truncate' must be true or false"),
            ("POST", "/predict", Array(#"{"inputs": "a", "normalize": true}"#.utf8), 400, "unknown field 'normalize'"),
            ("POST", "/predict", Array(#"{"text": "a"}"#.utf8), 400, "unknown field 'text'"),
            ("POST", "/predict", Array(#"{"inputs": [{"text": 1}]}"#.utf8), 400, "inputs[0]"),
            ("POST", "/predict", Array(#"{"inputs": ["a","b","c","d","e"]}"#.utf8), 413, "at most 4"),
            ("POST", "/predict", Array(("{\"inputs\": \"" + String(repeating: "x", count: 3000) + "\"}").utf8), 413, "larger than 2000 bytes"),
            ("POST", "/predict", [0x7B, 0x22, 0x69, 0xFF, 0xFE, 0x22, 0x7D], 400, "not JSON"),
            ("POST", "/predict", Array(#"{"inputs": [{"question": "who?"}]}"#.utf8), 422, "text"),
            ("POST", "/embed", Array(#"{"inputs": "a"}"#.utf8), 400, "POST /predict"),
            ("POST", "/models/nobody/predict", Array(#"{"inputs": "a"}"#.utf8), 404, "no model named 'nobody'"),
            ("GET", "/nowhere", [], 404, "no route GET /nowhere"),
        ]
        for (method, path, body, status, message) in cases {
            let reply = try Self.request(port: port, method, path, body: body)
            #expect(reply.status == status, "\(path) \(String(decoding: body.prefix(40), as: UTF8.self)): \(reply.status) \(reply.body)")
            #expect(reply.body.contains(message), "\(reply.body)")
        }
        #expect(try Self.request(port: port, "GET", "/health").status == 200, "still serving")

        // The OpenAPI document names every route, and every status the corpus met among /predict's answers.
        let document = try JSONSerialization.jsonObject(with: Data(try Self.request(port: port, "GET", "/openapi.json").body.utf8)) as? [String: Any]
        let paths = try #require(document?["paths"] as? [String: [String: Any]])
        #expect(Set(paths.keys) == ["/predict", "/embed", "/models/{name}/predict", "/models/{name}/embed", "/health", "/info", "/metrics", "/openapi.json"])
        let responses = try #require((paths["/predict"]?["post"] as? [String: Any])?["responses"] as? [String: Any])
        for (_, _, _, status, _) in cases { #expect(responses[String(status)] != nil, "\(status) is not in the document") }
    }
}
