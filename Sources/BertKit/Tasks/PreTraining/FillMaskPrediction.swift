import Foundation

extension PreTrainingTask {
    /// Runs `BertForPreTraining` models and masked-LM ones of every family (`BertForMaskedLM`,
    /// `RobertaForMaskedLM`, ...), which have no next-sentence head.
    public static func predicts(_ config: [String: Any]) -> Bool {
        let architectures = config["architectures"] as? [String] ?? []
        return architectures.contains(architecture) || !EncoderFamily.architectures("BertForMaskedLM").isDisjoint(with: architectures)
    }

    /// Fillers for every `[MASK]` of a text (text lines, or JSONL `text`): one JSON line per text,
    /// `{"masks": [[{"token", "token_str", "score"}, ...], ...]}`, the `--top-k` (default 5) most likely
    /// tokens of each mask in order, as transformers' fill-mask pipeline ranks them.
    public static func predict(_ request: PredictionRequest) throws -> PredictionReport {
        try FillMaskPredictor(request.setup).run(request)
    }
}

/// The masked-LM head over texts with `[MASK]` tokens: each mask's probabilities over the vocabulary (softmax
/// of its logits), the most likely first.
struct FillMaskPredictor: Predictor {
    let tokenizer: Tokenizer
    let maskId: Int32
    let model: PreTrainingModel
    var parameters: ParameterStore { model.parameters }
    let batchSize, maxLength, topK: Int
    /// Masked positions one forward pass holds: a whole window's, and more when a batch allows it (the
    /// vocabulary-wide logits of each take 4 bytes per token of the vocabulary).
    let maxPredictions: Int

    init(_ setup: PredictionSetup) throws {
        tokenizer = try Tokenizer(directory: setup.model)
        maskId = try tokenizer.requiredMaskId()
        batchSize = setup.batchSize
        maxLength = setup.sequenceLength()
        topK = setup.options[PreTrainingTask.PredictionOption.topK]
        maxPredictions = Swift.max(maxLength, 4 * batchSize)
        model = PreTrainingModel(config: setup.checkpoint.config, context: try setup.buildContext(maxLength: maxLength),
                                 maxPredictions: maxPredictions, nextSentencePrediction: false)
        // A BertForMaskedLM checkpoint has no pooler and no next-sentence head; neither is read here.
        _ = try setup.checkpoint.loadWeights(into: model.parameters,
                                               mayBeNew: { $0.hasPrefix("pooler.") || $0.hasPrefix("cls.seq_relationship.") })
    }

    func prepare(_ record: InputRecord, index: Int) throws -> Encoding {
        let encoding = tokenizer.encode(try record.string("text"), maxLength: maxLength)
        guard encoding.ids.contains(maskId) else {
            throw DataError(file: record.file, line: record.line, "no \(tokenizer.vocabulary.token(maskId)) in the text (within its first \(maxLength) tokens)")
        }
        return encoding
    }

    func sequences(of example: Encoding) -> [ModelInput] { [ModelInput(ids: example.ids)] }

    /// Each sequence's masks' logits, one vocabulary-wide row per mask; the batch goes through the model in parts
    /// of at most `maxPredictions` masks.
    func forward(_ batch: [ModelInput]) -> [[Float]] {
        let vocabulary = model.config.vocabSize
        var outputs: [[Float]] = [], first = 0
        while first < batch.count {
            var end = first, masks = 0
            while end < batch.count {
                let more = batch[end].ids.count { $0 == maskId }
                guard masks + more <= maxPredictions else { break }
                masks += more
                end += 1
            }
            let part = EncoderBatch(padding: batch[first..<end].map(\.ids), padId: tokenizer.padId)
            var positions: [Int] = [], owners: [Int] = []
            for (b, sequence) in batch[first..<end].enumerated() {
                for (t, id) in sequence.ids.enumerated() where id == maskId {
                    positions.append(b * part.sequenceLength + t)
                    owners.append(b)
                }
            }
            model.forward(part, maskedPositions: positions)
            var rows = [[Float]](repeating: [], count: end - first)
            for (i, b) in owners.enumerated() { rows[b] += UnsafeBufferPointer(start: model.mlmLogits + i * vocabulary, count: vocabulary) }
            outputs += rows
            first = end
        }
        return outputs
    }

    /// Each mask's `topK` fillers, the most likely first.
    func result(of example: Encoding, outputs: [[Float]]) -> [[MaskFill]] {
        let vocabulary = model.config.vocabSize, logits = outputs[0]
        return (0..<(logits.count / vocabulary)).map { m in
            let p = softmax(logits[(m * vocabulary)..<((m + 1) * vocabulary)])
            return p.indices.sorted { p[$0] != p[$1] ? p[$0] > p[$1] : $0 < $1 }.prefix(topK).map { id in
                MaskFill(tokenId: id, token: tokenizer.decode([Int32(id)], skipSpecialTokens: false), score: p[id])
            }
        }
    }

    func line(_ masks: [[MaskFill]], of example: Encoding) -> String {
        JSONOutput.line(["masks": masks.map { $0.map(\.json) }])
    }
}

extension PreTrainingTask {
    public static var predictionOptions: [HyperparameterDeclaration] { [PredictionOption.topK.declaration] }

    /// What its models' predictions (fill-mask) let a user set (`PredictionOptions`), with the fill-mask
    /// pipeline's defaults.
    public enum PredictionOption {
        public static let topK = Hyperparameter<Int>("top_k", default: 5, help: "Fill-mask: fillers listed per [MASK].", problem: positive)
    }
}
