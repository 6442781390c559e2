import BertKit
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// `finetune dashboard`: a web app over results.db. Every request opens the file read-only (a fresh snapshot, and
/// no lock a training run would wait for), builds its page from SELECTs it shows beside each table, and serves
/// its stylesheet and script from the binary.
///
/// Routes: `/` (runs), `/runs/{id}` (a run), `/runs/{id}/curves` (its chart alone), `/runs/{id}/events` (its
/// progress as server-sent events while it runs), `/compare?run=1&run=2`, `/sweeps`, `/sweeps/{id}`,
/// `/assets/{name}`.
public struct Dashboard: Sendable {
    /// results.db.
    public let databasePath: String
    /// How often a live page's run is looked at.
    public var pollInterval: Duration = .milliseconds(500)

    /// Checks that `databasePath` is a results.db this version reads.
    public init(databasePath: String) throws {
        self.databasePath = databasePath
        _ = try ResultsDatabase(readingOnly: databasePath)
    }

    /// Serves on `host`:`port` (0: any free port) until `stop` is set; `listening` gets the port.
    public func run(host: String, port: Int, stop: StopFlag, listening: @escaping @Sendable (Int) -> Void) async throws {
        var logger = Logger(label: "bertkit.dashboard")
        logger.logLevel = .warning
        let app = Application(router: router(stop: stop), configuration: .init(address: .hostname(host, port: port)),
                              onServerRunning: { channel in listening(channel.localAddress?.port ?? port) }, logger: logger)
        var configuration = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [], logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(5)
        let group = ServiceGroup(configuration: configuration)
        stop.whenStopping { Task { await group.triggerGracefulShutdown() } }
        try await group.run()
    }

    func router(stop: StopFlag) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: ErrorPages())
        let path = databasePath, poll = pollInterval
        @Sendable func database() throws -> ResultsDatabase { try ResultsDatabase(readingOnly: path) }

        router.get("/") { request, _ in
            Self.html(try RunsPage(query: Self.query(request)).render(try database()))
        }
        router.get("runs/:id") { request, context in
            let id = try Self.id(context)
            guard let page = try RunPage(id: id, query: Self.query(request)).render(try database()) else { throw Self.notFound("run \(id)") }
            return Self.html(page)
        }
        router.get("runs/:id/curves") { request, context in
            let svg = try Curves(runs: [try Self.id(context)], query: Self.query(request)).svg(try database())
            return Self.html(svg)
        }
        router.get("runs/:id/events") { _, context in
            let id = try Self.id(context)
            guard try RunProgress(run: id, in: try database()) != nil else { throw Self.notFound("run \(id)") }
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
                            body: ResponseBody { writer in
                                // Every look sends the progress (its time left changes); a run that is no longer
                                // running gets a last event, and the stream ends.
                                while !stop.isSet, let progress = try RunProgress(run: id, in: try database()) {
                                    try await writer.write(ByteBuffer(string: "event: progress\ndata: \(progress.json)\n\n"))
                                    if progress.status != "running" { break }
                                    try await Task.sleep(for: poll)
                                }
                                try await writer.finish(nil)
                            })
        }
        router.get("compare") { request, _ in
            let runs = (request.uri.queryParameters.getAll("run")).compactMap { Int64(String($0)) }
            return Self.html(try ComparePage(runs: runs, query: Self.query(request)).render(try database()))
        }
        router.get("sweeps") { _, _ in Self.html(try SweepPages.list(try database())) }
        router.get("sweeps/:id") { _, context in
            let id = try Self.id(context)
            guard let page = try SweepPages.sweep(id, try database()) else { throw Self.notFound("sweep \(id)") }
            return Self.html(page)
        }
        router.get("assets/:name") { _, context in
            guard let name = context.parameters.get("name"), let file = Assets.files[name] else { throw Self.notFound("asset") }
            return Response(status: .ok, headers: [.contentType: file.type, .cacheControl: "no-cache"],
                            body: .init(byteBuffer: ByteBuffer(string: file.body)))
        }
        return router
    }

    static func html(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func query(_ request: Request) -> [String: String] {
        var settings: [String: String] = [:]
        for (key, value) in request.uri.queryParameters { settings[String(key)] = String(value) }
        return settings
    }

    static func id(_ context: BasicRequestContext) throws -> Int64 {
        guard let text = context.parameters.get("id"), let id = Int64(text) else { throw HTTPError(.notFound, message: "not an id") }
        return id
    }

    static func notFound(_ what: String) -> HTTPError { HTTPError(.notFound, message: "There is no \(what) in results.db.") }
}

/// Errors as small pages: 404 for what does not exist, 500 with the error's text (a database that cannot be
/// read, say), both escaped.
struct ErrorPages: RouterMiddleware {
    typealias Context = BasicRequestContext
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            var response = Dashboard.html(HTML.page(title: "\(error.status.code) \(error.status.reasonPhrase)",
                                                    "<p class=\"error\">\(HTML.escape(error.body ?? request.uri.path))</p>"))
            response.status = error.status
            return response
        } catch {
            var response = Dashboard.html(HTML.page(title: "Error", "<p class=\"error\">\(HTML.escape("\(error)"))</p>"))
            response.status = .internalServerError
            return response
        }
    }
}
