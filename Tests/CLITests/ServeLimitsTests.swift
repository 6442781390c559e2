import Foundation
import Glibc
import Testing

/// `finetune serve` under pressure, on 127.0.0.1: more requests than it admits, inputs over the length limit,
/// bodies that never finish, clients that go away, connections that trickle, and SIGTERM while clients keep asking.
/// The model is the tiny fixture classifier; `--batch-size 1` makes a request of many texts take many forward
/// passes, so that the requests of a test overlap for certain.
@Suite(.serialized) struct ServeLimitsTests {
    typealias Reply = ServeTests.Reply
    /// A client's request (the index of its text) and the answer, if one came.
    struct Outcome: Sendable { let text: Int; let reply: Reply? }
    static let classifier = ServeTests.pipelines + "/text-classifier"
    let serve = ServeTests()

    /// `count` distinct texts, and what `finetune predict` writes for each.
    func texts(_ count: Int) throws -> (texts: [String], lines: [String]) {
        let texts = (0..<count).map { "text \($0): the weather in town \($0 % 17) was \($0 % 3 == 0 ? "awful" : "lovely") today." }
        let file = NSTemporaryDirectory() + "bertkit-serve-limits-\(UUID().uuidString).txt"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try (texts.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        return (texts, try serve.predictLines(model: Self.classifier, input: file))
    }

    /// Many short texts, for requests that keep the model busy (answers not checked).
    static func many(_ count: Int) -> [String] { (0..<count).map { "filler \($0)" } }

    static func body(_ texts: some Sequence<String>, truncate: Bool? = nil) throws -> [UInt8] {
        var object: [String: Any] = ["inputs": Array(texts)]
        if let truncate { object["truncate"] = truncate }
        return Array(try JSONSerialization.data(withJSONObject: object))
    }

    static func metric(_ text: String, _ name: String) -> Double {
        text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
    }

    /// Beyond --max-concurrent-requests a request gets 429 with Retry-After at once; every admitted one is answered
    /// correctly, and the server keeps serving.
    @Test func overloadGets429sAndEveryAdmittedRequestItsAnswer() throws {
        let (server, port, _) = try serve.startServer([Self.classifier], extra: ["--max-concurrent-requests", "3", "--batch-size", "1",
                                                                               "--max-inputs", "20000", "--max-body-bytes", "10000000"])
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        let (texts, lines) = try texts(24 * 40)
        // A large request holds one of the three places for seconds, so that the others are sure to meet.
        let blocker = Thread { _ = try? ServeTests.request(port: port, "POST", "/predict", body: try! Self.body(Self.many(20000))) }
        blocker.start()
        Thread.sleep(forTimeInterval: 0.2)
        let replies = ServeTests.onThreads(24) { client in
            try? ServeTests.request(port: port, "POST", "/predict", body: try! Self.body(texts[(client * 40)..<((client + 1) * 40)]))
        }
        #expect(replies.allSatisfy { $0 != nil }, "every client was answered")
        let shed = replies.compactMap { $0 }.filter { $0.status == 429 }
        #expect(!shed.isEmpty, "24 requests of 40 texts at once, 3 admitted: some must be turned away")
        for reply in shed {
            #expect(reply.head.contains("Retry-After: 1") && reply.body.contains("--max-concurrent-requests"), "\(reply.head) \(reply.body)")
        }
        for (client, reply) in replies.enumerated() where reply?.status != 429 {
            guard let reply else { continue }
            #expect(reply.status == 200 && reply.body == "[" + lines[(client * 40)..<((client + 1) * 40)].joined(separator: ",") + "]", "client \(client)")
        }
        let again = try ServeTests.request(port: port, "POST", "/predict", body: try Self.body(texts.prefix(2)))
        #expect(again.status == 200 && again.body == "[" + lines.prefix(2).joined(separator: ",") + "]", "still serving")
    }

    /// An input over --max-input-length tokens is 413 naming the limit, unless the request asks to truncate it.
    @Test func longInputsAre413UnlessTruncated() throws {
        let (server, port, _) = try serve.startServer([Self.classifier], extra: ["--max-input-length", "8"])
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        let long = "one two three four five six seven eight nine ten eleven twelve"
        let refused = try ServeTests.request(port: port, "POST", "/predict", body: try Self.body(["short one", long]))
        #expect(refused.status == 413 && refused.body.contains("inputs[1]") && refused.body.contains("limit of 8"), "\(refused.body)")
        let cut = try ServeTests.request(port: port, "POST", "/predict", body: try Self.body(["short one", long], truncate: true))
        #expect(cut.status == 200, "\(cut.body)")
        // Cut at whole words to 8 tokens or fewer: the answer for a prefix of the text that predict gives too.
        let file = NSTemporaryDirectory() + "bertkit-serve-cut-\(UUID().uuidString).txt"
        defer { try? FileManager.default.removeItem(atPath: file) }
        let words = long.split(separator: " ")
        try (["short one"] + (1...words.count).map { words.prefix($0).joined(separator: " ") }).joined(separator: "\n")
            .appending("\n").write(toFile: file, atomically: true, encoding: .utf8)
        let candidates = try serve.predictLines(model: Self.classifier, input: file)
        let answers = try #require(try JSONSerialization.jsonObject(with: Data(cut.body.utf8)) as? [Any])
        #expect(answers.count == 2)
        #expect(cut.body.hasPrefix("[" + candidates[0] + ","))
        #expect(candidates.dropFirst().prefix(8).contains { cut.body == "[" + candidates[0] + "," + $0 + "]" }, "\(cut.body)")
    }

    /// A body that stops arriving is answered 408 after --request-timeout, and the server goes on.
    @Test func aBodyThatNeverEndsIs408() throws {
        let (server, port, _) = try serve.startServer([Self.classifier], extra: ["--request-timeout", "1"])
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        let fd = try ServeTests.connect(port: port)
        defer { close(fd) }
        try ServeTests.send(fd, Array(ServeTests.head("POST", "/predict", length: 100).utf8) + Array(#"{"inputs": "#.utf8))
        let started = Date()
        let reply = try ServeTests.reply(fd)
        #expect(reply.status == 408 && reply.body.contains("--request-timeout"), "\(reply.head) \(reply.body)")
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(try ServeTests.request(port: port, "GET", "/health").status == 200)
    }

    /// A client that disconnects while its texts wait takes them out of the queue: they are never computed.
    @Test func aDisconnectedClientsTextsAreDropped() async throws {
        let (server, port, _) = try serve.startServer([Self.classifier], extra: ["--batch-size", "1", "--max-inputs", "20000",
                                                                               "--max-body-bytes", "10000000"])
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        let texts = Self.many(20000), body = try Self.body(texts)
        // A keeps the model busy for seconds; B asks as much, then goes away at once.
        async let a = ServeTests.onThread { try ServeTests.request(port: port, "POST", "/predict", body: body) }
        try await Task.sleep(for: .milliseconds(100))
        let b = try ServeTests.connect(port: port)
        try ServeTests.send(b, Array(ServeTests.head("POST", "/predict", length: body.count).utf8) + body)
        try await Task.sleep(for: .milliseconds(50))
        close(b)
        let answer = try await a
        #expect(answer.status == 200)
        try await Task.sleep(for: .milliseconds(200))
        let metrics = try ServeTests.request(port: port, "GET", "/metrics").body
        #expect(metrics.contains("status=\"499\"} 1"), "\(metrics)")
        let computed = Self.metric(metrics, "bertkit_batch_sequences_count_sum{model=\"text-classifier\"}")
        #expect(computed >= 20000 && computed < 39000, "A's 20000 texts and only some of B's went through the model: \(computed)")
    }

    /// Connections that trickle a request head hold nothing another client needs, and are closed after
    /// --idle-timeout.
    @Test func tricklingConnectionsCannotHoldTheServer() async throws {
        let (server, port, _) = try serve.startServer([Self.classifier], extra: ["--idle-timeout", "1"])
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        let slow = try (0..<200).map { _ in try ServeTests.connect(port: port) }
        defer { slow.forEach { close($0) } }
        for fd in slow { try ServeTests.send(fd, Array("POST /predict HTTP/1.1\r\nHost: 127".utf8)) }
        let started = Date()
        let reply = try ServeTests.request(port: port, "POST", "/predict", body: try Self.body(["a text"]))
        #expect(reply.status == 200 && Date().timeIntervalSince(started) < 2, "answered while 200 connections trickle")
        try await Task.sleep(for: .seconds(2.5))
        var closed = 0
        for fd in slow {
            var byte: UInt8 = 0
            var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if Glibc.poll(&poll, 1, 0) == 1 && recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) <= 0 { closed += 1 }
        }
        #expect(closed == 200, "the server closed \(closed) of the 200 idle connections after --idle-timeout 1")
    }

    /// SIGTERM while clients keep asking: no new connections, every request the server admitted is answered (the
    /// server's log of answered requests and the clients' answers agree), exit 0.
    @Test func sigtermUnderLoadAnswersEveryAdmittedRequest() throws {
        let log = NSTemporaryDirectory() + "bertkit-serve-log-\(UUID().uuidString).txt"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let (server, port, out) = try serve.startServer([Self.classifier], extra: ["--log-requests", "--batch-size", "1"], log: log)
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) } }
        let (texts, lines) = try texts(32)
        // A thread sends SIGTERM after a second while the clients keep asking.
        Thread {
            Thread.sleep(forTimeInterval: 1)
            kill(server.processIdentifier, SIGTERM)
        }.start()
        let outcomes = ServeTests.onThreads(12) { client -> [Outcome] in
            var mine: [Outcome] = []
            for round in 0..<100_000 {
                let i = (client + round) % texts.count
                guard let body = try? Self.body([texts[i]]), let reply = try? ServeTests.request(port: port, "POST", "/predict", body: body) else {
                    mine.append(Outcome(text: i, reply: nil))  // refused, or closed before a request was read
                    break
                }
                mine.append(Outcome(text: i, reply: reply))
            }
            return mine
        }.flatMap { $0 }
        server.waitUntilExit()
        #expect(server.terminationReason == .exit && server.terminationStatus == 0)
        let answered = outcomes.filter { $0.reply?.status == 200 }
        #expect(answered.count > 12, "clients were answered before the signal")
        for outcome in answered { #expect(outcome.reply?.body == "[\(lines[outcome.text])]") }
        // Every other outcome is a connection the server refused or closed before reading a request from it.
        #expect(outcomes.allSatisfy { $0.reply == nil || $0.reply?.status == 200 }, "\(outcomes.compactMap { $0.reply?.status })")
        let said = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(said.contains("stopped"))
        let logged = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").filter { $0.contains("status=200") }.count
        #expect(logged == answered.count, "the server answered \(logged) requests and the clients received \(answered.count)")
    }
}
