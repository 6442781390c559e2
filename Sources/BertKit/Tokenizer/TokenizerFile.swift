import Foundation

/// Reads Hugging Face's `tokenizer.json` into a `Tokenizer`. Every part the file names must be one the toolkit
/// implements; anything else is an error naming the file, the place in it and what was expected.
enum TokenizerFile {
    static func read(_ path: String, config: [String: Any]?) throws -> Tokenizer {
        guard let data = FileManager.default.contents(atPath: path) else { throw CheckpointError(file: path, "file not found or unreadable") }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw CheckpointError(file: path, "is not valid JSON: \(error.localizedDescription)")
        }
        let root = Node(value: object, path: "", file: path)
        guard root.value is [String: Any] else { throw root.error("expected a JSON object") }

        let added = try root["added_tokens"].optionalArray().map { node -> AddedToken in
            AddedToken(content: Array(try node["content"].string().unicodeScalars), id: try node["id"].int32(),
                       special: try node["special"].bool(default: false), singleWord: try node["single_word"].bool(default: false),
                       lstrip: try node["lstrip"].bool(default: false), rstrip: try node["rstrip"].bool(default: false),
                       normalized: try node["normalized"].bool(default: true))
        }
        let normalizer = try root["normalizer"].isNull ? nil : parseNormalizer(root["normalizer"])
        let preTokenizer = try root["pre_tokenizer"].isNull ? nil : parsePreTokenizer(root["pre_tokenizer"])
        let (model, modelTokens) = try parseModel(root["model"])

        // Every token by id: the model's, then the added tokens (which win where both name an id, as in decoding).
        var tokens = modelTokens
        for token in added {
            guard token.id >= 0 else { throw root["added_tokens"].error("token id \(token.id) is negative") }
            if Int(token.id) >= tokens.count { tokens += Array(repeating: "", count: Int(token.id) + 1 - tokens.count) }
            tokens[Int(token.id)] = String(String.UnicodeScalarView(token.content))
        }
        let vocabulary = Vocabulary(tokens: tokens)

        let postProcessor = try root["post_processor"].isNull ? .none : parsePostProcessor(root["post_processor"], vocabulary: vocabulary)
        let decoder = try root["decoder"].isNull ? nil : parseDecoder(root["decoder"])

        // The special tokens' roles: as tokenizer_config.json names them, else by their usual names.
        func role(_ key: String, _ usual: [String]) -> Int32? {
            let named: String? = switch config?[key] {
            case let s as String: s
            case let o as [String: Any]: o["content"] as? String
            default: nil
            }
            for name in (named.map { [$0] } ?? []) + usual { if let id = vocabulary.id(name) { return id } }
            return nil
        }
        let unknown: Int32? = switch model {
        case .wordPiece(let m): m.unknownId
        case .bpe(let m): m.unknownId
        case .unigram(let m): m.unknownId
        }
        return Tokenizer(vocabulary: vocabulary, source: .tokenizerFile(path), addedTokens: added, normalizer: normalizer,
                         preTokenizer: preTokenizer, model: model, postProcessor: postProcessor, decoder: decoder,
                         padId: role("pad_token", ["[PAD]", "<pad>"]) ?? 0, unknownId: role("unk_token", []) ?? unknown,
                         maskId: role("mask_token", ["[MASK]", "<mask>"]))
    }

    // MARK: Parts

    static func parseNormalizer(_ node: Node) throws -> Normalizer {
        switch try node["type"].string() {
        case "BertNormalizer":
            return .bert(BertNormalizer(lowercase: try node["lowercase"].bool(default: true), stripAccents: try node["strip_accents"].optionalBool(),
                                        handleChineseCharacters: try node["handle_chinese_chars"].bool(default: true),
                                        cleanText: try node["clean_text"].bool(default: true)))
        case let form where Normalizer.UnicodeForm(rawValue: form) != nil:
            return .unicode(Normalizer.UnicodeForm(rawValue: form)!)
        case "Lowercase": return .lowercase
        case "StripAccents": return .stripAccents
        case "Replace":
            return .replace(try SplitPattern.parse(node["pattern"].value, file: node.file, path: node["pattern"].path),
                            with: Array(try node["content"].string().unicodeScalars))
        case "Precompiled":
            guard let map = try node["precompiled_charsmap"].optionalString(), !map.isEmpty else { return .sequence([]) }
            return .precompiled(try PrecompiledCharacterMap(base64: map, file: node.file))
        case "Prepend": return .prepend(Array(try node["prepend"].string().unicodeScalars))
        case "Strip": return .strip(left: try node["strip_left"].bool(default: true), right: try node["strip_right"].bool(default: true))
        case "ByteLevel": return .byteLevel
        case "Sequence": return .sequence(try node["normalizers"].array().map(parseNormalizer))
        case let other:
            throw node["type"].error("normalizer \(other.debugDescription) is not supported; expected BertNormalizer, NFC, NFD, NFKC, NFKD, "
                                     + "Lowercase, StripAccents, Replace, Precompiled, Prepend, Strip, ByteLevel or Sequence")
        }
    }

    static func parsePreTokenizer(_ node: Node) throws -> PreTokenizer {
        switch try node["type"].string() {
        case "BertPreTokenizer": return .bert
        case "ByteLevel":
            return .byteLevel(addPrefixSpace: try node["add_prefix_space"].bool(default: true), useRegex: try node["use_regex"].bool(default: true))
        case "Metaspace":
            return .metaspace(replacement: try node.scalar("replacement"), prependScheme: try prependScheme(node),
                              split: try node["split"].bool(default: true))
        case "Whitespace": return .whitespace
        case "WhitespaceSplit": return .whitespaceSplit
        case "Split":
            return .split(try SplitPattern.parse(node["pattern"].value, file: node.file, path: node["pattern"].path),
                          try behavior(node["behavior"]), invert: try node["invert"].bool(default: false))
        case "Punctuation": return .punctuation(node["behavior"].isNull ? .isolated : try behavior(node["behavior"]))
        case "Digits": return .digits(individually: try node["individual_digits"].bool(default: false))
        case "Sequence": return .sequence(try node["pretokenizers"].array().map(parsePreTokenizer))
        case let other:
            throw node["type"].error("pre-tokenizer \(other.debugDescription) is not supported; expected BertPreTokenizer, ByteLevel, "
                                     + "Metaspace, Whitespace, WhitespaceSplit, Split, Punctuation, Digits or Sequence")
        }
    }

    static func behavior(_ node: Node) throws -> SplitBehavior {
        let name = try node.string()
        guard let b = SplitBehavior(rawValue: name) else {
            throw node.error("expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous, not \(name.debugDescription)")
        }
        return b
    }

    /// Metaspace's `prepend_scheme`, or the older `add_prefix_space` it replaced.
    static func prependScheme(_ node: Node) throws -> PreTokenizer.PrependScheme {
        if let name = try node["prepend_scheme"].optionalString() {
            guard let scheme = PreTokenizer.PrependScheme(rawValue: name) else {
                throw node["prepend_scheme"].error("expected always, first or never, not \(name.debugDescription)")
            }
            return scheme
        }
        return try node["add_prefix_space"].bool(default: true) ? .always : .never
    }

    /// The model and its tokens by id (ids it does not use are empty strings).
    static func parseModel(_ node: Node) throws -> (TokenModel, [String]) {
        let type = try node["type"].optionalString() ?? (node["merges"].isNull ? "WordPiece" : "BPE")
        switch type {
        case "WordPiece", "BPE":
            let vocabNode = node["vocab"]
            guard let vocab = vocabNode.value as? [String: Any] else { throw vocabNode.error("expected an object of token: id") }
            var tokens: [String] = []
            for (token, value) in vocab {
                guard let id = (value as? NSNumber)?.intValue, id >= 0, id < 10_000_000 else {
                    throw vocabNode.error("token \(token.debugDescription): expected an id, not \(value)")
                }
                if id >= tokens.count { tokens += Array(repeating: "", count: id + 1 - tokens.count) }
                tokens[id] = token
            }
            let vocabulary = Vocabulary(tokens: tokens)
            func id(_ token: String?, _ key: String) throws -> Int32? {
                guard let token else { return nil }
                guard let id = vocabulary.id(token) else { throw node[key].error("\(token.debugDescription) is not in the vocabulary") }
                return id
            }
            if type == "WordPiece" {
                guard let unknown = try id(try node["unk_token"].optionalString() ?? "[UNK]", "unk_token") else { preconditionFailure() }
                var wordPiece = WordPiece(vocabulary: vocabulary, unknownId: unknown)
                wordPiece.continuationPrefix = Array((try node["continuing_subword_prefix"].optionalString() ?? "##").unicodeScalars)
                wordPiece.maxCharactersPerWord = try node["max_input_chars_per_word"].optionalInt() ?? 100
                return (.wordPiece(wordPiece), tokens)
            }
            if let dropout = node["dropout"].value as? NSNumber, dropout.doubleValue > 0 {
                throw node["dropout"].error("BPE dropout \(dropout) samples a different tokenisation each time; expected null or 0")
            }
            let prefix = try node["continuing_subword_prefix"].optionalString() ?? ""
            var merges: [UInt64: (rank: Int32, id: Int32)] = [:]
            for (rank, merge) in try node["merges"].array().enumerated() {
                let parts: [String]
                switch merge.value {
                case let line as String: parts = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
                case let pair as [Any]: parts = pair.compactMap { $0 as? String }
                default: parts = []
                }
                guard parts.count == 2 else { throw merge.error("expected a merge \"a b\" or [\"a\", \"b\"]") }
                let right = parts[1].hasPrefix(prefix) ? String(parts[1].dropFirst(prefix.count)) : parts[1]
                guard let a = vocabulary.id(parts[0]), let b = vocabulary.id(parts[1]), let merged = vocabulary.id(parts[0] + right) else {
                    throw merge.error("the merge of \(parts[0].debugDescription) and \(parts[1].debugDescription) names a token not in the vocabulary")
                }
                merges[BPE.pair(a, b)] = (Int32(rank), merged)
            }
            let bpe = BPE(vocabulary: vocabulary, merges: merges, unknownId: try id(try node["unk_token"].optionalString(), "unk_token"),
                          continuationPrefix: Array(prefix.unicodeScalars),
                          endOfWordSuffix: Array((try node["end_of_word_suffix"].optionalString() ?? "").unicodeScalars),
                          fuseUnknown: try node["fuse_unk"].bool(default: false), byteIds: try byteIds(node, vocabulary),
                          ignoreMerges: try node["ignore_merges"].bool(default: false))
            return (.bpe(bpe), tokens)
        case "Unigram":
            var tokens: [String] = [], scores: [Double] = []
            for entry in try node["vocab"].array() {
                // Read through the number's text: JSONSerialization's own conversion to Double is off by a few
                // units in the last place for some scores, which changes which of two tied segmentations wins.
                guard let pair = entry.value as? [Any], pair.count == 2, let token = pair[0] as? String,
                      let number = pair[1] as? NSNumber, let score = Double(number.stringValue) else {
                    throw entry.error("expected [token, score]")
                }
                tokens.append(token)
                scores.append(score)
            }
            let vocabulary = Vocabulary(tokens: tokens)
            let unknown = try node["unk_id"].optionalInt()
            if let unknown, !(0..<tokens.count).contains(unknown) { throw node["unk_id"].error("\(unknown) is not an id of the vocabulary") }
            return (.unigram(Unigram(vocabulary: vocabulary, scores: scores, unknownId: unknown.map(Int32.init),
                                     byteIds: try byteIds(node, vocabulary))), tokens)
        case let other:
            throw node["type"].error("model \(other.debugDescription) is not supported; expected WordPiece, BPE or Unigram")
        }
    }

    /// With `byte_fallback`, the ids of the tokens `<0x00>` ... `<0xFF>` (nil for those the vocabulary lacks).
    static func byteIds(_ model: Node, _ vocabulary: Vocabulary) throws -> [Int32?]? {
        try model["byte_fallback"].bool(default: false) ? (0..<256).map { vocabulary.id(String(format: "<0x%02X>", $0)) } : nil
    }

    static func parsePostProcessor(_ node: Node, vocabulary: Vocabulary) throws -> PostProcessor {
        func special(_ key: String) throws -> Int32 {
            guard let pair = node[key].value as? [Any], pair.count == 2, let id = (pair[1] as? NSNumber)?.int32Value else {
                throw node[key].error("expected [token, id]")
            }
            return id
        }
        switch try node["type"].string() {
        case "BertProcessing":
            return .bert(cls: try special("cls"), sep: try special("sep"))
        case "RobertaProcessing":
            var p = PostProcessor.roberta(cls: try special("cls"), sep: try special("sep"))
            p.trimsOffsets = try node["trim_offsets"].bool(default: true)
            p.addPrefixSpace = try node["add_prefix_space"].bool(default: true)
            return p
        case "ByteLevel":
            var p = PostProcessor.none
            p.trimsOffsets = try node["trim_offsets"].bool(default: true)
            p.addPrefixSpace = try node["add_prefix_space"].bool(default: true)
            return p
        case "TemplateProcessing":
            var specials: [String: [Int32]] = [:]
            if let table = node["special_tokens"].value as? [String: Any] {
                for name in table.keys {
                    specials[name] = try node["special_tokens"][name]["ids"].array().map { try $0.int32() }
                }
            }
            func template(_ key: String) throws -> [PostProcessor.Piece] {
                try node[key].array().map { piece in
                    if !piece["Sequence"].isNull {
                        let type = try piece["Sequence"]["type_id"].int32()
                        switch try piece["Sequence"]["id"].string() {
                        case "A": return .first(typeId: type)
                        case "B": return .second(typeId: type)
                        case let other: throw piece["Sequence"]["id"].error("expected A or B, not \(other.debugDescription)")
                        }
                    }
                    let name = try piece["SpecialToken"]["id"].string()
                    guard let ids = specials[name] else { throw piece["SpecialToken"]["id"].error("\(name.debugDescription) is not in special_tokens") }
                    return .special(ids: ids, typeId: try piece["SpecialToken"]["type_id"].int32())
                }
            }
            return PostProcessor(single: try template("single"), pair: try template("pair"))
        case "Sequence":
            // The byte-level offset trimming of one step, the special tokens of another.
            var result = PostProcessor.none
            for step in try node["processors"].array().map({ try parsePostProcessor($0, vocabulary: vocabulary) }) {
                if step.single != PostProcessor.none.single || step.pair != PostProcessor.none.pair {
                    result.single = step.single
                    result.pair = step.pair
                }
                if step.trimsOffsets {
                    result.trimsOffsets = true
                    result.addPrefixSpace = step.addPrefixSpace
                }
            }
            return result
        case let other:
            throw node["type"].error("post-processor \(other.debugDescription) is not supported; expected BertProcessing, "
                                     + "RobertaProcessing, TemplateProcessing, ByteLevel or Sequence")
        }
    }

    static func parseDecoder(_ node: Node) throws -> TokenDecoder {
        switch try node["type"].string() {
        case "WordPiece":
            return .wordPiece(prefix: try node["prefix"].optionalString() ?? "##", cleanup: try node["cleanup"].bool(default: true))
        case "ByteLevel": return .byteLevel
        case "Metaspace": return .metaspace(replacement: try node.scalar("replacement"), prependScheme: try prependScheme(node))
        case "BPEDecoder": return .bpe(suffix: try node["suffix"].optionalString() ?? "</w>")
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "Strip":
            return .strip(content: try node.scalar("content"), start: try node["start"].optionalInt() ?? 0, stop: try node["stop"].optionalInt() ?? 0)
        case "Replace":
            return .replace(try SplitPattern.parse(node["pattern"].value, file: node.file, path: node["pattern"].path),
                            with: try node["content"].string())
        case "Sequence": return .sequence(try node["decoders"].array().map(parseDecoder))
        case let other:
            throw node["type"].error("decoder \(other.debugDescription) is not supported; expected WordPiece, ByteLevel, Metaspace, "
                                     + "BPEDecoder, ByteFallback, Fuse, Strip, Replace or Sequence")
        }
    }

    // MARK: JSON

    /// A value of the file with its place in it (`model.vocab`, `normalizer.normalizers[2]`), for errors.
    struct Node {
        let value: Any?
        let path: String
        let file: String

        subscript(key: String) -> Node {
            Node(value: (value as? [String: Any])?[key], path: path.isEmpty ? key : path + "." + key, file: file)
        }

        var isNull: Bool { value == nil || value is NSNull }

        func error(_ message: String) -> CheckpointError { CheckpointError(file: file, "\(path.isEmpty ? "" : path + ": ")\(message)") }

        func string() throws -> String {
            guard let s = value as? String else { throw error("expected a string") }
            return s
        }

        func optionalString() throws -> String? { isNull ? nil : try string() }

        /// A string of exactly one scalar.
        func scalar(_ key: String) throws -> Unicode.Scalar {
            let s = try self[key].string().unicodeScalars
            guard s.count == 1 else { throw self[key].error("expected one character, not \(s.count)") }
            return s.first!
        }

        func bool(default fallback: Bool) throws -> Bool { try optionalBool() ?? fallback }

        func optionalBool() throws -> Bool? {
            if isNull { return nil }
            guard let n = value as? NSNumber, Self.isBoolean(n) else { throw error("expected true or false") }
            return n.boolValue
        }

        func optionalInt() throws -> Int? {
            if isNull { return nil }
            guard let n = value as? NSNumber, !Self.isBoolean(n), n.doubleValue == n.doubleValue.rounded() else {
                throw error("expected an integer")
            }
            return n.intValue
        }

        func int32() throws -> Int32 {
            guard let n = try optionalInt(), let v = Int32(exactly: n) else { throw error("expected an integer") }
            return v
        }

        /// JSON's true and false arrive as numbers of C type `char`; numbers never do.
        static func isBoolean(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }

        func array() throws -> [Node] {
            guard let items = value as? [Any] else { throw error("expected an array") }
            return items.indices.map { Node(value: items[$0], path: "\(path)[\($0)]", file: file) }
        }

        func optionalArray() throws -> [Node] { isNull ? [] : try array() }
    }
}
