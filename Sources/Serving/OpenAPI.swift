import Foundation

/// The OpenAPI 3.1 description of `finetune serve`'s routes (`GET /openapi.json`); a test checks it against the
/// routes the server answers.
enum OpenAPI {
    /// What a prediction route may answer besides 200, and when.
    static let errors: [(status: Int, when: String)] = [
        (400, "Not JSON, wrong types, empty inputs, an unknown field, or the wrong route for the model's head"),
        (404, "No such model"),
        (408, "The body did not arrive within --request-timeout"),
        (413, "A body over --max-body-bytes, more than --max-inputs inputs, or an input over --max-input-length tokens"),
        (422, "An input the model cannot read (a field its head needs is missing)"),
        (429, "More than --max-concurrent-requests requests at once; Retry-After says when to try again"),
        (503, "The model did not get to the request within --request-timeout; Retry-After"),
    ]

    static let document: String = {
        let error: [String: Any] = ["type": "object", "required": ["error"], "properties": ["error": ["type": "string"]]]
        let record: [String: Any] = ["type": "object", "additionalProperties": ["type": "string"],
                                     "description": "As finetune predict reads JSONL: text (and text_pair), or question and context"]
        let input: [String: Any] = ["oneOf": [["type": "string"], ["$ref": "#/components/schemas/Record"]]]
        let request: [String: Any] = [
            "type": "object", "required": ["inputs"], "additionalProperties": false,
            "properties": [
                "inputs": ["oneOf": [input, ["type": "array", "minItems": 1, "items": input]]],
                "truncate": ["type": "boolean", "default": false,
                             "description": "Cut inputs longer than --max-input-length tokens (longest text first, whole words) instead of answering 413"],
            ],
        ]
        var responses: [String: Any] = ["200": ["description": "One result per input, in order: the line finetune predict writes for it",
                                                "content": ["application/json": ["schema": ["type": "array", "items": ["type": "object"]]]]]]
        for (status, when) in errors {
            responses[String(status)] = ["description": when, "content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]]]
        }
        func prediction(_ summary: String, named: Bool) -> [String: Any] {
            var operation: [String: Any] = ["summary": summary, "responses": responses,
                                            "requestBody": ["required": true, "content": ["application/json": ["schema": ["$ref": "#/components/schemas/Request"]]]]]
            if named {
                operation["parameters"] = [["name": "name", "in": "path", "required": true, "schema": ["type": "string"],
                                            "description": "NAME of --model NAME=FOLDER, else the folder's last component"]]
            }
            return ["post": operation]
        }
        func get(_ summary: String, _ type: String) -> [String: Any] {
            ["get": ["summary": summary, "responses": ["200": ["description": summary, "content": [type: ["schema": ["type": type == "text/plain" ? "string" : "object"]]]]]]]
        }
        let paths: [String: Any] = [
            "/predict": prediction("Predict with the first model's head", named: false),
            "/embed": prediction("Embed with the first model, an encoder without a head: [{\"embedding\": [...]}]", named: false),
            "/models/{name}/predict": prediction("Predict with the model NAME", named: true),
            "/models/{name}/embed": prediction("Embed with the model NAME", named: true),
            "/health": get("200 once every model is loaded and its weights packed", "application/json"),
            "/info": get("Each model's folder, head, labels and precision, and the server's limits", "application/json"),
            "/metrics": get("Prometheus metrics: requests by model, route and status, latency, queue, batches, tokens", "text/plain"),
            "/openapi.json": get("This document", "application/json"),
        ]
        let document: [String: Any] = [
            "openapi": "3.1.0",
            "info": ["title": "bertkit finetune serve", "version": "1.0.0",
                     "description": "Predictions of fine-tuned BERT models and embeddings of encoders; each result is the line finetune predict writes for the same input."],
            "paths": paths,
            "components": ["schemas": ["Request": request, "Record": record, "Error": error]],
        ]
        let data = try! JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }()
}
