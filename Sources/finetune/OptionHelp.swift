import BertKit

/// Declared options (hyper-parameters, prediction options) as help text: grouped under headings, each option
/// on its line with its value and default, its help below, wrapped and indented so that no line runs past
/// `width` (a terminal's 80 columns, which the argument parser would otherwise wrap at column 0).
enum OptionHelp {
    static func sections(_ groups: [(heading: String, declarations: [HyperparameterDeclaration])], width: Int = 79) -> String {
        groups.filter { !$0.declarations.isEmpty }.map { heading, declarations in
            heading + ":\n" + declarations.map { d in
                let line = "  \(d.flag) <\(d.placeholder)>" + (d.defaultText.isEmpty ? "" : " (default: \(d.defaultText))")
                return ([line] + wrap(d.help, indent: 6, width: width)).joined(separator: "\n")
            }.joined(separator: "\n")
        }.joined(separator: "\n\n")
    }

    /// `text` in lines of at most `width` columns, each indented by `indent` spaces.
    static func wrap(_ text: String, indent: Int, width: Int) -> [String] {
        let margin = String(repeating: " ", count: indent)
        var lines: [String] = [], line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty && indent + line.count + 1 + word.count > width {
                lines.append(margin + line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        if !line.isEmpty { lines.append(margin + line) }
        return lines
    }

    /// Every hyper-parameter of a run: those every task reads, then each plugin's own.
    static var hyperparameters: String {
        let table = Hyperparameters.table()
        return sections([("Hyper-parameters of every task", table.filter { $0.plugin == nil }.map(\.declaration))]
            + TaskPlugins.all.map { plugin in
                ("\(plugin.name) tasks", table.filter { $0.plugin == plugin.name }.map(\.declaration))
            })
    }

    /// Every prediction option: those every model reads, then each head's own.
    static var predictionOptions: String {
        sections([("Options of every model", PredictionOptions.common)]
            + TaskPlugins.all.map { ("\($0.name) models (\($0.architecture))", $0.predictionOptions) }
            + [("Encoders without a head (BertModel): sentence embeddings", [SentenceEncoder.PredictionOption.normalize.declaration])])
    }
}
