import Foundation
import Testing
import BertKit

/// `finetune evaluate`: a trained model's dev metrics, as training measured them, and in int8.
@Suite(.serialized) struct EvaluateCommandTests {
    @Test func evaluateGivesTheMetricsTrainingMeasuredAndRunsInInt8() throws {
        let cli = CommandLineTests()
        defer { try? FileManager.default.removeItem(atPath: cli.directory) }
        let task = CommandLineTests.fixtures + "/tasks/mrpc-slice.json"
        #expect(try cli.finetune(cli.trainArguments(steps: 4)).status == 0)
        let best = try SQLiteDatabase(path: cli.db)
            .query("SELECT value FROM metrics WHERE split = 'dev' AND name = 'f1' ORDER BY value DESC, step LIMIT 1").first!["value"]!.double!
        let model = cli.directory + "/runs/1-mrpc-slice/best"
        let fp32 = try cli.finetune(["evaluate", "--model", model, "--task", task, "--precision", "fp32", "--max-length", "40"])
        #expect(fp32.status == 0, "\(fp32.error)")
        #expect(fp32.output.contains("f1 " + String(format: "%.4f", best)), "\(fp32.output) against the run's best f1 \(best)")
        let int8 = try cli.finetune(["evaluate", "--model", model, "--task", task, "--precision", "int8", "--max-length", "40"])
        #expect(int8.status == 0 && int8.output.contains("mrpc-slice dev, int8: accuracy"), "\(int8.output)\(int8.error)")

        let headless = try cli.finetune(["evaluate", "--model", CommandLineTests.fixtures + "/tiny-bert", "--task", task, "--max-length", "40"])
        #expect(headless.status == 1 && headless.error.contains("has no sequence-classification head"), "\(headless.error)")
    }
}
