/// Prices by model name.
///
/// Lookups accept the names providers and SDKs actually send: an exact entry wins; otherwise
/// a provider prefix (`openai/gpt-4o`) and a dated snapshot suffix (`gpt-4o-2024-08-06`,
/// `claude-3-5-haiku-20241022`) are stripped, so a snapshot costs what its family costs unless
/// the table names the snapshot itself.
public struct PriceTable: Sendable, Equatable {
    public private(set) var entries: [String: ModelPrice] = [:]

    public init() {}

    public mutating func set(_ model: String, _ price: ModelPrice) {
        entries[model] = price
    }

    public var count: Int { entries.count }

    public func price(for model: String) -> ModelPrice? {
        if let price = entries[model] { return price }
        for candidate in PriceTable.fallbackNames(for: model) {
            if let price = entries[candidate] { return price }
        }
        return nil
    }

    public func cost(model: String, usage: Usage) throws(PricingError) -> Money {
        guard let price = price(for: model) else { throw .unknownModel(model) }
        return try price.cost(of: usage, model: model)
    }

    /// This table with every entry of `overrides` put over it. An override that does not say
    /// which tokenizer its model uses keeps the encoding of the entry it replaces.
    public func merging(_ overrides: PriceTable) -> PriceTable {
        var merged = self
        for (model, var price) in overrides.entries {
            if price.encoding == nil { price.encoding = self.price(for: model)?.encoding }
            merged.entries[model] = price
        }
        return merged
    }

    static func fallbackNames(for model: String) -> [String] {
        var names: [String] = []
        var name = model.lowercased()
        if name != model { names.append(name) }
        if let slash = name.lastIndex(of: "/") {
            name = String(name[name.index(after: slash)...])
            names.append(name)
        }
        if let undated = stripDateSuffix(name) {
            names.append(undated)
            name = undated
        }
        if name.hasSuffix("-latest") {
            names.append(String(name.dropLast("-latest".count)))
        }
        return names
    }

    /// `gpt-4o-2024-08-06` → `gpt-4o`, `claude-3-5-haiku-20241022` → `claude-3-5-haiku`.
    static func stripDateSuffix(_ name: String) -> String? {
        let utf8 = Array(name.utf8)
        func isDigits(_ slice: ArraySlice<UInt8>) -> Bool {
            slice.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        }
        let dash = UInt8(ascii: "-")
        // -YYYY-MM-DD
        if utf8.count > 11 {
            let tail = utf8[(utf8.count - 11)...]
            let t = Array(tail)
            if t[0] == dash, t[5] == dash, t[8] == dash, isDigits(tail.dropFirst().prefix(4)),
                isDigits(t[6...7]), isDigits(t[9...10])
            {
                return String(decoding: utf8[..<(utf8.count - 11)], as: UTF8.self)
            }
        }
        // -YYYYMMDD
        if utf8.count > 9 {
            let tail = utf8[(utf8.count - 9)...]
            if tail.first == dash, isDigits(tail.dropFirst()) {
                return String(decoding: utf8[..<(utf8.count - 9)], as: UTF8.self)
            }
        }
        return nil
    }
}

/// Errors in a price file or a `[prices]` table.
public struct PriceFileError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension PriceTable {
    /// Reads the community LiteLLM price map (`model_prices_and_context_window.json`).
    ///
    /// Costs there are USD per token (`1.5e-07`); they are read from their decimal text, so
    /// `0.15` per million comes out exact. Entries without token or image prices (and the
    /// `sample_spec` example) are skipped.
    public static func fromLiteLLM(_ document: JSONValue) throws(PriceFileError) -> PriceTable {
        guard case .object(let root) = document else {
            throw PriceFileError("price file: the top level must be a JSON object of model entries")
        }
        var table = PriceTable()
        for member in root.members where member.key != "sample_spec" {
            guard case .object(let entry) = member.value else { continue }
            func perMillion(_ field: String) throws(PriceFileError) -> Money? {
                guard let value = entry[field], !value.isNull else { return nil }
                guard let number = value.numberValue, let nanos = number.scaled(byPowerOfTen: 15), nanos >= 0 else {
                    throw PriceFileError("price file: '\(member.key)'.\(field) must be a non-negative number")
                }
                return Money(nanos: nanos)
            }
            let input = try perMillion("input_cost_per_token")
            let output = try perMillion("output_cost_per_token")
            var perImage: [String: Money] = [:]
            if let image = entry["output_cost_per_image"]?.numberValue {
                guard let nanos = image.scaled(byPowerOfTen: 9), nanos >= 0 else {
                    throw PriceFileError("price file: '\(member.key)'.output_cost_per_image must be a non-negative number")
                }
                perImage["standard"] = Money(nanos: nanos)
            }
            guard input != nil || output != nil || !perImage.isEmpty else { continue }
            table.set(
                member.key,
                ModelPrice(
                    inputPerMillion: input ?? .zero,
                    outputPerMillion: output ?? .zero,
                    cachedInputPerMillion: try perMillion("cache_read_input_token_cost"),
                    cacheWriteInputPerMillion: try perMillion("cache_creation_input_token_cost"),
                    batchInputPerMillion: try perMillion("input_cost_per_token_batches"),
                    batchOutputPerMillion: try perMillion("output_cost_per_token_batches"),
                    perImage: perImage,
                    provider: entry["litellm_provider"]?.stringValue
                )
            )
        }
        return table
    }

    /// Reads a `[prices]` table of the config: USD per million tokens, the way prices are published.
    ///
    /// ```toml
    /// [prices."my-finetune"]
    /// input = 0.30          # per 1M input tokens
    /// output = 1.20         # per 1M output tokens
    /// cached_input = 0.15   # optional; also batch_input, batch_output, cache_write_input
    /// image = { standard = 0.04, hd = 0.08 }   # optional, per image
    /// encoding = "o200k_base"                  # optional
    /// ```
    public static func fromConfig(_ table: JSONObject) throws(PriceFileError) -> PriceTable {
        var prices = PriceTable()
        for member in table.members {
            guard case .object(let entry) = member.value else {
                throw PriceFileError("prices.\(member.key) must be a table")
            }
            let known: Set<String> = [
                "input", "output", "cached_input", "cache_write_input", "batch_input", "batch_output", "image",
                "encoding", "provider",
            ]
            if let unknown = entry.members.first(where: { !known.contains($0.key) }) {
                throw PriceFileError("prices.\(member.key): unknown key '\(unknown.key)'")
            }
            func usd(_ field: String) throws(PriceFileError) -> Money? {
                guard let value = entry[field] else { return nil }
                guard let number = value.numberValue, let money = Money(usd: number), money.nanos >= 0 else {
                    throw PriceFileError("prices.\(member.key).\(field) must be a non-negative number of USD")
                }
                return money
            }
            var perImage: [String: Money] = [:]
            if let image = entry["image"] {
                if let number = image.numberValue, let money = Money(usd: number) {
                    perImage["standard"] = money
                } else if case .object(let qualities) = image {
                    for quality in qualities.members {
                        guard let number = quality.value.numberValue, let money = Money(usd: number) else {
                            throw PriceFileError("prices.\(member.key).image.\(quality.key) must be a number of USD")
                        }
                        perImage[quality.key] = money
                    }
                } else {
                    throw PriceFileError("prices.\(member.key).image must be a number or a table of qualities")
                }
            }
            let input = try usd("input")
            let output = try usd("output")
            let encoding = entry["encoding"]?.stringValue
            if let encoding, EncodingSpec.named(encoding) == nil {
                throw PriceFileError("prices.\(member.key).encoding: unknown encoding '\(encoding)' (o200k_base or cl100k_base)")
            }
            guard input != nil || output != nil || !perImage.isEmpty else {
                throw PriceFileError("prices.\(member.key) needs input and output prices (or an image price)")
            }
            prices.set(
                member.key,
                ModelPrice(
                    inputPerMillion: input ?? .zero,
                    outputPerMillion: output ?? .zero,
                    cachedInputPerMillion: try usd("cached_input"),
                    cacheWriteInputPerMillion: try usd("cache_write_input"),
                    batchInputPerMillion: try usd("batch_input"),
                    batchOutputPerMillion: try usd("batch_output"),
                    perImage: perImage,
                    encoding: encoding,
                    provider: entry["provider"]?.stringValue
                )
            )
        }
        return prices
    }
}
