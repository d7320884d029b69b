/// What one model charges. Token prices are USD per million tokens, held exactly as ``Money``.
public struct ModelPrice: Sendable, Equatable {
    public var inputPerMillion: Money
    public var outputPerMillion: Money
    /// Prompt tokens served from the provider's prompt cache; nil means the input price.
    public var cachedInputPerMillion: Money?
    /// Prompt tokens written to the provider's prompt cache (Anthropic); nil means the input price.
    public var cacheWriteInputPerMillion: Money?
    /// Batch-API prices; nil means the regular price (never a guessed discount).
    public var batchInputPerMillion: Money?
    public var batchOutputPerMillion: Money?
    /// Price of one generated image by quality ("standard", "hd"); empty for text models.
    public var perImage: [String: Money]
    /// The tokenizer encoding for exact counts (`o200k_base`, `cl100k_base`), when known.
    public var encoding: String?
    public var provider: String?

    public init(
        inputPerMillion: Money,
        outputPerMillion: Money,
        cachedInputPerMillion: Money? = nil,
        cacheWriteInputPerMillion: Money? = nil,
        batchInputPerMillion: Money? = nil,
        batchOutputPerMillion: Money? = nil,
        perImage: [String: Money] = [:],
        encoding: String? = nil,
        provider: String? = nil
    ) {
        self.inputPerMillion = inputPerMillion
        self.outputPerMillion = outputPerMillion
        self.cachedInputPerMillion = cachedInputPerMillion
        self.cacheWriteInputPerMillion = cacheWriteInputPerMillion
        self.batchInputPerMillion = batchInputPerMillion
        self.batchOutputPerMillion = batchOutputPerMillion
        self.perImage = perImage
        self.encoding = encoding
        self.provider = provider
    }
}

/// The usage of one call, as a provider reports it.
public struct Usage: Sendable, Equatable {
    /// All prompt tokens, including the cached and cache-written ones.
    public var inputTokens: Int64
    public var outputTokens: Int64
    /// The part of `inputTokens` read from the provider's prompt cache.
    public var cachedInputTokens: Int64
    /// The part of `inputTokens` written to the provider's prompt cache.
    public var cacheWriteInputTokens: Int64
    public var images: Int64
    public var imageQuality: String
    public var batch: Bool

    public init(
        inputTokens: Int64 = 0,
        outputTokens: Int64 = 0,
        cachedInputTokens: Int64 = 0,
        cacheWriteInputTokens: Int64 = 0,
        images: Int64 = 0,
        imageQuality: String = "standard",
        batch: Bool = false
    ) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cachedInputTokens = cachedInputTokens
        self.cacheWriteInputTokens = cacheWriteInputTokens
        self.images = images
        self.imageQuality = imageQuality
        self.batch = batch
    }
}

public enum PricingError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownModel(String)
    case cachedTokensExceedInput
    case noImagePrice(model: String, quality: String)

    public var description: String {
        switch self {
        case .unknownModel(let model): "unknown model '\(model)': no price for it; pass costUsd or add it to the price table"
        case .cachedTokensExceedInput: "cachedInputTokens plus cacheWriteInputTokens exceed inputTokens"
        case .noImagePrice(let model, let quality): "model '\(model)' has no per-image price for quality '\(quality)'"
        }
    }
}

extension ModelPrice {
    /// The exact cost of one call: each token class at its price, summed as integers and
    /// rounded once, half away from zero, to a nano-dollar.
    public func cost(of usage: Usage, model: String) throws(PricingError) -> Money {
        let special = usage.cachedInputTokens + usage.cacheWriteInputTokens
        guard special <= usage.inputTokens else { throw .cachedTokensExceedInput }
        let input = usage.batch ? (batchInputPerMillion ?? inputPerMillion) : inputPerMillion
        let output = usage.batch ? (batchOutputPerMillion ?? outputPerMillion) : outputPerMillion
        let cached = cachedInputPerMillion ?? inputPerMillion
        let cacheWrite = cacheWriteInputPerMillion ?? inputPerMillion
        var perMillion = Int128(usage.inputTokens - special) * Int128(input.nanos)
        perMillion += Int128(usage.cachedInputTokens) * Int128(cached.nanos)
        perMillion += Int128(usage.cacheWriteInputTokens) * Int128(cacheWrite.nanos)
        perMillion += Int128(usage.outputTokens) * Int128(output.nanos)
        var total = Money.divideRounded(perMillion, by: 1_000_000)
        if usage.images > 0 {
            guard let image = perImage[usage.imageQuality] else {
                throw .noImagePrice(model: model, quality: usage.imageQuality)
            }
            total += Int128(usage.images) * Int128(image.nanos)
        }
        return Money(nanos: Int64(clamping: total))
    }

    /// What `tokens` input and `outputTokens` output tokens cost at the regular price.
    public func cost(inputTokens: Int64, outputTokens: Int64) -> Money {
        let perMillion = Int128(inputTokens) * Int128(inputPerMillion.nanos)
            + Int128(outputTokens) * Int128(outputPerMillion.nanos)
        return Money(nanos: Int64(clamping: Money.divideRounded(perMillion, by: 1_000_000)))
    }
}
