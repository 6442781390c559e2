import Foundation

/// Line charts written as SVG by hand (no library): panels stacked vertically, sharing a legend, each with its
/// axes, ticks and one `<path class="line">` per series, and a shaded `<path class="band">` under a series that
/// has a band (a range over seeds).
public struct LineChart: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        /// Low and high at some x (the same x as the points, typically).
        public var band: [(x: Double, low: Double, high: Double)]

        public init(name: String, points: [(x: Double, y: Double)], band: [(x: Double, low: Double, high: Double)] = []) {
            self.name = name
            self.points = points
            self.band = band
        }
    }

    public struct Panel: Sendable {
        public var title: String
        public var xLabel: String
        public var yLabel: String
        public var series: [Series]

        public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
            self.title = title
            self.xLabel = xLabel
            self.yLabel = yLabel
            self.series = series
        }
    }

    public var panels: [Panel]
    public var width = 720.0
    public var panelHeight = 300.0

    public init(panels: [Panel]) { self.panels = panels }

    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    /// The chart as a standalone SVG document, or (`standalone: false`) as an `<svg>` element for a web page.
    public func svg(standalone: Bool = true) -> String {
        let legendRows = max(1, panels.map(\.series.count).max() ?? 1)
        let legendHeight = 18.0 * Double(legendRows) + 12
        let height = panelHeight * Double(panels.count) + legendHeight
        var out = (standalone ? "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" : "") + """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>

            """
        for (p, panel) in panels.enumerated() { out += draw(panel, top: Double(p) * panelHeight) }
        // One legend for all panels: the series are the same runs or configurations in each.
        let names = panels.first?.series.map(\.name) ?? []
        for (i, name) in names.enumerated() {
            let y = panelHeight * Double(panels.count) + 14 + 18 * Double(i)
            out += "<line x1=\"70\" y1=\"\(f(y - 4))\" x2=\"95\" y2=\"\(f(y - 4))\" stroke=\"\(color(i))\" stroke-width=\"2\"/>"
            out += "<text x=\"102\" y=\"\(f(y))\">\(escape(name))</text>\n"
        }
        return out + "</svg>\n"
    }

    private func draw(_ panel: Panel, top: Double) -> String {
        let (left, right, plotTop, bottom) = (70.0, width - 20, top + 30, top + panelHeight - 45)
        let xs = panel.series.flatMap { $0.points.map(\.x) + $0.band.map(\.x) }
        let ys = panel.series.flatMap { $0.points.map(\.y) + $0.band.flatMap { [$0.low, $0.high] } }.filter(\.isFinite)
        let (xMin, xMax) = (xs.min() ?? 0, max(xs.max() ?? 1, (xs.min() ?? 0) + 1e-12))
        var (yMin, yMax) = (ys.min() ?? 0, ys.max() ?? 1)
        if yMax - yMin < 1e-12 { yMin -= 0.5; yMax += 0.5 }
        let pad = (yMax - yMin) * 0.05
        (yMin, yMax) = (yMin - pad, yMax + pad)
        func px(_ x: Double) -> Double { left + (x - xMin) / (xMax - xMin) * (right - left) }
        func py(_ y: Double) -> Double { bottom - (y - yMin) / (yMax - yMin) * (bottom - plotTop) }

        // The x range and where it is drawn, so that a page's script can turn a drag over the panel into steps.
        var out = "<g class=\"panel\" data-x-min=\"\(xMin)\" data-x-max=\"\(xMax)\" data-left=\"\(f(left))\" data-right=\"\(f(right))\">\n<text x=\"\(f(left))\" y=\"\(f(top + 18))\" font-size=\"14\" font-weight=\"bold\">\(escape(panel.title))</text>\n"
        out += "<rect x=\"\(f(left))\" y=\"\(f(plotTop))\" width=\"\(f(right - left))\" height=\"\(f(bottom - plotTop))\" fill=\"none\" stroke=\"#888\"/>\n"
        for k in 0...4 {
            let y = yMin + (yMax - yMin) * Double(k) / 4, x = xMin + (xMax - xMin) * Double(k) / 4
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(py(y) + 4))\" text-anchor=\"end\">\(tick(y))</text>"
            out += "<line x1=\"\(f(left))\" y1=\"\(f(py(y)))\" x2=\"\(f(right))\" y2=\"\(f(py(y)))\" stroke=\"#eee\"/>"
            out += "<text x=\"\(f(px(x)))\" y=\"\(f(bottom + 16))\" text-anchor=\"middle\">\(tick(x))</text>\n"
        }
        out += "<text x=\"\(f((left + right) / 2))\" y=\"\(f(bottom + 34))\" text-anchor=\"middle\">\(escape(panel.xLabel))</text>\n"
        out += "<text transform=\"translate(\(f(left - 52)),\(f((plotTop + bottom) / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(panel.yLabel))</text>\n"
        for (i, series) in panel.series.enumerated() where !series.band.isEmpty {
            let upper = series.band.map { "\(f(px($0.x))),\(f(py($0.high)))" }
            let lower = series.band.reversed().map { "\(f(px($0.x))),\(f(py($0.low)))" }
            out += "<path class=\"band\" d=\"M\((upper + lower).joined(separator: " L"))Z\" fill=\"\(color(i))\" fill-opacity=\"0.18\" stroke=\"none\"/>\n"
        }
        for (i, series) in panel.series.enumerated() {
            let points = series.points.filter(\.y.isFinite)
            guard !points.isEmpty else { continue }
            let d = "M" + points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " L")
            out += "<path class=\"line\" data-series=\"\(escape(series.name))\" d=\"\(d)\" fill=\"none\" stroke=\"\(color(i))\" stroke-width=\"1.5\"/>\n"
            if points.count == 1 { out += "<circle cx=\"\(f(px(points[0].x)))\" cy=\"\(f(py(points[0].y)))\" r=\"3\" fill=\"\(color(i))\"/>\n" }
        }
        return out + "</g>\n"
    }

    private func color(_ i: Int) -> String { Self.colors[i % Self.colors.count] }
    private func f(_ v: Double) -> String { String(format: "%.1f", v) }
    private func tick(_ v: Double) -> String { abs(v) >= 1000 || v == v.rounded() ? String(format: "%.0f", v) : String(format: "%.3g", v) }
    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
