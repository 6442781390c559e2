import Foundation
import Testing

/// BertKit as another package uses it: a new package in a temporary folder depends on a clone of this repository
/// by `file://` URL and a version tag (as it would on a URL and a release), imports BertKit, loads a fine-tuned
/// fixture model and classifies a text. It must resolve (no target of the product may set unsafe flags), build and
/// print the label that `finetune predict` gives. The clone is of the commit checked out (HEAD), without uncommitted
/// changes.
@Suite(.serialized) struct ConsumerPackageTests {
    let directory: String = {
        let path = NSTemporaryDirectory() + "bertkit-consumer-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    struct Output { let status: Int32; let output: String; let error: String }

    @discardableResult
    func run(_ executable: String, _ arguments: [String], in folder: String) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        // Standard error to a file, standard output read to its end: a build prints more than a pipe holds.
        let errorFile = directory + "/stderr-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: errorFile, contents: nil)
        let out = Pipe(), err = FileHandle(forWritingAtPath: errorFile)!
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try err.close()
        let error = FileManager.default.contents(atPath: errorFile) ?? Data()
        return Output(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self),
                      error: String(decoding: error, as: UTF8.self))
    }

    @Test func aPackageDependingOnATaggedCloneBuildsAndClassifies() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let git = "/usr/bin/git", swift = try #require(Self.swift, "no swift on PATH")
        let clone = directory + "/bertkit"
        try #require(try run(git, ["clone", "--quiet", CommandLineTests.root, clone], in: directory).status == 0)
        let tags = try run(git, ["tag", "--list"], in: clone).output.split(separator: "\n").map(String.init)
        if !tags.isEmpty { try run(git, ["tag", "--delete"] + tags, in: clone) }
        try #require(try run(git, ["tag", "1.0.0"], in: clone).status == 0)

        let consumer = directory + "/consumer"
        try FileManager.default.createDirectory(atPath: consumer + "/Sources/consumer", withIntermediateDirectories: true)
        try """
            // swift-tools-version: 6.0
            import PackageDescription

            let package = Package(
                name: "consumer",
                dependencies: [.package(url: "file://\(clone)", from: "1.0.0")],
                targets: [.executableTarget(name: "consumer", dependencies: [.product(name: "BertKit", package: "bertkit")])]
            )

            """.write(toFile: consumer + "/Package.swift", atomically: true, encoding: .utf8)
        try """
            import BertKit

            let model = try FineTunedModel(folder: CommandLine.arguments[1])
            print(try model.classify(CommandLine.arguments[2]).label)

            """.write(toFile: consumer + "/Sources/consumer/main.swift", atomically: true, encoding: .utf8)

        let build = try run(swift, ["build", "-c", "release"], in: consumer)
        #expect(build.status == 0, "the consumer package did not build:\n\(build.output)\n\(build.error)")
        guard build.status == 0 else { return }

        let model = CommandLineTests.fixtures + "/pipelines/text-classifier", text = "The new movie is awesome!"
        let printed = try run(consumer + "/.build/release/consumer", [model, text], in: consumer)
        #expect(printed.status == 0, "\(printed.error)")
        try (text + "\n").write(toFile: directory + "/text.txt", atomically: true, encoding: .utf8)
        let predicted = try run(CommandLineTests.binary, ["predict", "--model", model, "--input", directory + "/text.txt"],
                                in: CommandLineTests.root)
        #expect(predicted.status == 0, "\(predicted.error)")
        let label = try JSONSerialization.jsonObject(with: Data(predicted.output.utf8)) as! [String: Any]
        #expect(printed.output == "\(label["label"] as! String)\n", "consumer printed \(printed.output)")
    }

    /// The DocC catalog and every public declaration's documentation build without a warning (swift-docc-plugin;
    /// in a clone, so that the build does not wait for this test run's own).
    @Test func theDocumentationBuildsWithoutWarnings() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let swift = try #require(Self.swift, "no swift on PATH")
        let clone = directory + "/bertkit"
        try #require(try run("/usr/bin/git", ["clone", "--quiet", CommandLineTests.root, clone], in: directory).status == 0)
        let docs = try run(swift, ["package", "--disable-sandbox", "generate-documentation", "--target", "BertKit",
                                   "--warnings-as-errors"], in: clone)
        let warnings = (docs.output + docs.error).split(separator: "\n").filter { $0.contains("warning:") }
        #expect(docs.status == 0 && warnings.isEmpty, "\(warnings.joined(separator: "\n"))\n\(docs.error.suffix(2000))")
        #expect(FileManager.default.fileExists(atPath: clone + "/.build/plugins/Swift-DocC/outputs/BertKit.doccarchive/index.html")
                || FileManager.default.fileExists(atPath: clone + "/.build/plugins/Swift-DocC/outputs/BertKit.doccarchive/data"))
    }

    /// `swift` as the test runner's own toolchain, else the first on PATH.
    static var swift: String? {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { String($0) + "/swift" }
        return paths.first(where: { FileManager.default.isExecutableFile(atPath: $0) })
    }
}
