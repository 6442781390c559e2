import BertKit
import Foundation
#if canImport(FoundationXML)
import FoundationXML  // XMLParser, which checks the SVG (libxml2, a Swift prerequisite; scripts/setup installs it)
#endif
import Testing

/// Sweeps' plans, the significance tests against SciPy (Fixtures/significance.json) and learning-curve SVG.
@Suite struct SweepTests {
    @Test func theGridExpandsFirstNameSlowestThenSeeds() throws {
        let plan = try SweepPlan(grid: [try SweepPlan.gridOption("learning_rate=2e-5,5e-5"), try SweepPlan.gridOption("batch-size=16,32")],
                                 seeds: [1, 2, 3], fixed: ["--epochs", "2"])
        #expect(plan.configurations.map(SweepPlan.label) == [
            "learning_rate=2e-05 batch_size=16", "learning_rate=2e-05 batch_size=32",
            "learning_rate=5e-05 batch_size=16", "learning_rate=5e-05 batch_size=32"])
        #expect(plan.runs.count == 12 && plan.runs.map(\.seed).prefix(4) == [1, 2, 3, 1])
        #expect(plan.runs[0].arguments == ["--epochs", "2", "--learning-rate", "2e-05", "--batch-size", "16", "--seed", "1"])
    }

    @Test func badGridsAreRefusedWithTheReason() throws {
        func refusal(_ grid: [String], seeds: [UInt64] = [1], fixed: [String] = []) -> String {
            do { _ = try SweepPlan(grid: try grid.map(SweepPlan.gridOption), seeds: seeds, fixed: fixed); return "" } catch { return "\(error)" }
        }
        #expect(refusal(["learning_rat=1e-5"]).contains("not a hyper-parameter"))
        #expect(refusal(["learning_rate=fast"]).contains("is not number"))
        #expect(refusal(["seed=1,2"]).contains("--seeds"))
        #expect(refusal(["learning_rate=1e-5", "learning_rate=2e-5"]).contains("twice"))
        #expect(refusal(["learning_rate=1e-5,0.00001"]).contains("repeats"), "the same value written two ways")
        #expect(refusal(["learning_rate=1e-5"], fixed: ["--learning-rate", "3e-5"]).contains("cannot also be fixed"))
        #expect(refusal(["learning_rate=1e-5"], fixed: ["--seed", "3"]).contains("seed is swept"))
        #expect(refusal(["learning_rate=1e-5"], fixed: ["--learning-rate=0.00001"]).contains("cannot also be fixed"), "the default value, written with =")
        #expect(refusal(["learning_rate=1e-5"], seeds: []).contains("at least one seed"))
        #expect(refusal(["learning_rate=1e-5"], seeds: [1, 1]).contains("repeats a seed"))
    }

    /// A run's settings: task file, then the sweep's fixed options, then its grid values and seed.
    @Test func gridValuesOverrideTheTaskFileAndFixedOptionsApplyToEveryRun() throws {
        let spec = try TaskSpec.load(Fixture.path("tasks/mrpc-slice.json"))
        let plan = try SweepPlan(grid: [("learning_rate", ["0.003"]), ("max_length", ["24", "32"])], seeds: [7], fixed: ["--batch-size", "4"])
        for (planned, length) in zip(plan.runs, [24, 32]) {
            let run = try FineTuningRun(spec: spec, experiment: nil, arguments: planned.arguments, model: Fixture.path("tiny-bert"))
            let h = run.hyperparameters
            #expect(h[.learningRate] == 0.003 && h[.maxLength] == length && h[.batchSize] == 4 && h[.seed] == 7)
            #expect(h[.epochs] == (try Hyperparameters().applying(spec.hyperparameters, from: spec.path))[.epochs], "the task file's value stays")
        }
    }

    @Test func aSweepFileHoldsTheSame() throws {
        let (task, plan) = try SweepPlan.load(Fixture.repositoryRoot + "/Experiments/sweeps/mrpc-learning-rates.json")
        #expect(task == "mrpc" && plan.seeds == [1, 2, 3] && plan.grid.map(\.name) == ["learning_rate"] && plan.runs.count == 9)
    }

    struct Fixtures: Decodable {
        struct Welch: Decodable { let a, b: [Double]; let t, df, p, lower, upper: Double }
        struct Bootstrap: Decodable { let gold, first, second: [Int]; let difference, lower, upper, standard_error: Double }
        let welch: [Welch]
        let bootstrap: Bootstrap
    }
    let fixtures = try! JSONDecoder().decode(Fixtures.self, from: Data(contentsOf: URL(fileURLWithPath: Fixture.path("significance.json"))))

    @Test func welchEqualsSciPy() throws {
        for c in fixtures.welch {
            let w = try #require(Significance.welch(c.a, c.b))
            #expect(abs(w.t! - c.t) < 1e-9 * max(1, abs(c.t)) && abs(w.degreesOfFreedom! - c.df) < 1e-9 * c.df)
            #expect(abs(w.pValue - c.p) < 1e-9, "p \(w.pValue) against SciPy's \(c.p)")
            #expect(abs(w.lower - c.lower) < 1e-8 && abs(w.upper - c.upper) < 1e-8, "[\(w.lower), \(w.upper)] against [\(c.lower), \(c.upper)]")
        }
        #expect(Significance.welch([1], [1, 2]) == nil, "one seed says nothing about the spread")
    }

    /// Resampling differs from SciPy's stream, so the interval agrees within Monte Carlo error: at 10,000 resamples
    /// the 2.5th and 97.5th percentiles move by about 0.001 between streams, and the differences come in steps of
    /// 1/300 (one example of 300), so two steps is the bound.
    @Test func thePairedBootstrapAgreesWithSciPy() {
        let b = fixtures.bootstrap
        func accuracy(_ predicted: [Int], _ sample: [Int]) -> Double {
            Double(sample.filter { predicted[$0] == b.gold[$0] }.count) / Double(sample.count)
        }
        let c = Significance.pairedBootstrap(count: b.gold.count) { accuracy(b.first, $0) - accuracy(b.second, $0) }
        #expect(abs(c.difference - b.difference) < 1e-12)
        #expect(abs(c.lower - b.lower) <= 2.0 / 300 && abs(c.upper - b.upper) <= 2.0 / 300, "[\(c.lower), \(c.upper)] against [\(b.lower), \(b.upper)]")
        #expect(c.pValue > 0.05, "a 0.7-point difference on 300 examples is not significant")
        let again = Significance.pairedBootstrap(count: b.gold.count) { accuracy(b.first, $0) - accuracy(b.second, $0) }
        #expect(again.lower == c.lower && again.pValue == c.pValue, "a fixed seed repeats")
        let clear = Significance.pairedBootstrap(count: b.gold.count) { accuracy(b.gold, $0) - accuracy(b.second, $0) }
        #expect(clear.pValue < 1e-3 && clear.lower > 0, "perfect answers beat 82 % ones")
    }

    @Test func learningCurvesAreWellFormedSVGWithOnePathPerRun() throws {
        let chart = LineChart(panels: [
            .init(title: "loss <train>", xLabel: "step", yLabel: "loss", series: (1...3).map { r in
                .init(name: "run \(r) & co", points: (0..<20).map { (Double($0), 1 / Double($0 + r)) })
            }),
            .init(title: "dev f1", xLabel: "step", yLabel: "f1", series: (1...3).map { r in
                .init(name: "run \(r) & co", points: [(10, 0.8), (20, 0.85 + Double(r) / 100)], band: [(10, 0.7, 0.9), (20, 0.8, 0.9)])
            }),
        ])
        let svg = chart.svg()
        final class Counter: NSObject, XMLParserDelegate {
            var lines = 0, bands = 0
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
                if name == "path" && attributes["class"] == "line" { lines += 1 }
                if name == "path" && attributes["class"] == "band" { bands += 1 }
            }
        }
        let parser = XMLParser(data: Data(svg.utf8)), counter = Counter()
        parser.delegate = counter
        #expect(parser.parse(), "well-formed XML: \(String(describing: parser.parserError))")
        #expect(counter.lines == 6 && counter.bands == 3)
    }
}
